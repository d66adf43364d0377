"""NIID-Bench ``dirichlet_min`` scheme."""

from __future__ import annotations

import numpy as np
import pytest

from feddiff.partition import partition_indices, validate_setting
from feddiff.partition.dirichlet_min import dirichlet_min

from .conftest import assert_exact_cover, same_partition


@pytest.mark.parametrize(("alpha", "min_size"), [(0.1, 10), (0.05, 25), (1.0, 0)])
def test_every_client_reaches_min_size(
    balanced_labels: np.ndarray, alpha: float, min_size: int
) -> None:
    clients = dirichlet_min(balanced_labels, 10, seed=1, alpha=alpha, min_size=min_size)
    assert min(c.size for c in clients) >= min_size
    assert_exact_cover(clients, np.arange(balanced_labels.size))


def test_default_min_size_is_ten(skewed_labels: np.ndarray) -> None:
    for seed in range(5):
        clients = dirichlet_min(skewed_labels, 12, seed=seed, alpha=0.2)
        assert min(c.size for c in clients) >= 10


def test_sizes_vary_and_labels_skew(balanced_labels: np.ndarray) -> None:
    clients = dirichlet_min(balanced_labels, 10, seed=0, alpha=0.1)
    sizes = [c.size for c in clients]
    assert max(sizes) - min(sizes) > 10  # no rebalancing, unlike "dirichlet"
    top = np.mean([np.bincount(balanced_labels[c]).max() / c.size for c in clients])
    assert top > 0.4  # iid would give about 0.1-0.2


def test_sorted_output(skewed_labels: np.ndarray) -> None:
    clients = dirichlet_min(skewed_labels, 6, seed=2, alpha=0.5)
    assert all(np.all(np.diff(c) > 0) for c in clients)


def test_deterministic_per_seed(skewed_labels: np.ndarray) -> None:
    setting = {"scheme": "dirichlet_min", "num_clients": 6, "alpha": 0.5, "min_size": 5}
    a = partition_indices(skewed_labels, setting, seed=3)
    assert same_partition(a, partition_indices(skewed_labels, setting, seed=3))
    assert not same_partition(a, partition_indices(skewed_labels, setting, seed=4))


def test_retry_bound_raises() -> None:
    labels = np.arange(100) % 2
    with pytest.raises(RuntimeError, match="min_size=9"):
        dirichlet_min(labels, 10, seed=0, alpha=0.01, min_size=9, max_retries=5)


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ({"scheme": "dirichlet_min", "num_clients": 4, "alpha": 0}, "alpha"),
        ({"scheme": "dirichlet_min", "num_clients": 4}, "alpha"),
        ({"scheme": "dirichlet_min", "num_clients": 4, "alpha": 1, "min_size": 11}, "min_size"),
        ({"scheme": "dirichlet_min", "num_clients": 4, "alpha": 1, "min_size": -1}, "min_size"),
        ({"scheme": "dirichlet_min", "num_clients": 5, "alpha": 1}, "min_size"),  # default 10
        ({"scheme": "dirichlet_min", "num_clients": 41, "alpha": 1}, "num_clients"),
        (
            {"scheme": "dirichlet_min", "num_clients": 4, "alpha": 1, "classes_per_client": 2},
            "classes_per_client",
        ),
    ],
)
def test_bad_settings(setting: dict, key: str) -> None:
    with pytest.raises(ValueError, match=f"'{key}'"):
        validate_setting(setting, num_samples=40, num_classes=4)


def test_direct_call_rejects_infeasible_min_size() -> None:
    with pytest.raises(ValueError, match="min_size"):
        dirichlet_min(np.arange(40) % 4, 5, seed=0, alpha=1.0, min_size=9)


def test_documented_draw_order() -> None:
    """Per attempt and class: shuffle the class's indices, draw p, zero full clients, split."""
    labels = np.repeat([0, 1, 2], 6)
    rng = np.random.RandomState(0)
    while True:
        lists: list[list[int]] = [[], [], []]
        for c in range(3):
            idx = np.flatnonzero(labels == c)
            rng.shuffle(idx)
            p = rng.dirichlet([1.0, 1.0, 1.0]) * np.array([len(x) < 6 for x in lists])
            cuts = (np.cumsum(p / p.sum()) * idx.size).astype(int)[:-1]
            for j, part in enumerate(np.split(idx, cuts)):
                lists[j] += part.tolist()
        if min(map(len, lists)) >= 2:
            break
    got = [c.tolist() for c in dirichlet_min(labels, 3, seed=0, alpha=1.0, min_size=2)]
    assert got == [sorted(x) for x in lists]
    assert got == [[5, 7, 9, 11], [2, 8, 12, 13, 14, 15, 16, 17], [0, 1, 3, 4, 6, 10]]


def test_class_samples_are_drawn_at_random() -> None:
    """A client's share of a class is a random subset, not a run of consecutive indices."""
    labels = np.repeat(np.arange(4), 250)
    for c in dirichlet_min(labels, 4, seed=0, alpha=1.0):
        for cls in np.unique(labels[c]):
            own = c[labels[c] == cls]
            if own.size >= 10:
                assert own[-1] - own[0] + 1 > own.size
