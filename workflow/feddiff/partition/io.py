"""Partition files: one ``.npz`` per partition, written atomically.

Layout: ``indices`` (all clients' indices concatenated, int64), ``offsets`` (int64,
length K+1, client k is ``indices[offsets[k]:offsets[k+1]]``) and ``meta`` (a JSON
string). A ragged list stored flat with offsets needs no pickling, so files load
with ``allow_pickle=False`` and cannot run code; JSON keeps the metadata readable
from any language. Writing goes through ``atomic_path`` so an interrupted job never
leaves a truncated file that a later rule would accept.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from feddiff.utils.atomic import atomic_path


def _json_default(obj: Any) -> Any:
    """Let numpy scalars and arrays in ``meta`` serialise as plain JSON."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"meta value of type {type(obj).__name__} is not JSON-serialisable")


def save_partition(
    path: str | os.PathLike[str], clients: list[np.ndarray], meta: dict[str, Any]
) -> None:
    """Write ``clients`` (one index array per client) and ``meta`` to ``path``."""
    arrays = [np.asarray(c) for c in clients]
    for k, arr in enumerate(arrays):
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(
                f"client {k}: expected a 1-D integer array, got {arr.dtype} {arr.shape}"
            )
    sizes = np.array([a.size for a in arrays], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    indices = np.concatenate(arrays).astype(np.int64) if arrays else np.empty(0, np.int64)
    meta_json = json.dumps(meta, sort_keys=True, default=_json_default)
    with atomic_path(path) as tmp:
        # A file object, not a name: np.savez would append ".npz" to a bare name.
        with open(tmp, "wb") as fh:
            np.savez(fh, indices=indices, offsets=offsets, meta=np.array(meta_json))


def load_partition(path: str | os.PathLike[str]) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`save_partition`; returns ``(clients, meta)``."""
    with np.load(path, allow_pickle=False) as data:
        missing = {"indices", "offsets", "meta"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: not a partition file, missing {sorted(missing)}")
        indices = data["indices"].astype(np.int64)
        offsets = data["offsets"].astype(np.int64)
        meta = json.loads(str(data["meta"]))
    if (
        offsets.ndim != 1
        or offsets.size == 0
        or offsets[0] != 0
        or offsets[-1] != indices.size
        or np.any(np.diff(offsets) < 0)
    ):
        raise ValueError(f"{path}: offsets do not describe the {indices.size} stored indices")
    clients = [indices[a:b].copy() for a, b in zip(offsets[:-1], offsets[1:])]
    return clients, meta
