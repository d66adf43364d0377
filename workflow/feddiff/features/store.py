"""The features file: ``results/features/<dataset>/<backbone>/<settings-tag>.h5``.

Layout (plain HDF5, readable with ``h5ls``)::

    /train/conditional    (N, K, D) float32   one vector per image and conditional prompt
    /<split>/denoised     (N, D)    float32   one vector per image, denoising prompt
    /<split>/labels       (N,)      int64
    /<split>/done         (N,)      bool      rows written so far (resume)
    /pca/layer<l>/{components (d, C), mean (C,), explained_variance, explained_variance_ratio}

for splits ``train`` and ``test`` (the test split has no conditional vectors); ``D`` is the
sum of the per-block PCA widths, the blocks' slices in the order of ``blocks``. File
attributes hold every setting, the model's and the dataset's fingerprints, and
``identity``: the canonical JSON those are compared by. A reader refuses a file whose
identity differs from what it expects.

The file is built under ``<name>.partial.h5`` (with ``/pca_fit`` holding the PCA's
running moments while the fit is under way) and renamed onto the final name only when
complete, so a half-written file never carries the final name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from feddiff import __version__
from feddiff.features.pca import LayerPCA, MomentAccumulator

FORMAT = "feddiff-features-v1"
SPLITS = ("train", "test")
_CHUNK_BYTES = 1 << 20


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def partial_path(path: Path) -> Path:
    """The in-progress file's name: never the final one."""
    return path.with_name(path.stem + ".partial.h5")


def read_identity(path: Path) -> tuple[str | None, bool]:
    """(stored identity JSON, complete?) of a features file; (None, False) if unreadable."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                return None, False
            return str(f.attrs["identity"]), bool(f.attrs.get("complete", False))
    except (OSError, KeyError):
        return None, False


def is_current(path: Path, identity: Mapping[str, Any]) -> bool:
    """True when ``path`` is a complete features file made with exactly ``identity``."""
    stored, complete = read_identity(path)
    return complete and stored == canonical(identity)


def _encode(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)):
        return value
    return canonical(value)


def _rows_per_chunk(row_bytes: int, n: int) -> int:
    return max(1, min(n, _CHUNK_BYTES // max(1, row_bytes)))


def create_file(
    path: Path,
    identity: Mapping[str, Any],
    info: Mapping[str, Any],
    sizes: Mapping[str, int],
    num_conditional: int,
    dim: int,
    labels: Mapping[str, np.ndarray],
) -> None:
    """A new in-progress file with empty datasets and all attributes but ``complete``."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["feddiff_version"] = __version__
        f.attrs["identity"] = canonical(identity)
        f.attrs["complete"] = False
        for key, value in info.items():
            f.attrs[key] = _encode(value)
        for split in SPLITS:
            n = int(sizes[split])
            g = f.create_group(split)
            if split == "train":
                rows = _rows_per_chunk(num_conditional * dim * 4, n)
                g.create_dataset(
                    "conditional",
                    shape=(n, num_conditional, dim),
                    dtype="f4",
                    chunks=(rows, num_conditional, dim) if n else None,
                )
            g.create_dataset(
                "denoised",
                shape=(n, dim),
                dtype="f4",
                chunks=(_rows_per_chunk(dim * 4, n), dim) if n else None,
            )
            g.create_dataset("labels", data=np.asarray(labels[split], dtype="<i8"))
            g.create_dataset("done", shape=(n,), dtype=bool, fillvalue=False)


def save_fit_state(f: h5py.File, accs: Sequence[MomentAccumulator], next_index: int) -> None:
    """Running PCA moments after ``next_index`` fit images (overwritten in place)."""
    g = f.require_group("pca_fit")
    for layer, acc in enumerate(accs):
        for name, value in (("total", acc.total), ("gram", acc.gram)):
            key = f"layer{layer}/{name}"
            arr = value.detach().cpu().numpy()
            if key in g:
                g[key][...] = arr
            else:
                g.create_dataset(key, data=arr)
        g[f"layer{layer}"].attrs["count"] = acc.count
    g.attrs["next"] = int(next_index)
    f.flush()


