"""Multi-domain datasets (``source: domains``): named domains that share one class list.

Feature shift (FedBN's setting) means clients whose images come from different domains
with the same classes: Digits (MNIST, USPS, SVHN, SynthDigits), Office-Caltech-10,
PACS, DomainNet. A spec such as ::

    source: domains
    image_size: 16
    channels: 3
    domains:
      mnist: {source: mnist, class_names: ["0", "1", ..., "9"]}   # torchvision, downloads
      usps: {source: usps}
      synth: {source: imagefolder, root: resources/synth_digits}
      mnist_inv: {derive: {from: mnist, transform: invert}}

loads each *source* domain with its own loader (any single-dataset source of
:data:`feddiff.data.sources.SINGLE_SOURCES`, with that source's keys), or *derives* a domain from
another one by a deterministic transform (:mod:`feddiff.data.transforms`: rotate,
invert, grayscale, blur, colour_cast, sketch) applied to both of its splits, so the
scikit-learn digits and the shared CIFAR-10 copy give multi-domain data offline. A
derived domain holds the same underlying images as the domain it comes from, as in
Rotated MNIST.

Per domain, besides its loader's keys: ``class_names`` renames the classes by position
(MNIST's torchvision names are ``"0 - zero"``..., SVHN's and USPS's ``"0"``...), and
``max_train_per_class`` / ``max_test_per_class`` keep the first n samples of each class
in source order (an image folder applies them while listing files).

Every domain is brought to ``image_size`` x ``image_size`` and ``channels`` (1 or 3) at
prepare time: PIL converts gray to RGB by copying the channel and RGB to gray by BT.601
luma, and resizes bicubically (image folders are resized while decoding, so photos of
many sizes can be read). Derived domains are computed from the brought images. The
class lists must match exactly, in order; otherwise the error names the domain and the
class. Domains are stored in declaration order, with the domain of every sample
(:class:`~feddiff.data.h5.DatasetArrays` ``domain_train`` / ``domain_test``).

Real sets without a torchvision loader are read from an image folder with
``root/train/<class>/`` and ``root/test/<class>/`` (split them first): Office-Caltech-10
(amazon, caltech, dslr, webcam), PACS (photo, art_painting, cartoon, sketch), DomainNet
(clipart, infograph, painting, quickdraw, real, sketch) and SynthDigits, one root per
domain. Torchvision sources (MNIST, USPS, SVHN) download when online; offline their
error names the folder and files looked for and the image-folder alternative.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from feddiff.data.errors import DataError
from feddiff.data.h5 import DatasetArrays
from feddiff.data.sources import SINGLE_SOURCES, load_with, loader_kwargs
from feddiff.data.transforms import apply_transform, check_transform

#: Keys of a source domain handled here rather than by its loader.
DOMAIN_KEYS = frozenset({"class_names", "max_train_per_class", "max_test_per_class"})
CHANNEL_MODES = {1: "L", 3: "RGB"}


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def check_domains_spec(domains: Any) -> None:
    """Data-free checks of a ``domains`` mapping; errors start ``domains.<name>...``.

    Each entry has either ``source`` (not ``domains`` itself) or ``derive`` with
    ``from`` (another domain; no cycles), ``transform`` and that transform's parameters.
    """
    if not isinstance(domains, Mapping) or not domains:
        raise DataError(f"domains: must map domain names to specs, got {domains!r}")
    for name, entry in domains.items():
        where = f"domains.{name}"
        if not isinstance(entry, Mapping):
            raise DataError(f"{where}: must be a mapping with 'source' or 'derive', got {entry!r}")
        if ("source" in entry) == ("derive" in entry):
            raise DataError(
                f"{where}: give exactly one of 'source' (load it) or 'derive' (from another domain)"
            )
        if "derive" in entry:
            extra = sorted(set(entry) - {"derive"})
            if extra:
                raise DataError(f"{where}: a derived domain takes only 'derive', not {extra}")
            _check_derive(where, entry["derive"], domains)
            continue
        source = entry["source"]
        if source not in SINGLE_SOURCES:
            raise DataError(
                f"{where}.source: {source!r} is not a single-dataset source; choose one of "
                f"{sorted(SINGLE_SOURCES)}"
            )
        try:  # the loader's own keys, as preparing will check them
            loader_kwargs(source, SINGLE_SOURCES[source], _loader_spec(entry), Path("resources"))
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
        names = entry.get("class_names")
        if names is not None and (
            not isinstance(names, list)
            or not names
            or not all(isinstance(n, (str, int)) for n in names)
        ):
            raise DataError(
                f"{where}.class_names: must be a non-empty list of names, got {names!r}"
            )
        for key in ("max_train_per_class", "max_test_per_class"):
            if key in entry and not _is_int(entry[key], 1):
                raise DataError(f"{where}.{key}: must be a positive integer, got {entry[key]!r}")
    for name in domains:
        _root_of(name, domains)  # raises on a cycle


def _check_derive(where: str, derive: Any, domains: Mapping[str, Any]) -> None:
    if not isinstance(derive, Mapping):
        raise DataError(
            f"{where}.derive: must be a mapping with 'from' and 'transform', got {derive!r}"
        )
    for key in ("from", "transform"):
        if key not in derive:
            raise DataError(f"{where}.derive.{key} is required")
    if derive["from"] not in domains:
        raise DataError(
            f"{where}.derive.from: {derive['from']!r} is not a domain of this dataset "
            f"(domains: {sorted(domains)})"
        )
    params = {k: v for k, v in derive.items() if k not in ("from", "transform")}
    try:
        check_transform(derive["transform"], params)
    except DataError as exc:
        raise DataError(f"{where}.derive: {exc}") from None


def _root_of(name: str, domains: Mapping[str, Any]) -> str:
    """The source domain a (chain of) derived domain(s) comes from; errors on a cycle."""
    seen = [name]
    while "derive" in domains[seen[-1]]:
        parent = domains[seen[-1]]["derive"]["from"]
        if parent in seen:
            raise DataError(
                f"domains.{name}.derive: a cycle of derived domains {' -> '.join([*seen, parent])}"
            )
        seen.append(parent)
    return seen[-1]


def _loader_spec(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A source domain's spec for its loader: without the keys handled here, unless the
    loader takes them itself (an image folder's ``max_*_per_class``)."""
    params = inspect.signature(SINGLE_SOURCES[entry["source"]]).parameters
    return {k: v for k, v in entry.items() if k not in DOMAIN_KEYS or k in params}


