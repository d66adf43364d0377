"""Client partitioners for federated experiments.

A partition setting is a small mapping (from the pipeline config) such as
``{"scheme": "dirichlet", "num_clients": 10, "alpha": 0.5, "imb_factor": 0.1}``.
:func:`partition_indices` applies the optional long-tail pre-step, then the scheme,
and returns original dataset indices per client. Every scheme seeds a
``RandomState`` of its own, so a partition depends on ``(labels, setting, seed)``
only, never on what else touched numpy's global RNG.

Schemes are called as ``SCHEMES[name](labels, num_clients, seed, num_classes,
**params)`` and return positions into ``labels``. The ``domain`` scheme also gets the
per-sample domain array and the domain names. Each scheme's parameters are declared
beside its function and registered in :mod:`feddiff.partition.schemes`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from feddiff.partition.domain import check_clients_per_domain
from feddiff.partition.iid import (
    check_int,
    check_labels,
    check_num_clients,
    check_positive_real,
)
from feddiff.partition.longtail import check_imb_factor, long_tail_indices
from feddiff.partition.pathological import ASSIGNMENTS
from feddiff.partition.schemes import (
    COMMON_KEYS,
    check_partition_setting,
    required_keys,
    scheme_defaults,
    scheme_keys,
)
from feddiff.partition.schemes import SCHEMES as _REGISTRY

__all__ = ["SCHEMES", "check_partition_setting", "partition_indices", "validate_setting"]

SCHEMES: dict[str, Callable[..., list[np.ndarray]]] = {
    name: entry.function for name, entry in _REGISTRY.items()
}
"""Each scheme's function (the registry :mod:`feddiff.partition.schemes` names them)."""


def _key(name: str, value: object, err: ValueError) -> ValueError:
    """Re-raise a checker's error with the setting key and value up front."""
    return ValueError(f"setting[{name!r}]={value!r}: {err}")


def validate_setting(setting: Mapping[str, Any], num_samples: int, num_classes: int) -> None:
    """Reject a setting that cannot be applied to ``num_samples`` samples of ``num_classes``.

    Catches config mistakes before any work: every error is a ``ValueError`` naming
    the offending key and its value. Checks that need the labels themselves (e.g.
    enough samples per class for the shards) are left to the scheme.
    """
    if not isinstance(setting, Mapping):
        raise ValueError(f"setting must be a mapping, got {type(setting).__name__}")
    if "scheme" not in setting:
        raise ValueError(f"setting['scheme'] is required; one of {sorted(SCHEMES)}")
    scheme = setting["scheme"]
    if scheme not in SCHEMES:
        raise ValueError(f"setting['scheme']={scheme!r} is unknown; one of {sorted(SCHEMES)}")
    allowed = {*COMMON_KEYS, *scheme_keys(scheme)}
    for key in setting:
        if key not in allowed:
            raise ValueError(
                f"setting[{key!r}] is not a parameter of scheme {scheme!r}; "
                f"allowed: {sorted(allowed)}"
            )
    for key in required_keys(scheme):
        if key not in setting:
            raise ValueError(f"setting[{key!r}] is required for scheme {scheme!r}")

    k = setting["num_clients"]
    try:
        k = check_num_clients(k, num_samples)
    except ValueError as err:
        raise _key("num_clients", k, err) from None
    if "imb_factor" in setting:
        try:
            check_imb_factor(setting["imb_factor"])
        except ValueError as err:
            raise _key("imb_factor", setting["imb_factor"], err) from None
        if setting["imb_factor"] != 1 and num_classes < 2:
            raise ValueError(
                f"setting['imb_factor']={setting['imb_factor']!r} needs at least 2 classes"
            )
    if "alpha" in setting:
        try:
            check_positive_real("alpha", setting["alpha"])
        except ValueError as err:
            raise _key("alpha", setting["alpha"], err) from None
    defaults = scheme_defaults(scheme)
    if defaults.get("min_size") is not None:
        m = setting.get("min_size", defaults["min_size"])
        try:
            m = check_int("min_size", m, minimum=0)
        except ValueError as err:
            raise _key("min_size", m, err) from None
        if m * k > num_samples:
            raise ValueError(
                f"setting['min_size']={m!r}: {k} clients x {m} exceeds {num_samples} samples"
            )
    if scheme == "pathological":
        per = setting.get("classes_per_client", defaults["classes_per_client"])
        try:
            check_int("classes_per_client", per, minimum=1, maximum=num_classes)
        except ValueError as err:
            raise _key("classes_per_client", per, err) from None
        assignment = setting.get("assignment", defaults["assignment"])
        if assignment not in ASSIGNMENTS:
            raise ValueError(
                f"setting['assignment']={assignment!r}: must be one of {list(ASSIGNMENTS)}"
            )
    if scheme == "domain" and "clients_per_domain" in setting:
        try:
            check_clients_per_domain(setting["clients_per_domain"], k)
        except ValueError as err:
            raise _key("clients_per_domain", setting["clients_per_domain"], err) from None
    if scheme == "domain" and "min_size" in setting and "alpha" not in setting:
        raise ValueError("setting['min_size'] applies to scheme 'domain' only with 'alpha'")


def partition_indices(
    labels: np.ndarray,
    setting: Mapping[str, Any],
    seed: int,
    num_classes: int | None = None,
    domains: np.ndarray | None = None,
    domain_names: Sequence[str] | None = None,
) -> list[np.ndarray]:
    """Apply the long-tail pre-step (when ``imb_factor`` is given), then the scheme.

    Returns one int64 array of ORIGINAL dataset indices per client (client ``k`` is
    element ``k``): sorted, except for ``dirichlet``, which keeps the reference order.
    The setting is validated twice: against the full dataset, and again against the
    samples the long-tail step keeps. ``domains`` (one domain index per sample) and
    ``domain_names`` are required by the ``domain`` scheme and ignored by the others.
    """
    labels, num_classes = check_labels(labels, num_classes)
    validate_setting(setting, labels.size, num_classes)
    if "imb_factor" in setting:
        kept = long_tail_indices(labels, setting["imb_factor"], seed, num_classes)
    else:
        kept = np.arange(labels.size, dtype=np.int64)
    if kept.size != labels.size:
        validate_setting(setting, kept.size, num_classes)
    scheme = setting["scheme"]
    params = {key: setting[key] for key in scheme_keys(scheme) if key in setting}
    if _REGISTRY[scheme].data:
        if domains is None or domain_names is None:
            raise ValueError(
                f"scheme {scheme!r} needs a dataset with domains (source 'domains'); "
                "this one records none"
            )
        domains = np.asarray(domains)
        if domains.shape != labels.shape:
            raise ValueError(f"domains has shape {domains.shape}, labels {labels.shape}")
        params.update(domains=domains[kept], domain_names=list(domain_names))
    parts = SCHEMES[scheme](labels[kept], int(setting["num_clients"]), seed, num_classes, **params)
    if len(parts) != int(setting["num_clients"]) or sum(map(len, parts)) != kept.size:
        raise RuntimeError(f"scheme {scheme!r} lost or duplicated samples")  # pragma: no cover
    return [kept[p].astype(np.int64) for p in parts]
