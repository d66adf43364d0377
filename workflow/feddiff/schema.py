"""One definition per setting: JSON schema and checks derived from settings dataclasses.

A settings dataclass declares each key once, with :func:`setting` (type from the
annotation; range, choices, description in the field's metadata). From that one
declaration :func:`dataclass_schema` writes the key's JSON schema (the generated
``config/schema/config.schema.yaml`` is assembled from these by
:mod:`feddiff.config_schema`), and :func:`build` checks a mapping against the same
schema before constructing the dataclass. So unknown keys, types and ranges are
checked here only; a dataclass keeps a short ``check()`` for what a per-key schema
cannot say (one key against another, or a name that must exist elsewhere in the config).

Torch-free (stdlib, jsonschema): the config checks run when the DAG is built.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import types
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import jsonschema

T = TypeVar("T")

#: The metadata key a :func:`setting` stores its declaration under.
META = "feddiff.schema"

_BOUNDS = (
    ("minimum", ">="),
    ("exclusiveMinimum", ">"),
    ("maximum", "<="),
    ("exclusiveMaximum", "<"),
)


class SettingError(ValueError):
    """A config value does not match its declaration; ``key`` is its dotted config path."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def setting(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Any = dataclasses.MISSING,
    minimum: float | None = None,
    exclusive_minimum: float | None = None,
    maximum: float | None = None,
    exclusive_maximum: float | None = None,
    enum: Sequence[Any] | None = None,
    pattern: str | None = None,
    min_length: int | None = None,
    min_items: int | None = None,
    unique_items: bool = False,
    items: Mapping[str, Any] | None = None,
    json_schema: Mapping[str, Any] | None = None,
    fill: bool = True,
    description: str | None = None,
) -> Any:
    """A dataclass field whose JSON-schema constraints live in its metadata.

    ``items`` constrains each element of a list/tuple setting (e.g. ``{"minimum": 0}``);
    ``json_schema`` replaces the schema derived from the annotation, for a type the
    annotation cannot say (a number or a mapping). ``fill=False`` keeps the default out
    of the generated schema, where validation would write it into the config (and
    hence into tags) although the key belongs to only some uses of the mapping.
    """
    constraints: dict[str, Any] = {}
    for key, value in (
        ("minimum", minimum),
        ("exclusiveMinimum", exclusive_minimum),
        ("maximum", maximum),
        ("exclusiveMaximum", exclusive_maximum),
        ("pattern", pattern),
        ("minLength", min_length),
        ("minItems", min_items),
    ):
        if value is not None:
            constraints[key] = value
    if unique_items:
        constraints["uniqueItems"] = True
    meta = {
        "constraints": constraints,
        "enum": None if enum is None else list(enum),
        "items": dict(items or {}),
        "json_schema": None if json_schema is None else dict(json_schema),
        "fill": fill,
        "description": description,
    }
    return dataclasses.field(
        default=default, default_factory=default_factory, metadata={META: meta}
    )


def _to_json(value: Any) -> Any:
    """A default as JSON: tuples become lists, a nested settings dataclass ``{}``."""
    if dataclasses.is_dataclass(value):
        return {}
    if isinstance(value, (tuple, list)):
        return [_to_json(v) for v in value]
    return value


def _type_schema(hint: Any, defaults: bool) -> dict[str, Any]:
    """The JSON schema of a Python annotation (the subset settings use)."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is type(None):
        return {"type": "null"}
    if origin in (Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        inner = [_type_schema(a, defaults) for a in kinds]
        if len(inner) == 1 and isinstance(inner[0].get("type"), str):
            out = dict(inner[0])
            if len(kinds) < len(args):
                out["type"] = [out["type"], "null"]
            return out
        if len(kinds) < len(args):
            inner.append({"type": "null"})
        return {"anyOf": inner}
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (tuple, list) or origin is Sequence:
        return {"type": "array", "items": _type_schema(args[0], defaults) if args else {}}
    if origin in (dict, Mapping):
        return {"type": "object", "additionalProperties": _type_schema(args[1], defaults)}
    if dataclasses.is_dataclass(hint):
        return _dataclass_schema(hint, defaults)
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if hint in simple:
        return {"type": simple[hint]}
    if hint is Any:
        return {}
    raise TypeError(f"no JSON schema for annotation {hint!r}")


def _nullable(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint)


def field_schema(field: dataclasses.Field, hint: Any, defaults: bool = True) -> dict[str, Any]:
    """One field's JSON schema: its type, constraints, default (when wanted), description."""
    meta = field.metadata.get(META, {})
    if meta.get("json_schema") is not None:
        out = copy.deepcopy(meta["json_schema"])
    elif meta.get("enum") is not None:
        choices = list(meta["enum"])
        if _nullable(hint) and None not in choices:
            choices.append(None)
        out = {"enum": choices}
    else:
        out = _type_schema(hint, defaults)
    out.update(meta.get("constraints", {}))
    if meta.get("items"):
        out["items"] = {**out.get("items", {}), **meta["items"]}
    if defaults and meta.get("fill", True):
        if field.default is not dataclasses.MISSING:
            out["default"] = _to_json(field.default)
        elif field.default_factory is not dataclasses.MISSING:
            out["default"] = _to_json(field.default_factory())
    if meta.get("description"):
        out["description"] = meta["description"]
    return out


