"""NIID-Bench Dirichlet label skew with a minimum client size (``dirichlet_min``).

The variant most FL papers mean by "Dir(alpha)": per class, draw client proportions
``p ~ Dir(alpha * 1_K)`` over all ``K`` clients at once, zero the ``p`` of clients
already holding ``>= N/K`` samples, renormalise and split the (shuffled) class. The
whole draw is repeated until every client holds at least ``min_size`` samples, so
tiny alphas cannot leave a client empty. Unlike ``dirichlet`` there is no final
rebalancing: client sizes vary as well as label mixes.

Draw order per attempt, for c = 0..C-1: ``rng.shuffle(indices of c)`` then
``rng.dirichlet``; ``rng = RandomState(seed)`` of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from feddiff.partition.dirichlet import split_points
from feddiff.partition.iid import (
    check_int,
    check_labels,
    check_num_clients,
    check_positive_real,
    make_rng,
)
from feddiff.schema import setting

DEFAULT_MIN_SIZE = 10
MAX_RETRIES = 10_000


@dataclass(frozen=True)
class DirichletMinParams:
    """``alpha`` as in ``dirichlet``; resampled until every client holds ``min_size``."""

    alpha: float = setting(exclusive_minimum=0)
    min_size: int = setting(DEFAULT_MIN_SIZE, minimum=0)


def dirichlet_min(
    labels: np.ndarray,
    num_clients: int,
    seed: int,
    num_classes: int | None = None,
    *,
    alpha: float,
    min_size: int = DEFAULT_MIN_SIZE,
    max_retries: int = MAX_RETRIES,
) -> list[np.ndarray]:
    """Dirichlet label skew, resampled until every client has ``min_size`` samples.

    Returns one sorted array of positions into ``labels`` per client.
    """
    labels, num_classes = check_labels(labels, num_classes)
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

    by_class = [np.flatnonzero(labels == c) for c in range(num_classes)]
    conc = np.repeat(alpha, k)
    cap = n / k
    for _ in range(max_retries):
        pieces: list[list[np.ndarray]] = [[] for _ in range(k)]
        sizes = np.zeros(k, dtype=np.int64)
        for members in by_class:
            idx_c = members.copy()
            rng.shuffle(idx_c)
            p = rng.dirichlet(conc)
            for j, part in enumerate(np.split(idx_c, split_points(p, sizes, cap, idx_c.size))):
                pieces[j].append(part)
                sizes[j] += part.size
        if sizes.min() >= min_size:
            return [np.sort(np.concatenate(lst)).astype(np.int64) for lst in pieces]
    raise RuntimeError(
        f"dirichlet_min: no draw gave all {k} clients >= min_size={min_size} samples in "
        f"{max_retries} attempts (alpha={alpha}); raise alpha or lower min_size"
    )
