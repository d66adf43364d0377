"""IID scheme, the shared input checks, and setting validation."""

from __future__ import annotations

import numpy as np
import pytest

from feddiff.partition import SCHEMES, partition_indices, validate_setting
from feddiff.partition.iid import iid

from .conftest import assert_exact_cover, same_partition


def test_sizes_differ_by_at_most_one() -> None:
    clients = iid(np.zeros(103, dtype=int), 10, seed=0)
    assert [c.size for c in clients] == [11, 11, 11] + [10] * 7


def test_exact_cover_and_sorted(balanced_labels: np.ndarray) -> None:
    clients = iid(balanced_labels, 7, seed=3)
    assert_exact_cover(clients, np.arange(balanced_labels.size))
    assert all(np.all(np.diff(c) > 0) for c in clients)


def test_parts_are_shuffled_not_contiguous(balanced_labels: np.ndarray) -> None:
    clients = iid(balanced_labels, 4, seed=0)
    assert not np.array_equal(clients[0], np.arange(250))


def test_deterministic_per_seed(balanced_labels: np.ndarray) -> None:
    setting = {"scheme": "iid", "num_clients": 5}
    a = partition_indices(balanced_labels, setting, seed=11)
    b = partition_indices(balanced_labels, setting, seed=11)
    c = partition_indices(balanced_labels, setting, seed=12)
    assert same_partition(a, b)
    assert not same_partition(a, c)


def test_ignores_global_rng(balanced_labels: np.ndarray) -> None:
    np.random.seed(1)
    a = iid(balanced_labels, 5, seed=7)
    np.random.seed(2)
    np.random.random(10)
    b = iid(balanced_labels, 5, seed=7)
    assert same_partition(a, b)


def test_schemes_registry() -> None:
    assert set(SCHEMES) == {
        "iid",
        "dirichlet",
        "dirichlet_min",
        "pathological",
        "quantity",
        "domain",
    }


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ({"scheme": "iid", "num_clients": 11}, "num_clients"),  # more clients than samples
        ({"scheme": "iid", "num_clients": 0}, "num_clients"),
        ({"scheme": "iid", "num_clients": 2.0}, "num_clients"),
        ({"scheme": "iid", "num_clients": True}, "num_clients"),
        ({"scheme": "iid"}, "num_clients"),
        ({"num_clients": 2}, "scheme"),
        ({"scheme": "uniform", "num_clients": 2}, "scheme"),
        ({"scheme": "iid", "num_clients": 2, "alpha": 0.5}, "alpha"),  # not an iid key
        ({"scheme": "iid", "num_clients": 2, "imb_factor": 0.0}, "imb_factor"),
    ],
)
def test_validate_setting_names_key(setting: dict, key: str) -> None:
    with pytest.raises(ValueError, match=f"'{key}'"):
        validate_setting(setting, num_samples=10, num_classes=2)


def test_validate_setting_accepts_good_settings() -> None:
    validate_setting({"scheme": "iid", "num_clients": 10, "imb_factor": 1.0}, 10, 2)
    validate_setting({"scheme": "iid", "num_clients": np.int64(3)}, 10, 2)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.zeros((4, 2), dtype=int), "1-D"),
        (np.array([0.0, 1.0]), "integer"),
        (np.array([], dtype=int), "empty"),
        (np.array([0, -1]), ">= 0"),
    ],
)
def test_bad_labels(labels: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        iid(labels, 1, seed=0)


def test_label_out_of_num_classes() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        partition_indices(
            np.array([0, 1, 5]), {"scheme": "iid", "num_clients": 1}, 0, num_classes=3
        )


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5])
def test_bad_seed(seed: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        iid(np.zeros(4, dtype=int), 2, seed=seed)  # type: ignore[arg-type]


def test_longtail_prestep_maps_back_to_original_indices(balanced_labels: np.ndarray) -> None:
    setting = {"scheme": "iid", "num_clients": 3, "imb_factor": 0.1}
    clients = partition_indices(balanced_labels, setting, seed=0)
    counts = np.bincount(balanced_labels[np.concatenate(clients)], minlength=10)
    assert counts[0] == 100 and counts[9] == 10
    assert_exact_cover(clients, np.concatenate(clients))


def test_clients_vs_samples_rechecked_after_longtail() -> None:
    labels = np.repeat([0, 1], [10, 10])  # imb 0.1 keeps 10 + 1 = 11 samples
    setting = {"scheme": "iid", "num_clients": 12, "imb_factor": 0.1}
    validate_setting(setting, 20, 2)  # fine before the long-tail step
    with pytest.raises(ValueError, match="num_clients"):
        partition_indices(labels, setting, seed=0)
