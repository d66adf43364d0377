"""The prepared-dataset file: one HDF5 file per dataset, written once.

Later stages never touch the original source again; they read this file. The
layout is plain (``train/images``, ``train/labels``, ``test/images``,
``test/labels`` plus file attributes) so it can be inspected with ``h5ls`` or
any HDF5 reader. A multi-domain dataset (:mod:`feddiff.data.domains`) also holds
``train/domains`` and ``test/domains`` (the domain index of every sample) and the attr
``domain_names``; a single-domain file has none of them. A content fingerprint is
stored at save time so downstream caches (partitions, trained models) can tell when
the data under them changed without re-hashing hundreds of megabytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from feddiff import __version__
from feddiff.data.errors import DataError
from feddiff.utils.atomic import atomic_path

#: File attributes the format itself uses; provenance keys may not shadow them.
RESERVED_ATTRS = frozenset(
    {
        "class_names",
        "fingerprint",
        "feddiff_version",
        "provenance_keys",
        "json_attrs",
        "domain_names",
    }
)
#: Target chunk size: small enough that reading one image is cheap, large enough
#: that tiny images (8x8 digits) are not one chunk each.
_CHUNK_BYTES = 1 << 16
#: Datasets every prepared file must hold.
LAYOUT = ("train/images", "train/labels", "test/images", "test/labels")
#: gzip level 1: decoded JPEG pixels barely compress (~7%) at any level, and
#: level 1 writes and reads fastest; gzip (not lzf) so any HDF5 tool can read it.
_GZIP_LEVEL = 1


@dataclass
class DatasetArrays:
    """A whole dataset in memory: uint8 NHWC images, int64 labels, class names.

    Validated on construction so a malformed source fails where it is built,
    not deep inside training. Grayscale images keep an explicit channel axis
    (``C == 1``) so every consumer can rely on four dimensions.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    #: Multi-domain data only: the domain names and each sample's index into them.
    domain_names: list[str] | None = None
    domain_train: np.ndarray | None = None
    domain_test: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.class_names = [str(name) for name in self.class_names]
        if not self.class_names:
            raise ValueError("class_names must not be empty")
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"class_names has duplicates: {self.class_names}")
        self.y_train = _check_labels("y_train", self.y_train, self.num_classes)
        self.y_test = _check_labels("y_test", self.y_test, self.num_classes)
        for name, x, y in (
            ("x_train", self.x_train, self.y_train),
            ("x_test", self.x_test, self.y_test),
        ):
            _check_images(name, x, len(y))
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"train images are {self.x_train.shape[1:]} but test images are "
                f"{self.x_test.shape[1:]}; both splits must share (H, W, C)"
            )
        self.attrs = dict(self.attrs)
        self._check_domains()

    def _check_domains(self) -> None:
        given = [v is not None for v in (self.domain_names, self.domain_train, self.domain_test)]
        if not any(given):
            return
        if not all(given):
            raise ValueError(
                "domain_names, domain_train and domain_test go together: give all or none"
            )
        assert self.domain_names is not None
        self.domain_names = [str(name) for name in self.domain_names]
        if not self.domain_names or len(set(self.domain_names)) != len(self.domain_names):
            raise ValueError(
                f"domain_names must be distinct and non-empty, got {self.domain_names}"
            )
        n = len(self.domain_names)
        self.domain_train = _check_labels("domain_train", self.domain_train, n)
        self.domain_test = _check_labels("domain_test", self.domain_test, n)
        for name, d, y in (
            ("domain_train", self.domain_train, self.y_train),
            ("domain_test", self.domain_test, self.y_test),
        ):
            if len(d) != len(y):
                raise ValueError(f"{name} has {len(d)} entries but there are {len(y)} labels")

    @property
    def has_domains(self) -> bool:
        """True for a multi-domain dataset (domain of every sample recorded)."""
        return self.domain_names is not None

    @property
    def num_classes(self) -> int:
        """Number of classes, i.e. ``len(class_names)``; labels lie in ``[0, num_classes)``."""
        return len(self.class_names)


