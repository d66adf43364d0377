"""The auxiliary-set file: images, labels and which model made each image.

Layout (plain HDF5, readable with ``h5ls``): ``images`` uint8 NHWC like the prepared
dataset, ``labels`` int64, ``source`` int64 (the client whose model drew the image;
``-1`` for the Stable Diffusion generator), and attributes ``settings`` (JSON of the
resolved settings), ``dataset_fingerprint``, ``partition``, ``seed``,
``allocation`` (the ``(K, C)`` matrix), ``class_names``, ``generator`` and
``fingerprint`` (a hash of the contents, so the runs that use it can refer to it).
Written atomically: an interrupted generation leaves no file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from feddiff.data.errors import DataError
from feddiff.utils.atomic import atomic_path

STABLE_DIFFUSION_SOURCE = -1


@dataclass
class AuxiliarySet:
    """An auxiliary dataset in memory (uint8 NHWC images)."""

    images: np.ndarray
    labels: np.ndarray
    source: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(
                f"images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}"
            )
        if len(self.labels) != n or len(self.source) != n:
            raise ValueError(
                f"{n} images but {len(self.labels)} labels and {len(self.source)} sources"
            )

    def fingerprint(self) -> str:
        h = hashlib.sha256(b"feddiff-auxiliary-v1\0")
        h.update(json.dumps(list(self.images.shape)).encode())
        for arr in (self.images, self.labels.astype("<i8"), self.source.astype("<i8")):
            h.update(np.ascontiguousarray(arr).data)
        return h.hexdigest()


def save_auxiliary(aux: AuxiliarySet, path: str | Path) -> str:
    """Write ``aux`` atomically; returns its content fingerprint."""
    fp = aux.fingerprint()
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("images", data=aux.images, compression="gzip", compression_opts=1)
        f.create_dataset("labels", data=aux.labels.astype("<i8"))
        f.create_dataset("source", data=aux.source.astype("<i8"))
        for key, value in aux.attrs.items():
            f.attrs[key] = (
                value if isinstance(value, (str, int, float, bool)) else json.dumps(value)
            )
        f.attrs["fingerprint"] = fp
    return fp


def load_auxiliary(path: str | Path) -> AuxiliarySet:
    """Read a file written by :func:`save_auxiliary`; a clear error when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"auxiliary set {path} does not exist; generate it first "
            "(`python -m feddiff generate-auxiliary`, the pipeline's generate_auxiliary rule)"
        )
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            aux = AuxiliarySet(f["images"][()], f["labels"][()], f["source"][()], attrs)
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(
            f"auxiliary set {path} is unreadable or not an auxiliary set "
            f"({type(exc).__name__}: {exc}); delete it and generate it again"
        ) from exc
    return aux


def load_auxiliary_tensors(
    path: str | Path,
    x_train: torch.Tensor,
    num_classes: int,
    dataset_fingerprint: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The set as (uint8 NCHW images, labels) on ``x_train``'s device, checked against the data
    it is used with: same dataset (fingerprint), same image shape, labels in range."""
    aux = load_auxiliary(path)
    made_from = aux.attrs.get("dataset_fingerprint")
    if dataset_fingerprint is not None and made_from not in (None, dataset_fingerprint):
        raise ValueError(
            f"auxiliary set {path} was generated from another dataset (fingerprint "
            f"{str(made_from)[:12]}, this run's {dataset_fingerprint[:12]}); regenerate it"
        )
    shape = (*x_train.shape[2:], x_train.shape[1])
    if tuple(aux.images.shape[1:]) != tuple(shape):
        raise ValueError(
            f"auxiliary images are {aux.images.shape[1:]} (H, W, C) but the data's are "
            f"{tuple(shape)}"
        )
    if aux.labels.size and int(aux.labels.max()) >= num_classes:
        raise ValueError(
            f"auxiliary labels go up to {int(aux.labels.max())} but the data has {num_classes} "
            "classes"
        )
    images = torch.from_numpy(aux.images).permute(0, 3, 1, 2).contiguous().to(x_train.device)
    return images, torch.as_tensor(aux.labels, dtype=torch.long, device=x_train.device)
