"""The partition-scheme registry: each scheme's name, parameters and function.

Like the strategy registry (:mod:`feddiff.fl.strategies`), one table names, per
scheme, the dataclass declaring its parameters (beside its function, in
``partition/<scheme>.py``) and the function that splits the labels. The config
check (:func:`check_partition_setting`), the partitioner
(:func:`feddiff.partition.partition_indices`) and the generated JSON schema
(:func:`partition_schema`) all read it, so adding a scheme touches its module and a
row here. No torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from feddiff.partition.dirichlet import DirichletParams, dirichlet
from feddiff.partition.dirichlet_min import DirichletMinParams, dirichlet_min
from feddiff.partition.domain import DomainParams, domain
from feddiff.partition.iid import IIDParams, iid
from feddiff.partition.pathological import PathologicalParams, pathological
from feddiff.partition.quantity import QuantityParams, quantity
from feddiff.schema import SettingError, dataclass_schema, setting, validate


@dataclass(frozen=True)
class CommonParams:
    """Keys of every partition setting; ``imb_factor`` is the long-tail pre-step's."""

    num_clients: int = setting(minimum=1)
    imb_factor: float | None = setting(None, exclusive_minimum=0, maximum=1)


@dataclass(frozen=True)
class SchemeEntry:
    """A scheme's parameter dataclass, its function and the per-sample data it needs
    besides the labels (passed to :func:`feddiff.partition.partition_indices`)."""

    params: type
    function: Callable[..., Any]
    data: tuple[str, ...] = ()


#: Every partition scheme by the name the config's ``partitions.<p>.scheme`` uses.
SCHEMES: dict[str, SchemeEntry] = {
    "iid": SchemeEntry(IIDParams, iid),
    "dirichlet": SchemeEntry(DirichletParams, dirichlet),
    "dirichlet_min": SchemeEntry(DirichletMinParams, dirichlet_min),
    "domain": SchemeEntry(DomainParams, domain, ("domains", "domain_names")),
    "pathological": SchemeEntry(PathologicalParams, pathological),
    "quantity": SchemeEntry(QuantityParams, quantity),
}

#: Keys every setting may carry, whatever its scheme.
COMMON_KEYS = ("scheme", *(f.name for f in dataclasses.fields(CommonParams)))


def scheme_keys(scheme: str) -> tuple[str, ...]:
    """The parameters scheme ``scheme`` takes besides the common keys."""
    return tuple(f.name for f in dataclasses.fields(SCHEMES[scheme].params))


def scheme_defaults(scheme: str) -> dict[str, Any]:
    """The declared defaults of scheme ``scheme``'s parameters (those that have one)."""
    return {
        f.name: f.default
        for f in dataclasses.fields(SCHEMES[scheme].params)
        if f.default is not dataclasses.MISSING
    }


def required_keys(scheme: str) -> tuple[str, ...]:
    """The common and scheme parameters without a default."""
    return tuple(dataclass_schema(CommonParams)["required"]) + tuple(
        dataclass_schema(SCHEMES[scheme].params).get("required", ())
    )


def scheme_schema(scheme: str) -> dict[str, Any]:
    """The complete JSON schema of one scheme's setting (no defaults: see
    :func:`partition_schema`)."""
    common = dataclass_schema(CommonParams, defaults=False)
    own = dataclass_schema(SCHEMES[scheme].params, defaults=False)
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["scheme", *common.get("required", []), *own.get("required", [])],
        "properties": {"scheme": {"const": scheme}, **common["properties"], **own["properties"]},
    }


def check_partition_setting(name: str, setting: Mapping[str, Any]) -> None:
    """Check config entry ``partitions.<name>``: its scheme exists, it carries only that
    scheme's keys and the required ones, each in range. Checks that need the data
    (enough samples for the clients) are :func:`feddiff.partition.validate_setting`'s.
    Raises ``ValueError`` naming ``partitions.<name>.<key>``."""
    where = f"partitions.{name}"
    if not isinstance(setting, Mapping):
        raise SettingError(f"{where} must be a mapping, got {setting!r}", where)
    scheme = setting.get("scheme")
    if scheme not in SCHEMES:
        raise SettingError(
            f"{where}.scheme: unknown scheme {scheme!r}; choose one of {sorted(SCHEMES)}",
            f"{where}.scheme",
        )
    try:
        validate(scheme_schema(scheme), dict(setting), where)
    except SettingError as exc:
        raise SettingError(f"{exc} (scheme {scheme!r})", exc.key) from None


def partition_schema() -> dict[str, Any]:
    """The config schema of a partition setting, per scheme by if/then (like methods).

    The top level lists every key any scheme takes (with ``additionalProperties:
    false``); each scheme's ``then`` block holds its keys' types and ranges. Which keys
    a scheme takes and which it requires are left to :func:`check_partition_setting`
    (``feddiff.plan.check_semantics``), whose errors name the key. No ``default``s:
    validation would write them into every scheme's setting and hence into its tag.
    """
    common = dataclass_schema(CommonParams, defaults=False)
    names = list(COMMON_KEYS)
    blocks = []
    for scheme, entry in SCHEMES.items():
        own = dataclass_schema(entry.params, defaults=False)["properties"]
        names += [k for k in own if k not in names]
        if own:
            blocks.append(
                {"if": {"properties": {"scheme": {"const": scheme}}}, "then": {"properties": own}}
            )
    properties: dict[str, Any] = {"scheme": {"enum": list(SCHEMES)}, **common["properties"]}
    properties.update({k: {} for k in names if k not in properties})
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["scheme", *common["required"]],
        "properties": properties,
        "allOf": blocks,
    }