def load_fit_state(f: h5py.File, num_layers: int) -> tuple[list[MomentAccumulator], int] | None:
    if "pca_fit" not in f:
        return None
    g = f["pca_fit"]
    accs = [
        MomentAccumulator(
            float(g[f"layer{layer}"].attrs["count"]),
            torch.from_numpy(g[f"layer{layer}/total"][()]),
            torch.from_numpy(g[f"layer{layer}/gram"][()]),
        )
        for layer in range(num_layers)
    ]
    return accs, int(g.attrs["next"])


def save_pca(f: h5py.File, pcas: Sequence[LayerPCA]) -> None:
    """Write the bases (and drop the running moments): the fit is done once per file."""
    g = f.create_group("pca")
    for layer, p in enumerate(pcas):
        lg = g.create_group(f"layer{layer}")
        lg.create_dataset("components", data=p.components.numpy())
        lg.create_dataset("mean", data=p.mean.numpy())
        lg.create_dataset("explained_variance", data=p.explained_variance.numpy())
        lg.create_dataset("explained_variance_ratio", data=p.explained_variance_ratio.numpy())
        lg.attrs["num_samples"] = p.num_samples
    if "pca_fit" in f:
        del f["pca_fit"]
    f.flush()


def load_pca(f: h5py.File) -> list[LayerPCA] | None:
    if "pca" not in f:
        return None
    g = f["pca"]
    return [
        LayerPCA(
            *(
                torch.from_numpy(g[f"layer{layer}/{k}"][()])
                for k in ("components", "mean", "explained_variance", "explained_variance_ratio")
            ),
            num_samples=float(g[f"layer{layer}"].attrs["num_samples"]),
        )
        for layer in range(len(g))
    ]


@dataclass
class FeatureCache:
    """One split of a features file, as tensors (``conditional`` is empty for the test split)."""

    conditional: torch.Tensor
    denoised: torch.Tensor
    labels: torch.Tensor
    layer_dims: list[int]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return str(self.attrs.get("mode", "supervised"))

    def layer_columns(self, layers: Sequence[int] | None) -> torch.Tensor:
        """Column indices of the selected layers' slices of the concatenated vector."""
        bounds = np.cumsum([0, *self.layer_dims])
        chosen = range(len(self.layer_dims)) if layers is None else layers
        bad = [layer for layer in chosen if not 0 <= layer < len(self.layer_dims)]
        if bad:
            raise ValueError(
                f"layer(s) {bad} not in this features file ({len(self.layer_dims)} layers)"
            )
        return torch.cat([torch.arange(bounds[layer], bounds[layer + 1]) for layer in chosen])


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def read_attrs(path: Path) -> dict[str, Any]:
    with h5py.File(path, "r") as f:
        return {k: _decode(v) for k, v in f.attrs.items()}


def load_features(
    path: str | Path,
    split: str = "train",
    device: torch.device | str = "cpu",
    dataset_fingerprint: str | None = None,
) -> FeatureCache:
    """A complete features file's ``split``; refuses incomplete or mismatched files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"features file {path} does not exist; run the extract-features stage first"
        )
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _decode(v) for k, v in f.attrs.items()}
            if attrs.get("format") != FORMAT or not attrs.get("complete"):
                raise ValueError(
                    f"features file {path} is incomplete or not a feddiff features file; "
                    "run the extract-features stage again"
                )
            if not bool(np.all(f[f"{split}/done"][()])):
                raise ValueError(f"features file {path}: split {split} is not fully extracted")
            cond = (
                torch.from_numpy(f[f"{split}/conditional"][()])
                if f"{split}/conditional" in f
                else torch.empty((0,))
            )
            den = torch.from_numpy(f[f"{split}/denoised"][()])
            labels = torch.from_numpy(f[f"{split}/labels"][()])
    except OSError as exc:
        raise ValueError(
            f"features file {path} is unreadable ({exc}); delete it and extract again"
        ) from exc
    if dataset_fingerprint is not None and attrs.get("dataset_fingerprint") != dataset_fingerprint:
        raise ValueError(
            f"features file {path} was extracted from another dataset (fingerprint "
            f"{str(attrs.get('dataset_fingerprint'))[:12]}..., the run's data is "
            f"{dataset_fingerprint[:12]}...); extract the features again for this dataset"
        )
    return FeatureCache(
        cond.to(device), den.to(device), labels.to(device), list(attrs["layer_dims"]), attrs
    )
