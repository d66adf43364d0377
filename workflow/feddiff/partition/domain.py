"""Feature-shift partition (``domain`` scheme): every client holds one domain's images.

A multi-domain dataset (``source: domains``) records the domain of every training
sample. This scheme gives each domain its own clients: ``clients_per_domain`` is one
integer for every domain or a mapping ``{domain name: count}`` naming every domain, and
the counts sum to ``num_clients``. Clients are numbered domain by domain in the
dataset's domain order (domain 0's clients first). Inside a domain the samples are
split

* IID (no ``alpha``): a seeded permutation cut into near-equal parts, or
* with label skew (``alpha`` given): NIID-Bench's Dirichlet split with a minimum
  client size (:func:`~feddiff.partition.dirichlet_min.dirichlet_min`, ``min_size``,
  default as there) applied to the domain's samples alone.

This is the setting of FedBN (Li et al., 2021) and the feature-shift experiments of
FL papers: one or more clients per domain, label skew optional. One ``RandomState``
seeded with ``seed`` draws one sub-seed per domain, in domain order, for that domain's
split; so a partition depends on ``(labels, domains, setting, seed)`` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from feddiff.partition.dirichlet_min import DEFAULT_MIN_SIZE, dirichlet_min
from feddiff.partition.iid import check_int, check_labels, check_positive_real, iid, make_rng
from feddiff.schema import setting

_SUBSEED_MAX = 2**32 - 1  # make_rng accepts seeds in [0, 2**32)


@dataclass(frozen=True)
class DomainParams:
    """Clients per domain; with ``alpha``, Dirichlet label skew (``min_size``) inside each."""

    clients_per_domain: int | Mapping[str, int] | None = setting(
        None,
        json_schema={
            "oneOf": [
                {"type": "integer", "minimum": 1},
                {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": {"type": "integer", "minimum": 1},
                },
            ]
        },
        description=(
            "needs a dataset of source domains: clients of every domain, or "
            "{domain name: clients} naming each domain; default num_clients / domains. With "
            "alpha, Dirichlet label skew (min_size) inside each domain"
        ),
    )
    alpha: float | None = setting(None, exclusive_minimum=0)
    min_size: int | None = setting(None, minimum=0)


def check_clients_per_domain(value: object, num_clients: int) -> None:
    """Checks that need no data: an int >= 1 dividing ``num_clients``, or a name -> int
    mapping summing to it. Errors name the key (the caller prefixes the setting)."""
    if isinstance(value, Mapping):
        if not value:
            raise ValueError("clients_per_domain must name at least one domain")
        for name, count in value.items():
            check_int(f"clients_per_domain[{name!r}]", count, minimum=1)
        total = sum(int(c) for c in value.values())
        if total != num_clients:
            raise ValueError(
                f"clients_per_domain sums to {total}, but num_clients is {num_clients}"
            )
        return
    per = check_int("clients_per_domain", value, minimum=1)
    if num_clients % per:
        raise ValueError(f"clients_per_domain={per} does not divide num_clients={num_clients}")


def check_domains(domains: object, num_samples: int, domain_names: Sequence[str]) -> np.ndarray:
    """``domains`` as int64 positions into ``domain_names``, one per sample."""
    arr = np.asarray(domains)
    if arr.ndim != 1 or arr.size != num_samples:
        raise ValueError(
            f"domains must be a 1-D array with one entry per sample ({num_samples}), "
            f"got {arr.shape}"
        )
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"domains must have an integer dtype, got {arr.dtype}")
    names = [str(n) for n in domain_names]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"domain_names must be distinct and non-empty, got {names}")
    if arr.min() < 0 or arr.max() >= len(names):
        raise ValueError(
            f"domains must lie in [0, {len(names)}) (one per domain name), "
            f"got [{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.int64, copy=False)


def client_counts(
    clients_per_domain: Any, domain_names: Sequence[str], num_clients: int
) -> list[int]:
    """Clients of each domain, in ``domain_names`` order; errors name the domain."""
    names = [str(n) for n in domain_names]
    check_clients_per_domain(clients_per_domain, num_clients)
    if isinstance(clients_per_domain, Mapping):
        given = {str(k): int(v) for k, v in clients_per_domain.items()}
        unknown = sorted(set(given) - set(names))
        missing = [n for n in names if n not in given]
        if unknown or missing:
            raise ValueError(
                f"clients_per_domain must name exactly the dataset's domains {names}: "
                + "; ".join(
                    p
                    for p in (
                        f"unknown {unknown}" if unknown else "",
                        f"missing {missing}" if missing else "",
                    )
                    if p
                )
            )
        return [given[n] for n in names]
    per = int(clients_per_domain)
    if per * len(names) != num_clients:
        raise ValueError(
            f"clients_per_domain={per} x {len(names)} domains = {per * len(names)} clients, "
            f"but num_clients is {num_clients}"
        )
    return [per] * len(names)


def domain(
    labels: np.ndarray,
    num_clients: int,
    seed: int,
    num_classes: int | None = None,
    *,
    domains: np.ndarray,
    domain_names: Sequence[str],
    clients_per_domain: int | Mapping[str, int] | None = None,
    alpha: float | None = None,
    min_size: int | None = None,
) -> list[np.ndarray]:
    """Clients per domain, IID or Dirichlet label skew inside each; positions into ``labels``.

    ``clients_per_domain`` defaults to ``num_clients / number of domains``. Each client
    array is sorted.
    """
    labels, num_classes = check_labels(labels, num_classes)
    domains = check_domains(domains, labels.size, domain_names)
    k = check_int("num_clients", num_clients, minimum=1)
    if clients_per_domain is None:
        if k % len(domain_names):
            raise ValueError(
                f"num_clients={k} is not a multiple of the {len(domain_names)} domains; "
                "give clients_per_domain"
            )
        clients_per_domain = k // len(domain_names)
    counts = client_counts(clients_per_domain, domain_names, k)
    if alpha is not None:
        alpha = check_positive_real("alpha", alpha)
        min_size = check_int(
            "min_size", DEFAULT_MIN_SIZE if min_size is None else min_size, minimum=0
        )
    elif min_size is not None:
        raise ValueError("min_size applies only with alpha (label skew inside each domain)")
    rng = make_rng(seed)
    out: list[np.ndarray] = []
    for d, (name, n_d) in enumerate(zip(domain_names, counts)):
        members = np.flatnonzero(domains == d)
        sub_seed = int(rng.randint(0, _SUBSEED_MAX))  # drawn for every domain: streams stay aligned
        if members.size < n_d:
            raise ValueError(f"domain {name!r} has {members.size} samples for {n_d} clients")
        try:
            if alpha is None or n_d == 1:
                parts = iid(labels[members], n_d, sub_seed, num_classes)
            else:
                parts = dirichlet_min(
                    labels[members], n_d, sub_seed, num_classes, alpha=alpha, min_size=min_size
                )
        except (ValueError, RuntimeError) as err:
            raise type(err)(f"domain {name!r}: {err}") from err
        out.extend(np.sort(members[p]).astype(np.int64) for p in parts)
    return out