def _fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if f.init]


@functools.cache
def _dataclass_schema(cls: type, defaults: bool) -> dict[str, Any]:
    props = {f.name: field_schema(f, hint, defaults) for f, hint in _fields(cls)}
    required = [
        f.name
        for f, _ in _fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    out: dict[str, Any] = {"type": "object", "additionalProperties": False}
    if required:
        out["required"] = required
    out["properties"] = props
    return out


def dataclass_schema(cls: type, *, defaults: bool = True) -> dict[str, Any]:
    """The JSON-schema object of settings dataclass ``cls`` (a fresh copy).

    Every init field is a property (``additionalProperties: false``); fields without a
    default are ``required``. ``defaults=False`` leaves every ``default`` out, for a
    block whose defaults the dataclass fills itself rather than the config.
    """
    return copy.deepcopy(_dataclass_schema(cls, defaults))


def _join(*parts: Any) -> str:
    """A dotted config path, skipping an empty ``where``."""
    return ".".join(str(p) for p in parts if str(p))


def _message(error: jsonschema.ValidationError, where: str) -> SettingError:
    """A ValueError naming ``<where>.<key>`` in the words of the old hand-written checks."""
    path = _join(where, *error.absolute_path)
    kind, limit, got = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties" and isinstance(got, Mapping):
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(k for k in got if k not in known)
        key = _join(path, unknown[0])
        return SettingError(f"{key}: unknown key(s) {unknown}; known keys are {known}", key)
    if kind == "required" and isinstance(got, Mapping):
        missing = _join(path, [k for k in limit if k not in got][0])
        return SettingError(f"{missing} is required", missing)
    for bound, sign in _BOUNDS:
        if kind == bound:
            return SettingError(f"{path} must be {sign} {limit}, got {got!r}", path)
    words = {
        "enum": f"must be one of {limit}",
        "const": f"must be {limit!r}",
        "type": f"must be of type {limit}",
        "pattern": f"must match the pattern {limit!r}",
        "minLength": f"must have at least {limit} character(s)",
        "minItems": f"must have at least {limit} item(s)",
        "uniqueItems": "must not repeat an item",
    }
    if kind in words:
        return SettingError(f"{path} {words[kind]}, got {got!r}", path)
    return SettingError(f"{path}: {error.message}", path)


def _nan_path(data: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The path of a NaN in ``data`` (JSON schema's range checks let NaN through)."""
    if isinstance(data, float) and math.isnan(data):
        return path
    if isinstance(data, Mapping):
        items: Any = data.items()
    elif isinstance(data, (list, tuple)):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        found = _nan_path(value, (*path, str(key)))
        if found is not None:
            return found
    return None


def check_values(obj: Any, where: str) -> None:
    """Check a settings dataclass instance built without :func:`build` (``cls(**values)``)
    against its own schema, so a direct construction is held to the same ranges."""
    validate(_dataclass_schema(type(obj), False), _to_plain(obj), where)


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [_to_plain(v) for v in obj]
    return obj


def validate(schema: Mapping[str, Any], data: Any, where: str) -> None:
    """Check ``data`` against ``schema``; the first error raised names ``<where>.<key>``."""
    nan = _nan_path(data)
    if nan is not None:
        key = _join(where, *nan)
        raise SettingError(f"{key} must be a number, got nan", key)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    errors = sorted(
        cls(schema).iter_errors(data),
        key=lambda e: ([str(p) for p in e.absolute_path], e.validator != "additionalProperties"),
    )
    if errors:
        raise _message(errors[0], where)


def _construct(cls: type[T], data: Mapping[str, Any]) -> T:
    kwargs: dict[str, Any] = {}
    hints = dict((f.name, hint) for f, hint in _fields(cls))
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            value = _construct(hint, value)
        elif get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def build(cls: type[T], data: Mapping[str, Any] | None, where: str) -> T:
    """``cls`` from config mapping ``data``, checked against :func:`dataclass_schema` first.

    Unknown keys, wrong types and out-of-range values raise :class:`SettingError` (a
    ``ValueError``) naming ``<where>.<key>`` (and, for an unknown key, the known keys).
    Nested settings dataclasses are built from nested mappings. Cross-field checks are
    the dataclass's own ``check()``; the caller runs it.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SettingError(f"{where} must be a mapping, got {data!r}", where)
    validate(_dataclass_schema(cls, False), dict(data), where)
    return _construct(cls, data)
