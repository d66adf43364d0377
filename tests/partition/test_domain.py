"""``domain`` scheme: clients per domain, IID or Dirichlet label skew inside each domain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from feddiff.partition import partition_indices, validate_setting
from feddiff.partition.domain import domain
from feddiff.tags import partition_tag

from .conftest import assert_exact_cover, same_partition

NAMES = ["mnist", "usps", "svhn"]


@pytest.fixture
def multi() -> tuple[np.ndarray, np.ndarray]:
    """Unequal domains (500, 300, 160 samples) of 10 classes, samples interleaved."""
    rng = np.random.default_rng(7)
    domains = rng.permutation(np.repeat(np.arange(3), [500, 300, 160]))
    labels = rng.integers(0, 10, size=domains.size)
    return labels, domains


def _domain_of(clients: list[np.ndarray], domains: np.ndarray) -> list[int]:
    out = []
    for c in clients:
        found = np.unique(domains[c])
        assert found.size == 1, f"a client mixes domains {found}"
        out.append(int(found[0]))
    return out


def test_clients_per_domain_mapping_counts_order_and_cover(multi) -> None:
    labels, domains = multi
    clients = domain(
        labels,
        6,
        seed=3,
        num_classes=10,
        domains=domains,
        domain_names=NAMES,
        clients_per_domain={"svhn": 1, "mnist": 3, "usps": 2},
    )
    assert _domain_of(clients, domains) == [0, 0, 0, 1, 1, 2]  # domain-major, dataset order
    assert_exact_cover(clients, np.arange(labels.size))
    # IID inside a domain: near-equal sizes, all of the domain's samples
    assert sorted(len(c) for c in clients[:3]) == [166, 167, 167]
    assert [len(c) for c in clients[3:]] == [150, 150, 160]
    assert all(np.all(np.diff(c) > 0) for c in clients)


def test_iid_inside_domains_follows_the_documented_draws(multi) -> None:
    labels, domains = multi
    clients = domain(
        labels,
        6,
        seed=11,
        num_classes=10,
        domains=domains,
        domain_names=NAMES,
        clients_per_domain=2,
    )
    rng = np.random.RandomState(11)
    expected = []
    for d in range(3):
        members = np.flatnonzero(domains == d)
        perm = np.random.RandomState(rng.randint(0, 2**32 - 1)).permutation(members.size)
        expected += [np.sort(members[p]) for p in np.array_split(perm, 2)]
    assert same_partition(clients, expected)


def test_seeded(multi) -> None:
    labels, domains = multi
    kw = dict(
        num_classes=10,
        domains=domains,
        domain_names=NAMES,
        clients_per_domain=2,
        alpha=0.3,
        min_size=5,
    )
    a = domain(labels, 6, seed=1, **kw)
    assert same_partition(a, domain(labels, 6, seed=1, **kw))
    assert not same_partition(a, domain(labels, 6, seed=2, **kw))


def test_dirichlet_inside_domains_skews_labels_within_each_domain(multi) -> None:
    labels, domains = multi
    clients = domain(
        labels,
        9,
        seed=0,
        num_classes=10,
        domains=domains,
        domain_names=NAMES,
        clients_per_domain=3,
        alpha=0.1,
        min_size=5,
    )
    assert _domain_of(clients, domains) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert_exact_cover(clients, np.arange(labels.size))
    assert min(len(c) for c in clients) >= 5

    def tv_to_domain(c: np.ndarray, d: int) -> float:  # total variation to the domain's class mix
        own = np.bincount(labels[c], minlength=10) / len(c)
        ref = np.bincount(labels[domains == d], minlength=10) / np.sum(domains == d)
        return 0.5 * np.abs(own - ref).sum()

    skewed = [tv_to_domain(c, d) for c, d in zip(clients, _domain_of(clients, domains))]
    iid = domain(
        labels, 9, seed=0, num_classes=10, domains=domains, domain_names=NAMES, clients_per_domain=3
    )
    flat = [tv_to_domain(c, d) for c, d in zip(iid, _domain_of(iid, domains))]
    assert np.mean(skewed) > 0.4 > 0.15 > np.mean(flat)


def test_default_clients_per_domain_and_one_client_domains(multi) -> None:
    labels, domains = multi
    clients = domain(
        labels, 3, seed=0, num_classes=10, domains=domains, domain_names=NAMES, alpha=0.5
    )
    assert [len(c) for c in clients] == [500, 300, 160]  # one client per domain holds it all


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"clients_per_domain": {"mnist": 2, "usps": 2}}, "sums to 4, but num_clients is 6"),
        (
            {"clients_per_domain": {"mnist": 2, "usps": 2, "mnist_m": 2}},
            r"unknown \['mnist_m'\]; missing \['svhn'\]",
        ),
        ({"clients_per_domain": 4}, "does not divide num_clients=6"),
        ({"clients_per_domain": 1}, "1 x 3 domains = 3 clients, but num_clients is 6"),
        ({"clients_per_domain": 0}, "must be >= 1"),
        (
            {"clients_per_domain": {"mnist": 4, "usps": 1, "svhn": True}},
            r"clients_per_domain\['svhn'\] must be an integer",
        ),
        ({"min_size": 3}, "min_size applies only with alpha"),
        (
            {"alpha": 0.5, "min_size": 100, "clients_per_domain": 2},
            "domain 'svhn': min_size=100 is infeasible",
        ),
        ({"alpha": -1.0}, "alpha must be a finite number > 0"),
    ],
)
def test_invalid_inputs_name_the_key_or_domain(multi, kw: dict, match: str) -> None:
    labels, domains = multi
    with pytest.raises(ValueError, match=match):
        domain(labels, 6, seed=0, num_classes=10, domains=domains, domain_names=NAMES, **kw)


def test_domain_arrays_are_checked(multi) -> None:
    labels, domains = multi
    with pytest.raises(ValueError, match="one entry per sample"):
        domain(labels, 3, 0, 10, domains=domains[:-1], domain_names=NAMES)
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\)"):
        domain(labels, 2, 0, 10, domains=domains, domain_names=NAMES[:2])
    with pytest.raises(ValueError, match="distinct"):
        domain(labels, 3, 0, 10, domains=domains, domain_names=["a", "a", "b"])
    tiny = np.array([0, 0, 1])
    with pytest.raises(ValueError, match="domain 'b' has 1 samples for 2 clients"):
        domain(
            np.array([0, 1, 0]),
            4,
            0,
            2,
            domains=tiny,
            domain_names=["a", "b"],
            clients_per_domain=2,
        )


def test_through_partition_indices_with_long_tail(multi) -> None:
    labels, domains = multi
    setting = {"scheme": "domain", "num_clients": 6, "clients_per_domain": 2, "imb_factor": 0.2}
    clients = partition_indices(
        labels, setting, seed=4, num_classes=10, domains=domains, domain_names=NAMES
    )
    assert _domain_of(clients, domains) == [0, 0, 1, 1, 2, 2]  # original indices, their domains
    kept = np.concatenate(clients)
    assert len(np.unique(kept)) == kept.size < labels.size
    with pytest.raises(ValueError, match="needs a dataset with domains"):
        partition_indices(labels, setting, seed=4, num_classes=10)


def test_setting_validation_and_registration() -> None:
    validate_setting(
        {"scheme": "domain", "num_clients": 4, "clients_per_domain": {"a": 1, "b": 3}}, 100, 10
    )
    with pytest.raises(ValueError, match=r"setting\['clients_per_domain'\].*sums to 3"):
        validate_setting(
            {"scheme": "domain", "num_clients": 4, "clients_per_domain": {"a": 1, "b": 2}}, 100, 10
        )
    with pytest.raises(ValueError, match=r"setting\['min_size'\].*only with 'alpha'"):
        validate_setting({"scheme": "domain", "num_clients": 4, "min_size": 2}, 100, 10)
    with pytest.raises(ValueError, match="not a parameter of scheme 'domain'"):
        validate_setting({"scheme": "domain", "num_clients": 4, "classes_per_client": 2}, 100, 10)
    tag = partition_tag(
        {"scheme": "domain", "num_clients": 3, "clients_per_domain": {"usps": 1, "mnist": 2}}
    )
    assert tag == "domain_clients_per_domainmnist2-usps1_num_clients3"


def test_partition_stage_writes_domain_counts_and_heatmap(multi, tmp_path: Path) -> None:
    from feddiff.data.h5 import DatasetArrays, save_dataset
    from feddiff.partition.io import load_partition
    from feddiff.stages import make_partition

    labels, domains = multi
    arrays = DatasetArrays(
        x_train=np.zeros((labels.size, 4, 4, 1), np.uint8),
        y_train=labels,
        x_test=np.zeros((3, 4, 4, 1), np.uint8),
        y_test=np.array([0, 1, 2]),
        class_names=[str(c) for c in range(10)],
        domain_names=NAMES,
        domain_train=domains,
        domain_test=np.array([0, 1, 2]),
    )
    save_dataset(arrays, tmp_path / "d.h5")
    setting = {
        "scheme": "domain",
        "num_clients": 4,
        "clients_per_domain": {"mnist": 2, "usps": 1, "svhn": 1},
    }
    make_partition(tmp_path / "d.h5", setting, seed=0, out_dir=tmp_path / "p")
    rows = (tmp_path / "p" / "domain_counts.csv").read_text().splitlines()
    assert rows[0] == "client,mnist,usps,svhn,total"
    assert rows[1:] == ["0,250,0,0,250", "1,250,0,0,250", "2,0,300,0,300", "3,0,0,160,160"]
    assert (tmp_path / "p" / "domain_heatmap.png").stat().st_size > 0
    clients, meta = load_partition(tmp_path / "p" / "partition.npz")
    assert meta["domain_names"] == NAMES and len(clients) == 4
