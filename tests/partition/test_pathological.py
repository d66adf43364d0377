"""``pathological`` scheme: exactly k classes per client, by the random (NIID-Bench #C=k,
the default) and the cyclic class assignment."""

from __future__ import annotations

import numpy as np
import pytest

from feddiff.partition import partition_indices, validate_setting
from feddiff.partition.pathological import class_slots, pathological, random_class_sets

from .conftest import assert_exact_cover, same_partition


def _classes(labels: np.ndarray, clients: list[np.ndarray]) -> list[set[int]]:
    return [set(np.unique(labels[c]).tolist()) for c in clients]


@pytest.mark.parametrize("assignment", ["random", "cyclic"])
@pytest.mark.parametrize(
    ("k", "per", "n_cls"), [(10, 2, 10), (7, 3, 10), (13, 2, 5), (4, 5, 5), (3, 4, 12)]
)
def test_each_client_exactly_k_classes(k: int, per: int, n_cls: int, assignment: str) -> None:
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(n_cls), 60))
    clients = pathological(labels, k, seed=k, classes_per_client=per, assignment=assignment)
    assert all(len(s) == per for s in _classes(labels, clients))
    assert set().union(*_classes(labels, clients)) == set(range(n_cls))  # every class covered
    assert_exact_cover(clients, np.arange(labels.size))


def test_classic_shard_sizes(balanced_labels: np.ndarray) -> None:
    # cyclic: 10 clients x 2 classes = 20 shards of 1000/20 = 50 samples, 25 of each class.
    clients = pathological(balanced_labels, 10, seed=0, assignment="cyclic")
    for c in clients:
        assert sorted(
            np.bincount(balanced_labels[c], minlength=10)[np.unique(balanced_labels[c])]
        ) == [50, 50]


@pytest.mark.parametrize("assignment", ["random", "cyclic"])
def test_unequal_classes_still_exact(skewed_labels: np.ndarray, assignment: str) -> None:
    clients = pathological(skewed_labels, 9, seed=4, classes_per_client=2, assignment=assignment)
    assert all(len(s) == 2 for s in _classes(skewed_labels, clients))
    assert_exact_cover(clients, np.arange(skewed_labels.size))


def test_slot_rule() -> None:
    slots = class_slots(7, 3, np.arange(10), np.random.RandomState(0))
    assert slots.shape == (7, 3)
    assert all(len(set(row)) == 3 for row in slots.tolist())
    counts = np.bincount(slots.ravel(), minlength=10)
    assert sorted(counts.tolist()) == [2] * 9 + [3]  # 21 slots over 10 classes


@pytest.mark.parametrize("assignment", ["random", "cyclic"])
def test_classes_without_samples_are_skipped(assignment: str) -> None:
    labels = np.repeat([0, 2, 4], 20)  # classes 1 and 3 are empty
    setting = {"scheme": "pathological", "num_clients": 3, "assignment": assignment}
    clients = partition_indices(labels, setting, 0, num_classes=5)
    assert all(len(s) == 2 for s in _classes(labels, clients))
    assert set().union(*_classes(labels, clients)) == {0, 2, 4}


@pytest.mark.parametrize("assignment", ["random", "cyclic"])
def test_deterministic_per_seed(balanced_labels: np.ndarray, assignment: str) -> None:
    setting = {
        "scheme": "pathological",
        "num_clients": 10,
        "classes_per_client": 2,
        "assignment": assignment,
    }
    a = partition_indices(balanced_labels, setting, seed=0)
    assert same_partition(a, partition_indices(balanced_labels, setting, seed=0))
    assert not same_partition(a, partition_indices(balanced_labels, setting, seed=1))


def test_random_is_the_default_and_differs_from_cyclic(balanced_labels: np.ndarray) -> None:
    base = {"scheme": "pathological", "num_clients": 10, "classes_per_client": 2}
    default = partition_indices(balanced_labels, base, seed=3)
    assert same_partition(
        default, partition_indices(balanced_labels, {**base, "assignment": "random"}, seed=3)
    )
    assert not same_partition(
        default, partition_indices(balanced_labels, {**base, "assignment": "cyclic"}, seed=3)
    )
    assert same_partition(pathological(balanced_labels, 10, seed=3), default)


def test_cyclic_makes_disjoint_pairs_random_does_not(balanced_labels: np.ndarray) -> None:
    """With 10 clients x 2 of 10 classes, cyclic gives 5 disjoint pairs held twice each;
    the random rule over 20 seeds gives overlapping pairs (a class on 1..10 clients)."""
    cyc = {
        frozenset(s)
        for s in _classes(
            balanced_labels, pathological(balanced_labels, 10, 0, assignment="cyclic")
        )
    }
    assert len(cyc) == 5 and len(set().union(*cyc)) == 10
    holders = []
    for seed in range(20):
        sets = _classes(balanced_labels, pathological(balanced_labels, 10, seed))
        holders += np.bincount([c for s in sets for c in s], minlength=10).tolist()
    assert min(holders) == 1 and max(holders) >= 4  # uneven sharing, unlike cyclic's exactly 2


