"""IID partition, plus the input checks every scheme shares.

IID is the baseline every non-iid scheme is compared against, so the small
validators that all schemes need live here rather than in a module of their own:
a scheme called directly (not through :func:`feddiff.partition.partition_indices`)
must still reject bad input with a ``ValueError`` that names the argument.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

_MAX_SEED = 2**32  # numpy.random.RandomState accepts seeds in [0, 2**32).


@dataclass(frozen=True)
class IIDParams:
    """The ``iid`` scheme's parameters beyond ``num_clients``: none."""


def check_labels(labels: np.ndarray, num_classes: int | None = None) -> tuple[np.ndarray, int]:
    """Return ``labels`` as a 1-D int64 array and the number of classes.

    Labels must be integers in ``[0, num_classes)``; with ``num_classes=None`` it is
    inferred as ``max(labels) + 1`` (classes above the largest label cannot be seen).
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("labels is empty: there is nothing to partition")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must have an integer dtype, got {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        raise ValueError(f"labels must be >= 0, got {lo}")
    if num_classes is None:
        num_classes = hi + 1
    check_int("num_classes", num_classes, minimum=1)
    if hi >= num_classes:
        raise ValueError(f"labels must be < num_classes={num_classes}, got label {hi}")
    return arr, int(num_classes)


def check_int(
    name: str, value: object, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Check ``value`` is an integer (bools rejected) within bounds; name it on error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return int(value)


def check_positive_real(name: str, value: object) -> float:
    """Check ``value`` is a finite real number > 0 (e.g. a Dirichlet concentration)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_num_clients(num_clients: object, num_samples: int) -> int:
    """Every client must be able to receive at least one sample."""
    k = check_int("num_clients", num_clients, minimum=1)
    if k > num_samples:
        raise ValueError(f"num_clients={k} is more than the {num_samples} samples to partition")
    return k


def make_rng(seed: object) -> np.random.RandomState:
    """A RandomState of the scheme's own, so results never depend on global RNG use.

    ``RandomState`` (not ``Generator``) because its streams are frozen by numpy's
    compatibility policy and the FedDifRC reference uses it.
    """
    s = check_int("seed", seed, minimum=0, maximum=_MAX_SEED - 1)
    return np.random.RandomState(s)


def iid(
    labels: np.ndarray, num_clients: int, seed: int, num_classes: int | None = None
) -> list[np.ndarray]:
    """Split a seeded permutation of all positions into ``num_clients`` near-equal parts.

    Part sizes differ by at most one (the first ``N mod K`` parts are one longer);
    each part is returned sorted.
    """
    labels, _ = check_labels(labels, num_classes)
    k = check_num_clients(num_clients, labels.size)
    perm = make_rng(seed).permutation(labels.size)
    return [np.sort(part).astype(np.int64) for part in np.array_split(perm, k)]
