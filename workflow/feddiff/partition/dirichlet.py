"""Label-skew partition of the FedDifRC reference code (``dirichlet`` scheme).

The algorithm is reproduced step for step, RNG draw for RNG draw, so a partition
made here has the same client x class counts as the reference for the same seed:

1. ``rng = RandomState(seed)``. List the ``(index, label)`` pairs class-major (all of
   class 0, then class 1, ...; ascending index within a class) and ``rng.shuffle``
   the list. Shuffling the rows of a 2-D array makes exactly the same Fisher-Yates
   draws as shuffling a Python list of tuples, as the reference does.
2. Clients are handled in groups of 5: ``G = ceil(K/5)`` groups, the last holding
   ``K - 5(G-1)``. The shuffled list is cut into ``G`` consecutive chunks of
   ``int(5/K * N)`` pairs (the last chunk takes the rest).
3. Per chunk (``m`` clients, ``S`` pairs), repeat until the smallest of the ``m``
   lists holds at least ``int(0.5 * S / m)`` indices: start ``m`` empty lists; for
   each class ``c`` take its indices in chunk order, draw
   ``p = rng.dirichlet([alpha] * m)``, zero the ``p`` of every list already holding
   ``>= S/m`` indices, renormalise, split the class at
   ``(cumsum(p) * n_c).astype(int)[:-1]`` and append the pieces in order.
4. Concatenate all groups' lists and cut into ``K`` consecutive near-equal parts
   (the first ``N mod K`` one longer). Part ``k`` is client ``k``.

Step 4 rebalances client sizes, so the label skew comes from the lists being cut
across boundaries, not from unequal client sizes. Client arrays keep this order
(they are not sorted) so the partition is the reference's, index for index.
"""

from __future__ import annotations

import math
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

GROUP_SIZE = 5
"""Clients per group ("auxiliary workers" in the reference)."""

MAX_RETRIES = 10_000


@dataclass(frozen=True)
class DirichletParams:
    """``alpha``: the Dirichlet concentration of each class's split over clients."""

    alpha: float = setting(exclusive_minimum=0)


"""Bound on redraws per group; the reference loops forever."""


def split_points(p: np.ndarray, sizes: np.ndarray, cap: float, n: int) -> np.ndarray:
    """Cut points that split ``n`` items by ``p``, skipping lists already at ``cap``.

    Shared with ``dirichlet_min``. If every list still open has ``p == 0`` (all lists
    full, or all open lists drew an exact zero), the reference computes ``0/0 = NaN``
    and the NaN cast to int is ``INT64_MIN`` on x86-64, which makes ``np.split`` put
    the whole class in the last list. That outcome is reproduced explicitly here, so
    the result does not rest on an undefined cast.
    """
    masked = p * (sizes < cap)
    total = masked.sum()
    if not total > 0:
        return np.zeros(len(p) - 1, dtype=np.int64)
    return (np.cumsum(masked / total) * n).astype(np.int64)[:-1]


def group_sizes(num_clients: int) -> list[int]:
    """Clients per group: groups of ``GROUP_SIZE``, the last takes the remainder."""
    groups = math.ceil(num_clients / GROUP_SIZE)
    return [GROUP_SIZE] * (groups - 1) + [num_clients - GROUP_SIZE * (groups - 1)]


def _split_chunk(
    chunk: np.ndarray,
    num_lists: int,
    num_classes: int,
    alpha: float,
    rng: np.random.RandomState,
    max_retries: int,
) -> list[np.ndarray]:
    """Step 3 for one chunk of ``(index, label)`` rows: ``num_lists`` index lists."""
    size = len(chunk)
    need = int(0.5 * size / num_lists)
    cap = size / num_lists
    # Each class's indices in chunk order; fixed across retries.
    by_class = [chunk[chunk[:, 1] == c, 0] for c in range(num_classes)]
    conc = np.repeat(alpha, num_lists)
    # Unlike the reference's while-loop, at least one pass always runs: with
    # need == 0 (S < 2m) the reference skips the chunk and silently drops its samples.
    for _ in range(max_retries):
        pieces: list[list[np.ndarray]] = [[] for _ in range(num_lists)]
        sizes = np.zeros(num_lists, dtype=np.int64)
        for idx_c in by_class:
            p = rng.dirichlet(conc)
            cuts = split_points(p, sizes, cap, idx_c.size)
            for j, part in enumerate(np.split(idx_c, cuts)):
                pieces[j].append(part)
                sizes[j] += part.size
        if sizes.min() >= need:
            return [np.concatenate(lst) if lst else np.empty(0, np.int64) for lst in pieces]
    raise RuntimeError(
        f"dirichlet: no split of a {size}-sample chunk over {num_lists} clients gave every "
        f"client >= {need} samples in {max_retries} draws (alpha={alpha}); raise alpha"
    )


def dirichlet(
    labels: np.ndarray,
    num_clients: int,
    seed: int,
    num_classes: int | None = None,
    *,
    alpha: float,
    max_retries: int = MAX_RETRIES,
) -> list[np.ndarray]:
    """FedDifRC Dirichlet label skew; returns client arrays of positions into ``labels``."""
    labels, num_classes = check_labels(labels, num_classes)
    n = labels.size
    k = check_num_clients(num_clients, n)
    alpha = check_positive_real("alpha", alpha)
    max_retries = check_int("max_retries", max_retries, minimum=1)
    rng = make_rng(seed)

    order = np.argsort(labels, kind="stable")  # class-major, ascending within class
    pairs = np.stack([order, labels[order]], axis=1)
    rng.shuffle(pairs)  # rows; same draws as the reference's list shuffle

    sizes = group_sizes(k)
    step = int(GROUP_SIZE / k * n)  # float expression kept as in the reference
    lists: list[np.ndarray] = []
    start = 0
    for g, m in enumerate(sizes):
        stop = n if g == len(sizes) - 1 else start + step
        lists.extend(_split_chunk(pairs[start:stop], m, num_classes, alpha, rng, max_retries))
        start = stop
    flat = np.concatenate(lists).astype(np.int64)
    return [part.copy() for part in np.array_split(flat, k)]