def test_random_rule_by_hand() -> None:
    """NIID-Bench's draw relabelled by P: client j is forced P[j mod C], then draws the
    rest uniformly from the classes it lacks; recomputed here with plain numpy."""
    classes = np.arange(6)
    for k, per in [(8, 3), (6, 2), (3, 2), (2, 4)]:
        rng = np.random.RandomState(11)
        order = rng.permutation(6)
        want = []
        for j in range(k):
            forced = [order[t % 6] for t in range(max(k, 6)) if t % k == j]
            lacking = [c for c in range(6) if c not in forced]
            extra = per - len(forced)
            want.append(forced + (list(rng.choice(lacking, extra, replace=False)) if extra else []))
        got = random_class_sets(k, per, classes, np.random.RandomState(11))
        assert got.tolist() == [[int(c) for c in row] for row in want]
        assert set(got.ravel().tolist()) == set(range(6))
        assert all(len(set(row)) == per for row in got.tolist())


def test_random_split_is_equal_within_each_class() -> None:
    """Each class is cut with array_split among its holders: parts differ by at most one."""
    labels = np.random.default_rng(5).permutation(
        np.repeat(np.arange(10), [53, 41, 60, 37, 29, 70, 44, 50, 33, 61])
    )
    clients = pathological(labels, 12, seed=2, classes_per_client=3)
    for c in range(10):
        sizes = [int((labels[p] == c).sum()) for p in clients if (labels[p] == c).any()]
        assert sum(sizes) == (labels == c).sum() and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        (
            {"scheme": "pathological", "num_clients": 5, "classes_per_client": 11},
            "classes_per_client",
        ),
        (
            {"scheme": "pathological", "num_clients": 5, "classes_per_client": 0},
            "classes_per_client",
        ),
        ({"scheme": "pathological", "num_clients": 5, "alpha": 0.5}, "alpha"),
        ({"scheme": "pathological", "num_clients": 101}, "num_clients"),
        ({"scheme": "pathological", "num_clients": 5, "assignment": "shards"}, "assignment"),
        (
            {"scheme": "dirichlet", "num_clients": 5, "alpha": 0.5, "assignment": "random"},
            "assignment",
        ),
    ],
)
def test_bad_settings(setting: dict, key: str) -> None:
    with pytest.raises(ValueError, match=f"'{key}'"):
        validate_setting(setting, num_samples=100, num_classes=10)


def test_too_few_shards_for_all_classes(balanced_labels: np.ndarray) -> None:
    with pytest.raises(ValueError, match="classes_per_client=2 with num_clients=4"):
        pathological(balanced_labels, 4, seed=0, classes_per_client=2)


def test_class_smaller_than_its_shard_count() -> None:
    labels = np.repeat([0, 1], [30, 2])  # class 1 must feed ~3 clients but has 2 samples
    with pytest.raises(ValueError, match="class 1 has 2 samples"):
        pathological(labels, 6, seed=0, classes_per_client=1)


def test_bad_assignment_in_the_function() -> None:
    with pytest.raises(ValueError, match="assignment='shards'"):
        pathological(np.arange(20) % 2, 2, seed=0, assignment="shards")


def test_more_classes_per_client_than_present() -> None:
    with pytest.raises(ValueError, match="only 2 classes"):
        pathological(np.repeat([0, 3], 10), 2, seed=0, num_classes=4, classes_per_client=3)


def test_documented_draw_order() -> None:
    """cyclic: permutation of classes, permutation of clients, then one shuffle per class."""
    labels = np.repeat([0, 1, 2], 6)
    rng = np.random.RandomState(0)
    order = rng.permutation(3)
    slots = order[np.arange(6) % 3].reshape(3, 2)[rng.permutation(3)]
    parts: list[list[int]] = [[], [], []]
    for c in range(3):
        holders = [j for j in range(3) if c in slots[j]]
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        for j, shard in zip(holders, np.array_split(idx, len(holders))):
            parts[j] += shard.tolist()
    got = [c.tolist() for c in pathological(labels, 3, seed=0, assignment="cyclic")]
    assert got == [sorted(p) for p in parts]
    assert got == [[0, 1, 2, 7, 9, 10], [6, 8, 11, 13, 15, 17], [3, 4, 5, 12, 14, 16]]


def test_documented_draw_order_random() -> None:
    """random: permutation of classes, one choice per client, then one shuffle per class."""
    labels = np.repeat([0, 1, 2, 3], 5)
    rng = np.random.RandomState(4)
    order = rng.permutation(4)
    sets = []
    for j in range(3):
        forced = [order[t % 4] for t in range(4) if t % 3 == j]
        lacking = [c for c in range(4) if c not in forced]
        extra = 2 - len(forced)  # no draw (and no RNG use) when the forced classes fill the row
        sets.append(forced + (list(rng.choice(lacking, extra, replace=False)) if extra else []))
    parts: list[list[int]] = [[], [], []]
    for c in range(4):
        holders = [j for j in range(3) if c in sets[j]]
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        for j, shard in zip(holders, np.array_split(idx, len(holders))):
            parts[j] += shard.tolist()
    got = [c.tolist() for c in pathological(labels, 3, seed=4)]
    assert got == [sorted(p) for p in parts]
