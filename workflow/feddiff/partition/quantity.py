"""Quantity skew (``quantity``): unequal client sizes, iid labels.

Isolates size heterogeneity from label heterogeneity (NIID-Bench "iid-diff-quantity"):
client shares are ``p ~ Dir(alpha * 1_K)``, redrawn until every client gets at
least ``min_size`` samples, and a seeded permutation of all samples is cut at
``(cumsum(p) * N).astype(int)[:-1]``. Because the permutation ignores labels each
client's label mix matches the global one up to sampling noise.

Draw order: ``rng.permutation(N)``, then ``rng.dirichlet`` per attempt;
``rng = RandomState(seed)`` of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from feddiff.partition.iid import (
    check_int,
    check_labels,
    check_num_clients,
    check_positive_real,
    make_rng,
)
from feddiff.schema import setting

DEFAULT_MIN_SIZE = 1
MAX_RETRIES = 10_000


@dataclass(frozen=True)
class QuantityParams:
    """``alpha``: Dirichlet concentration of the client sizes; each gets ``min_size``."""

    alpha: float = setting(exclusive_minimum=0)
    min_size: int = setting(DEFAULT_MIN_SIZE, minimum=0)


def quantity(
    labels: np.ndarray,
    num_clients: int,
    seed: int,
    num_classes: int | None = None,
    *,
    alpha: float,
    min_size: int = DEFAULT_MIN_SIZE,
    max_retries: int = MAX_RETRIES,
) -> list[np.ndarray]:
    """Dirichlet client sizes over a label-blind permutation; sorted positions per client."""
    labels, _ = check_labels(labels, num_classes)
    n = labels.size
    k = check_num_clients(num_clients, n)
    alpha = check_positive_real("alpha", alpha)
    min_size = check_int("min_size", min_size, minimum=0)
    if min_size * k > n:
        raise ValueError(
            f"min_size={min_size} is infeasible: {k} clients x {min_size} > {n} samples"
        )
    max_retries = check_int("max_retries", max_retries, minimum=1)
    rng = make_rng(seed)

    perm = rng.permutation(n)
    conc = np.repeat(alpha, k)
    for _ in range(max_retries):
        cuts = (np.cumsum(rng.dirichlet(conc)) * n).astype(np.int64)[:-1]
        sizes = np.diff(np.concatenate(([0], cuts, [n])))
        if sizes.min() >= min_size:
            return [np.sort(part).astype(np.int64) for part in np.split(perm, cuts)]
    raise RuntimeError(
        f"quantity: no draw gave all {k} clients >= min_size={min_size} samples in "
        f"{max_retries} attempts (alpha={alpha}); raise alpha or lower min_size"
    )
