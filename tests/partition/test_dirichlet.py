"""FedDifRC ``dirichlet`` scheme: hand-worked cases, a replay of the draws, and an
independent re-implementation of the algorithm's description."""

from __future__ import annotations

import math

import numpy as np
import pytest

from feddiff.partition import partition_indices
from feddiff.partition.dirichlet import dirichlet, group_sizes, split_points
from feddiff.partition.longtail import long_tail_indices

from .conftest import assert_exact_cover, same_partition

# --- Worked case A: N=20, C=2, K=2, alpha=0.5, seed=0 ------------------------------
# labels = arange(20) % 2: class 0 = even indices, class 1 = odd indices.
# Class-major pairs: (0,0) (2,0) ... (18,0) (1,1) (3,1) ... (19,1).
# rng = RandomState(0); shuffle = the permutation rng.permutation(20) would give:
#   [18, 1, 19, 8, 10, 17, 6, 13, 4, 2, 5, 14, 9, 7, 16, 11, 3, 0, 15, 12]
# so the shuffled index sequence is
#   17 2 19 16 1 15 12 7 8 4 10 9 18 14 13 3 6 0 11 5
# One group (K <= 5), one chunk of S = 20, m = 2; need int(0.5*20/2) = 5, cap 20/2 = 10.
# Attempt 1: class 0 in chunk order = [2 16 12 8 4 10 18 14 6 0],
#   p = dirichlet([.5,.5]) = [0.72809174, 0.27190826] -> cut int(0.728*10) = 7
#   lists: [2 16 12 8 4 10 18] [14 6 0]
#   class 1 = [17 19 1 15 7 9 13 3 11 5], p = [0.92506128, 0.07493872] -> cut 9
#   sizes [16, 4]: 4 < 5, so redraw everything.
# Attempt 2: class 0, p = [0.16007760, 0.83992240] -> cut 1: [2] [16 12 8 4 10 18 14 6 0]
#   class 1, p = [0.93836213, 0.06163787] -> cut 9: [17 19 1 15 7 9 13 3 11] [5]
#   sizes [10, 10] >= 5: done.
# Concatenate and cut into 2 parts of 10.
CASE_A = (
    [2, 17, 19, 1, 15, 7, 9, 13, 3, 11],
    [16, 12, 8, 4, 10, 18, 14, 6, 0, 5],
)

# --- Worked case B: N=20, C=2, K=2, alpha=0.5, seed=4 (the cap and the final cut) ---
# labels = (arange(20) % 10 >= 7): class 1 = {7,8,9,17,18,19}, class 0 = the other 14.
# Shuffled pairs (rng.permutation(20) = [19 3 18 6 13 4 0 17 12 11 15 10 9 2 16 7 8 1 5 14]):
#   19 3 18 6 16 4 0 17 15 14 8 13 12 2 9 10 11 1 5 7
# Class 0 = [3 6 16 4 0 15 14 13 12 2 10 11 1 5], p = [0.98001343, 0.01998657]
#   -> cut int(0.980*14) = 13: lists [3 6 16 4 0 15 14 13 12 2 10 11 1] [5]
# Class 1 = [19 18 17 8 9 7], p = [0.03976144, 0.96023856]; list 0 holds 13 >= cap 10,
#   so its p is zeroed, renormalised to [0, 1] -> cut 0: all of class 1 to list 1.
#   sizes [13, 7] >= 5: done.
# Concatenation = 3 6 16 4 0 15 14 13 12 2 | 10 11 1 5 19 18 17 8 9 7.
CASE_B = (
    [3, 6, 16, 4, 0, 15, 14, 13, 12, 2],
    [10, 11, 1, 5, 19, 18, 17, 8, 9, 7],
)


def test_worked_case_a() -> None:
    clients = dirichlet(np.arange(20) % 2, 2, seed=0, alpha=0.5)
    assert [c.tolist() for c in clients] == [list(x) for x in CASE_A]