def conform(images: np.ndarray, image_size: int, channels: int) -> np.ndarray:
    """(N, image_size, image_size, channels) uint8: PIL mode conversion, bicubic resize."""
    h, w, c = images.shape[1:]
    if (h, w, c) == (image_size, image_size, channels):
        return images
    from PIL import Image

    out = np.empty((len(images), image_size, image_size, channels), dtype=np.uint8)
    for i, img in enumerate(images):
        pil = Image.fromarray(img[..., 0] if c == 1 else img).convert(CHANNEL_MODES[channels])
        if pil.size != (image_size, image_size):
            pil = pil.resize((image_size, image_size), Image.Resampling.BICUBIC)
        out[i] = np.asarray(pil, dtype=np.uint8).reshape(image_size, image_size, channels)
    return out


def first_per_class(labels: np.ndarray, limit: int | None) -> np.ndarray:
    """Indices of the first ``limit`` samples of every class, in source order."""
    if limit is None:
        return np.arange(labels.size)
    keep = [np.flatnonzero(labels == c)[:limit] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep)) if keep else np.arange(0)


def _load_source_domain(
    name: str, entry: Mapping[str, Any], image_size: int, channels: int, resources_dir: Path
) -> DatasetArrays:
    params = inspect.signature(SINGLE_SOURCES[entry["source"]]).parameters
    spec = _loader_spec(entry)
    if "image_size" in params and "image_size" not in spec and entry["source"] == "imagefolder":
        spec["image_size"] = image_size  # decode photos of any size straight to the target
    try:
        arrays = load_with(SINGLE_SOURCES, spec, resources_dir)
    except DataError as exc:
        raise DataError(f"domain {name!r}: {exc}") from exc
    if "class_names" in entry:
        new = [str(n) for n in entry["class_names"]]
        if len(new) != arrays.num_classes:
            raise DataError(
                f"domains.{name}.class_names: {len(new)} names for the source's "
                f"{arrays.num_classes} classes {arrays.class_names}"
            )
        arrays.class_names = new
    keep = {
        split: first_per_class(y, None if k in params else entry.get(k))
        for split, y, k in (
            ("train", arrays.y_train, "max_train_per_class"),
            ("test", arrays.y_test, "max_test_per_class"),
        )
    }
    return DatasetArrays(
        x_train=conform(arrays.x_train[keep["train"]], image_size, channels),
        y_train=arrays.y_train[keep["train"]],
        x_test=conform(arrays.x_test[keep["test"]], image_size, channels),
        y_test=arrays.y_test[keep["test"]],
        class_names=arrays.class_names,
        attrs=arrays.attrs,
    )


