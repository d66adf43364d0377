"""Long-tail pre-step."""

from __future__ import annotations

import numpy as np
import pytest

from feddiff.partition import partition_indices
from feddiff.partition.longtail import long_tail_counts, long_tail_indices


def test_cifar10_lt_counts() -> None:
    # The standard CIFAR-10-LT (imb 0.01) class sizes: int(5000 * 0.01 ** (c / 9)).
    labels = np.arange(50_000) % 10
    kept = long_tail_indices(labels, 0.01, seed=0, num_classes=10)
    assert np.bincount(labels[kept]).tolist() == [
        5000,
        2997,
        1796,
        1077,
        645,
        387,
        232,
        139,
        83,
        50,
    ]


def test_counts_by_hand() -> None:
    # 500 * 0.5 ** (c/4) = 500, 420.4, 353.6, 297.3, 250
    assert long_tail_counts(2500, 5, 0.5) == [500, 420, 353, 297, 250]


def test_uses_average_class_size_and_caps() -> None:
    labels = np.repeat([0, 1, 2], [10, 50, 60])  # n_avg = 40
    kept = long_tail_indices(labels, 0.25, seed=1, num_classes=3)
    # targets 40, 20, 10; class 0 holds only 10, so it keeps all 10
    assert np.bincount(labels[kept]).tolist() == [10, 20, 10]


def test_matches_reference_global_rng_draw() -> None:
    """Same samples as np.random.seed(seed) + np.random.shuffle(class list), class by class."""
    labels = np.random.default_rng(5).integers(0, 4, size=400)
    seed = 17
    targets = long_tail_counts(400, 4, 0.1)
    np.random.seed(seed)
    expected = []
    for c in range(4):
        members = [int(i) for i in np.flatnonzero(labels == c)]
        np.random.shuffle(members)
        expected += members[: targets[c]]
    np.random.seed(999)
    state = np.random.get_state()[1].copy()
    kept = long_tail_indices(labels, 0.1, seed=seed, num_classes=4)
    assert kept.tolist() == expected  # the reference's class-major, shuffled order
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG untouched


def test_seed_changes_kept_samples() -> None:
    labels = np.arange(1000) % 10
    a = long_tail_indices(labels, 0.1, seed=0, num_classes=10)
    b = long_tail_indices(labels, 0.1, seed=1, num_classes=10)
    assert np.array_equal(np.bincount(labels[a]), np.bincount(labels[b]))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, long_tail_indices(labels, 0.1, seed=0, num_classes=10))


def test_factor_one_caps_at_the_class_average_like_the_reference() -> None:
    labels = np.repeat([0, 1, 2], [5, 50, 500])  # unbalanced: n_avg = 185
    kept = long_tail_indices(labels, 1.0, seed=3)
    assert np.bincount(labels[kept]).tolist() == [5, 50, 185]


def test_no_imb_factor_means_no_pre_step() -> None:
    labels = np.repeat([0, 1, 2], [5, 50, 500])
    with_step = partition_indices(labels, {"scheme": "iid", "num_clients": 5, "imb_factor": 1.0}, 0)
    without = partition_indices(labels, {"scheme": "iid", "num_clients": 5}, 0)
    assert sum(map(len, with_step)) == 240
    assert sorted(np.concatenate(without).tolist()) == list(range(555))


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, float("nan"), "0.5", True])
def test_bad_factor(bad: object) -> None:
    with pytest.raises(ValueError, match="imb_factor"):
        long_tail_indices(np.arange(10) % 2, bad, seed=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'imb_factor'"):
        partition_indices(
            np.arange(10) % 2, {"scheme": "iid", "num_clients": 2, "imb_factor": bad}, 0
        )


def test_single_class_needs_factor_one() -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        long_tail_indices(np.zeros(10, dtype=int), 0.5, seed=0)
    assert long_tail_indices(np.zeros(10, dtype=int), 1.0, seed=0).size == 10


@pytest.mark.parametrize(
    "scheme", ["iid", "dirichlet", "dirichlet_min", "pathological", "quantity"]
)
def test_every_scheme_covers_the_kept_set(scheme: str) -> None:
    labels = np.arange(2000) % 10
    setting: dict = {"scheme": scheme, "num_clients": 10, "imb_factor": 0.1}
    if scheme in ("dirichlet", "dirichlet_min", "quantity"):
        setting["alpha"] = 1.0
    clients = partition_indices(labels, setting, seed=4)
    kept = long_tail_indices(labels, 0.1, seed=4, num_classes=10)
    got = np.concatenate(clients)
    assert got.size == kept.size
    np.testing.assert_array_equal(np.sort(got), np.sort(kept))