def test_worked_case_b() -> None:
    labels = (np.arange(20) % 10 >= 7).astype(int)
    clients = dirichlet(labels, 2, seed=4, alpha=0.5)
    assert [c.tolist() for c in clients] == [list(x) for x in CASE_B]


def test_worked_case_a_draws_replayed() -> None:
    """The numbers in the case A comment, re-derived with numpy primitives."""
    rng = np.random.RandomState(0)
    perm = rng.permutation(20)
    assert perm.tolist() == [18, 1, 19, 8, 10, 17, 6, 13, 4, 2, 5, 14, 9, 7, 16, 11, 3, 0, 15, 12]
    pairs_idx = np.r_[np.arange(0, 20, 2), np.arange(1, 20, 2)]
    shuffled = pairs_idx[perm]
    cls0 = shuffled[shuffled % 2 == 0]
    cls1 = shuffled[shuffled % 2 == 1]
    assert cls0.tolist() == [2, 16, 12, 8, 4, 10, 18, 14, 6, 0]
    cuts = []
    for _ in range(2):  # two attempts, two classes each
        for _ in range(2):
            p = rng.dirichlet([0.5, 0.5])
            cuts.append(int(p[0] * 10))  # both lists open in every step of this case
    assert cuts == [7, 9, 1, 9]
    lists = [list(cls0[:1]) + list(cls1[:9]), list(cls0[1:]) + list(cls1[9:])]
    flat = lists[0] + lists[1]
    assert (flat[:10], flat[10:]) == (list(CASE_A[0]), list(CASE_A[1]))


def _from_words(labels: np.ndarray, k: int, alpha: float, seed: int, n_cls: int) -> list[list[int]]:
    """The algorithm as described in the brief, written with plain Python lists."""
    rng = np.random.RandomState(seed)
    pairs = [(i, c) for c in range(n_cls) for i in range(len(labels)) if labels[i] == c]
    rng.shuffle(pairs)
    n = len(pairs)
    g = math.ceil(k / 5)
    members = [5] * (g - 1) + [k - 5 * (g - 1)]
    step = int(5 / k * n)
    chunks = [pairs[i * step : (i + 1) * step] for i in range(g - 1)] + [pairs[(g - 1) * step :]]
    out: list[list[int]] = []
    for chunk, m in zip(chunks, members):
        s = len(chunk)
        while True:
            lists: list[list[int]] = [[] for _ in range(m)]
            for c in range(n_cls):
                idx = [i for i, lab in chunk if lab == c]
                p = rng.dirichlet([alpha] * m)
                p = np.array([q if len(lst) < s / m else 0.0 for q, lst in zip(p, lists)])
                p = p / p.sum()
                cuts = [0, *(np.cumsum(p) * len(idx)).astype(int)[:-1].tolist(), len(idx)]
                for j in range(m):
                    lists[j] += idx[cuts[j] : cuts[j + 1]]
            if min(len(lst) for lst in lists) >= int(0.5 * s / m):
                break
        out += lists
    flat = [i for lst in out for i in lst]
    q, r = divmod(n, k)
    bounds = np.cumsum([0] + [q + 1] * r + [q] * (k - r))
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


@pytest.mark.parametrize(
    ("n_per", "n_cls", "k", "alpha", "seed"),
    [(30, 3, 5, 0.5, 1), (40, 4, 7, 0.3, 2), (25, 10, 12, 1.0, 3), (20, 5, 20, 5.0, 4)],
)
def test_matches_description(n_per: int, n_cls: int, k: int, alpha: float, seed: int) -> None:
    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(n_cls), n_per))
    ours = dirichlet(labels, k, seed=seed, alpha=alpha)
    expected = _from_words(labels, k, alpha, seed, n_cls)
    assert [c.tolist() for c in ours] == expected