def _check_classes(loaded: Mapping[str, DatasetArrays]) -> list[str]:
    """The shared class list; an error naming the domain and the class that differs."""
    (first, ref), *rest = loaded.items()
    for name, arrays in rest:
        got = arrays.class_names
        if got == ref.class_names:
            continue
        for i, (a, b) in enumerate(zip(got, ref.class_names)):
            if a != b:
                raise DataError(
                    f"domain {name!r} has class {a!r} at position {i} where domain {first!r} has "
                    f"{b!r}; all domains need the same classes in the same order ({name}: {got}; "
                    f"{first}: {ref.class_names}). Same classes, other names? Rename them with the "
                    "domain's 'class_names' key"
                )
        longer, shorter = (
            (got, ref.class_names) if len(got) > len(ref.class_names) else (ref.class_names, got)
        )
        owner = name if longer is got else first
        raise DataError(
            f"domain {owner!r} has class {longer[len(shorter)]!r} that domain "
            f"{(first if owner == name else name)!r} lacks; all domains need the same classes "
            f"({name}: {got}; {first}: {ref.class_names})"
        )
    return list(ref.class_names)


def load_domains(
    *,
    domains: Mapping[str, Any],
    image_size: int,
    channels: int,
    resources_dir: str | os.PathLike[str] = Path("resources"),
) -> DatasetArrays:
    """Load, bring to one size and channel count, derive, check classes, concatenate.

    Everything happens in memory; the caller writes the file atomically, so an error
    (a missing domain source, a class-list mismatch) leaves no output.
    """
    check_domains_spec(domains)
    if not _is_int(image_size, 4):
        raise DataError(f"domains: 'image_size' must be an integer >= 4, got {image_size!r}")
    if channels not in CHANNEL_MODES or isinstance(channels, bool):
        raise DataError(f"domains: 'channels' must be 1 or 3, got {channels!r}")
    loaded: dict[str, DatasetArrays] = {}

    def resolve(name: str) -> DatasetArrays:
        if name in loaded:
            return loaded[name]
        entry = domains[name]
        if "source" in entry:
            arrays = _load_source_domain(name, entry, image_size, channels, Path(resources_dir))
        else:
            derive = dict(entry["derive"])
            base = resolve(derive.pop("from"))
            transform = derive.pop("transform")
            try:
                x_train = apply_transform(base.x_train, transform, derive)
                x_test = apply_transform(base.x_test, transform, derive)
            except DataError as exc:
                raise DataError(f"domains.{name}.derive: {exc}") from exc
            arrays = DatasetArrays(
                x_train=x_train,
                y_train=base.y_train,
                x_test=x_test,
                y_test=base.y_test,
                class_names=base.class_names,
                attrs={"derived_from": entry["derive"]},
            )
        loaded[name] = arrays
        return arrays

    for name in domains:
        resolve(name)
    ordered = {name: loaded[name] for name in domains}
    class_names = _check_classes(ordered)
    parts = list(ordered.values())
    return DatasetArrays(
        x_train=np.concatenate([a.x_train for a in parts]),
        y_train=np.concatenate([a.y_train for a in parts]),
        x_test=np.concatenate([a.x_test for a in parts]),
        y_test=np.concatenate([a.y_test for a in parts]),
        class_names=class_names,
        attrs={
            "image_size": image_size,
            "channels": channels,
            "domain_provenance": {name: a.attrs for name, a in ordered.items()},
            "domain_sizes": {name: [len(a.y_train), len(a.y_test)] for name, a in ordered.items()},
        },
        domain_names=list(ordered),
        domain_train=np.repeat(np.arange(len(parts)), [len(a.y_train) for a in parts]),
        domain_test=np.repeat(np.arange(len(parts)), [len(a.y_test) for a in parts]),
    )