def _check_images(name: str, x: Any, n: int) -> None:
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4:
        desc = f"{type(x).__name__} {getattr(x, 'dtype', '?')} {getattr(x, 'shape', '?')}"
        raise ValueError(f"{name} must be a uint8 array (N, H, W, C), got {desc}")
    if len(x) != n:
        raise ValueError(f"{name} has {len(x)} images but its labels have {n} entries")


def _check_labels(name: str, y: Any, num_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.size == 0):
        raise ValueError(f"{name} must be a 1-D integer array, got {y.dtype} {y.shape}")
    y = y.astype(np.int64, copy=False)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{name} has labels in [{y.min()}, {y.max()}], outside [0, {num_classes})")
    return y


def fingerprint_arrays(arrays: DatasetArrays) -> str:
    """SHA-256 over images, labels and class names (not provenance attrs).

    Provenance is left out on purpose: the same pixels read from a different
    folder are the same dataset as far as any cache is concerned.
    """
    h = hashlib.sha256(b"feddiff-dataset-v1\0")
    for split, x, y in (
        ("train", arrays.x_train, arrays.y_train),
        ("test", arrays.x_test, arrays.y_test),
    ):
        h.update(json.dumps({"split": split, "shape": list(x.shape)}).encode())
        h.update(np.ascontiguousarray(x, dtype=np.uint8).data)
        h.update(np.ascontiguousarray(y, dtype="<i8").data)
    h.update(json.dumps(arrays.class_names).encode())
    if arrays.has_domains:  # only then: single-domain fingerprints stay as they were
        h.update(json.dumps(arrays.domain_names).encode())
        for d in (arrays.domain_train, arrays.domain_test):
            h.update(np.ascontiguousarray(d, dtype="<i8").data)
    return h.hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _encode_attrs(attrs: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Scalars stay native HDF5 attributes; anything else becomes JSON text."""
    encoded: dict[str, Any] = {}
    json_keys: list[str] = []
    for key, value in attrs.items():
        if key in RESERVED_ATTRS:
            raise ValueError(f"provenance attr {key!r} clashes with a reserved attribute")
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (str, bool, int, float)):
            encoded[key] = value
            continue
        try:
            encoded[key] = json.dumps(value, default=_json_default, sort_keys=True)
        except TypeError as exc:
            raise ValueError(f"provenance attr {key!r} cannot be stored: {exc}") from exc
        json_keys.append(key)
    return encoded, json_keys


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _chunks(x: np.ndarray) -> tuple[int, ...]:
    per_image = max(1, int(np.prod(x.shape[1:])))
    rows = max(1, min(len(x), _CHUNK_BYTES // per_image))
    return (rows, *x.shape[1:])


def _write_split(
    f: h5py.File, split: str, x: np.ndarray, y: np.ndarray, d: np.ndarray | None = None
) -> None:
    group = f.create_group(split)
    if d is not None:
        group.create_dataset("domains", data=d.astype("<i8"), fletcher32=bool(len(d)))
    if len(x):
        group.create_dataset(
            "images",
            data=x,
            chunks=_chunks(x),
            compression="gzip",
            compression_opts=_GZIP_LEVEL,
            shuffle=False,
            fletcher32=True,
        )
        group.create_dataset("labels", data=y.astype("<i8"), fletcher32=True)
    else:  # HDF5 cannot chunk an empty dataset; nothing to protect anyway
        group.create_dataset("images", data=x)
        group.create_dataset("labels", data=y.astype("<i8"))


def _write_attrs(f: h5py.File, arrays: DatasetArrays, fingerprint: str) -> None:
    provenance, json_keys = _encode_attrs(arrays.attrs)
    f.attrs["class_names"] = json.dumps(arrays.class_names)
    f.attrs["fingerprint"] = fingerprint
    f.attrs["feddiff_version"] = __version__
    f.attrs["provenance_keys"] = json.dumps(sorted(provenance))
    f.attrs["json_attrs"] = json.dumps(sorted(json_keys))
    if arrays.has_domains:
        f.attrs["domain_names"] = json.dumps(arrays.domain_names)
    for key, value in provenance.items():
        f.attrs[key] = value


def save_dataset(arrays: DatasetArrays, path: str | os.PathLike[str]) -> None:
    """Write ``arrays`` to ``path`` atomically; a failed write leaves no file behind.

    The fingerprint is computed here, once, and stored as attr ``fingerprint``.
    Images carry a Fletcher-32 checksum so on-disk corruption surfaces as a
    read error in :func:`load_dataset` instead of silently wrong pixels.
    """
    _encode_attrs(arrays.attrs)  # fail on unstorable provenance before any I/O
    fingerprint = fingerprint_arrays(arrays)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        _write_split(f, "train", arrays.x_train, arrays.y_train, arrays.domain_train)
        _write_split(f, "test", arrays.x_test, arrays.y_test, arrays.domain_test)
        _write_attrs(f, arrays, fingerprint)


def _missing(path: Path) -> DataError:
    return DataError(
        f"prepared dataset {path} does not exist; prepare it first "
        "(feddiff.data.prepare.prepare_dataset, i.e. the pipeline's data-preparation step)"
    )


def _corrupt(path: Path, exc: BaseException) -> DataError:
    return DataError(
        f"prepared dataset {path} is unreadable or corrupt ({type(exc).__name__}: {exc}); "
        "delete it and prepare it again"
    )


def _read_provenance(f: h5py.File) -> dict[str, Any]:
    if "provenance_keys" in f.attrs:
        keys = json.loads(f.attrs["provenance_keys"])
    else:  # a file written by another tool: take every non-reserved attr
        keys = [k for k in f.attrs if k not in RESERVED_ATTRS]
    json_keys = set(json.loads(f.attrs.get("json_attrs", "[]")))
    out: dict[str, Any] = {}
    for key in keys:
        value = _decode_attr(f.attrs[key])
        out[key] = json.loads(value) if key in json_keys else value
    return out


def _read_domains(f: h5py.File) -> dict[str, Any]:
    """The domain fields of a multi-domain file; none for a single-domain one."""
    if "domain_names" not in f.attrs:
        return {}
    return {
        "domain_names": json.loads(_decode_attr(f.attrs["domain_names"])),
        "domain_train": f["train/domains"][()],
        "domain_test": f["test/domains"][()],
    }


def load_dataset(path: str | os.PathLike[str], *, verify: bool = False) -> DatasetArrays:
    """Read a file written by :func:`save_dataset` fully into memory.

    Raises :class:`DataError` naming the file when it is missing, not HDF5, or
    lacks part of the layout. ``verify=True`` also re-hashes the contents and
    compares with the stored fingerprint (costs one pass over the pixels).
    """
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    try:
        with h5py.File(path, "r") as f:
            missing = [name for name in LAYOUT if name not in f]
            missing += [name for name in ("class_names",) if name not in f.attrs]
            if missing:
                raise DataError(
                    f"prepared dataset {path} lacks {missing}; it was not written by "
                    "feddiff.data.save_dataset or is incomplete: delete it and prepare it again"
                )
            domains = _read_domains(f)
            arrays = DatasetArrays(
                **domains,
                x_train=f["train/images"][()],
                y_train=f["train/labels"][()],
                x_test=f["test/images"][()],
                y_test=f["test/labels"][()],
                class_names=json.loads(f.attrs["class_names"]),
                attrs=_read_provenance(f),
            )
            stored = _decode_attr(f.attrs.get("fingerprint"))
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise _corrupt(path, exc) from exc
    if verify and stored != fingerprint_arrays(arrays):
        raise DataError(
            f"prepared dataset {path} does not match its stored fingerprint; "
            "delete it and prepare it again"
        )
    return arrays


def dataset_fingerprint(path: str | os.PathLike[str]) -> str:
    """The content fingerprint stored in ``path`` (cheap: reads one attribute).

    Falls back to hashing the contents for a file that lacks the attribute.
    """
    path = Path(path)
    if not path.is_file():
        raise _missing(path)
    try:
        with h5py.File(path, "r") as f:
            stored = f.attrs.get("fingerprint")
    except OSError as exc:
        raise _corrupt(path, exc) from exc
    if stored is None:
        return fingerprint_arrays(load_dataset(path))
    return str(_decode_attr(stored))
