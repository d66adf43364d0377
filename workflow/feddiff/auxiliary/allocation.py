"""How many auxiliary images of each class each client's model generates.

FedDDPM's server asks each client model only for the classes that client holds, in
proportion to its counts, so the auxiliary set follows the federation's overall label
distribution and no model is asked for a class it never saw.
"""

from __future__ import annotations

import numpy as np


def class_counts(labels: np.ndarray, clients: list[np.ndarray], num_classes: int) -> np.ndarray:
    """``(K, C)`` label counts of each client's index set."""
    return np.stack([np.bincount(labels[idx], minlength=num_classes) for idx in clients]).astype(
        np.int64
    )


def allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """``(K, C)`` integer allocation summing to ``total``, proportional to ``counts``.

    Largest-remainder rounding of ``total * counts / counts.sum()``: every cell is
    within one image of its exact share, cells with no data get none, and ties break
    towards the larger count, then the lower (client, class) index, so the result is
    deterministic.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2:
        raise ValueError(f"counts must be a (clients, classes) matrix, got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError("counts must be non-negative")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    n = int(counts.sum())
    if n == 0:
        raise ValueError("counts are all zero: no client holds any data")
    exact = counts.astype(np.float64) * total / n
    out = np.floor(exact).astype(np.int64)
    remainder = exact - out
    left = int(total - out.sum())
    if left:
        flat = np.lexsort((np.arange(counts.size), -counts.ravel(), -remainder.ravel()))
        eligible = flat[counts.ravel()[flat] > 0]
        out.ravel()[eligible[:left]] += 1
    return out