def test_matches_description_after_longtail() -> None:
    labels = np.arange(600) % 6
    setting = {"scheme": "dirichlet", "num_clients": 8, "alpha": 0.5, "imb_factor": 0.2}
    ours = partition_indices(labels, setting, seed=9)
    kept = long_tail_indices(labels, 0.2, seed=9, num_classes=6)
    expected = [[int(kept[i]) for i in part] for part in _from_words(labels[kept], 8, 0.5, 9, 6)]
    assert [c.tolist() for c in ours] == expected


def test_group_sizes() -> None:
    assert group_sizes(3) == [3]
    assert group_sizes(5) == [5]
    assert group_sizes(12) == [5, 5, 2]
    assert group_sizes(20) == [5, 5, 5, 5]


def test_split_points_skips_full_lists() -> None:
    cuts = split_points(np.array([0.5, 0.25, 0.25]), np.array([0, 9, 0]), cap=5.0, n=8)
    assert cuts.tolist() == [5, 5]  # list 1 is full: 2/3 and 1/3 of 8 to lists 0 and 2


def test_split_points_all_closed_sends_class_to_last_list() -> None:
    cuts = split_points(np.array([0.6, 0.4]), np.array([5, 5]), cap=5.0, n=7)
    assert [len(x) for x in np.split(np.arange(7), cuts)] == [0, 7]


def test_exact_cover_balanced_sizes(skewed_labels: np.ndarray) -> None:
    clients = dirichlet(skewed_labels, 7, seed=0, alpha=0.3)
    assert_exact_cover(clients, np.arange(skewed_labels.size))
    sizes = [c.size for c in clients]
    assert max(sizes) - min(sizes) <= 1


def test_tiny_chunks_keep_every_sample() -> None:
    # K=7, N=12: the first chunk has 8 pairs for 5 clients, need int(0.8) = 0.
    labels = np.arange(12) % 3
    assert_exact_cover(dirichlet(labels, 7, seed=0, alpha=1.0), np.arange(12))


def test_deterministic_per_seed(balanced_labels: np.ndarray) -> None:
    setting = {"scheme": "dirichlet", "num_clients": 10, "alpha": 0.5}
    a = partition_indices(balanced_labels, setting, seed=5)
    assert same_partition(a, partition_indices(balanced_labels, setting, seed=5))
    assert not same_partition(a, partition_indices(balanced_labels, setting, seed=6))


def test_small_alpha_skews_labels(balanced_labels: np.ndarray) -> None:
    def top_share(alpha: float) -> float:
        clients = dirichlet(balanced_labels, 10, seed=0, alpha=alpha)
        return float(np.mean([np.bincount(balanced_labels[c]).max() / c.size for c in clients]))

    assert top_share(0.1) > 0.4 > top_share(100.0)


def test_retry_bound_raises() -> None:
    labels = np.arange(200) % 2  # 2 classes can hardly fill 5 lists at alpha=0.05
    with pytest.raises(RuntimeError, match="raise alpha"):
        dirichlet(labels, 5, seed=0, alpha=0.05, max_retries=20)


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ({"scheme": "dirichlet", "num_clients": 2, "alpha": 0.0}, "alpha"),
        ({"scheme": "dirichlet", "num_clients": 2, "alpha": -1}, "alpha"),
        ({"scheme": "dirichlet", "num_clients": 2, "alpha": float("inf")}, "alpha"),
        ({"scheme": "dirichlet", "num_clients": 2}, "alpha"),
        ({"scheme": "dirichlet", "num_clients": 21, "alpha": 1.0}, "num_clients"),
        ({"scheme": "dirichlet", "num_clients": 2, "alpha": 1.0, "min_size": 3}, "min_size"),
        ({"scheme": "dirichlet", "num_clients": 2, "alpha": 1.0, "imb_factor": 2}, "imb_factor"),
    ],
)
def test_bad_settings(setting: dict, key: str) -> None:
    with pytest.raises(ValueError, match=f"'{key}'"):
        partition_indices(np.arange(20) % 2, setting, seed=0)


def test_direct_call_validates_alpha() -> None:
    with pytest.raises(ValueError, match="alpha"):
        dirichlet(np.arange(20) % 2, 2, seed=0, alpha=0)
