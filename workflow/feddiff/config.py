"""The config's bottom layer: reading, the JSON schema, hyperparameter grids, merging.

Hyperparameter grids come first: :func:`expand_method_grids` replaces a method entry
with list-valued hyperparameters by one plain method per combination, so everything
below sees plain methods only. The JSON schema (``config/schema/config.schema.yaml``)
then checks structure, types and ranges (:func:`validate_schema`, the layer Snakemake
applies with ``snakemake.utils.validate`` when the DAG is built). What a schema cannot
express (cross references, per-scheme and per-strategy keys, each section's own rules)
is checked by :func:`feddiff.plan.check_semantics`, which builds the plan; entry points
that want a checked config call :func:`feddiff.plan.load_config`. Both layers raise
:class:`ConfigError` naming the offending key.

This module imports no section of the config (diffusion, features, auxiliary, paper
links): those import it, and :mod:`feddiff.plan` imports them all.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from feddiff.tags import fmt

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "config" / "schema" / "config.schema.yaml"
DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"


class ConfigError(ValueError):
    """The config is invalid; the message names the key."""


_SCHEMA_CACHE: dict[int, dict[str, Any]] = {}  # by the file's mtime: parsing takes ~60 ms


def load_schema() -> dict[str, Any]:
    """The JSON schema (a fresh copy: validation writes defaults through it)."""
    mtime = SCHEMA_PATH.stat().st_mtime_ns
    if mtime not in _SCHEMA_CACHE:
        with open(SCHEMA_PATH) as fh:
            _SCHEMA_CACHE.clear()
            _SCHEMA_CACHE[mtime] = yaml.safe_load(fh)
    return copy.deepcopy(_SCHEMA_CACHE[mtime])


def _fill_defaults(validator_cls: type) -> type:
    """A validator that also writes schema defaults into the instance (like Snakemake's)."""
    validate_props = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: Any, instance: Any, schema: Any) -> Any:
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and prop not in instance:
                    instance[prop] = json.loads(json.dumps(sub["default"]))
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def validate_schema(config: dict[str, Any]) -> dict[str, Any]:
    """Check ``config`` against the JSON schema in place, filling defaults."""
    schema = load_schema()
    cls = _fill_defaults(jsonschema.validators.validator_for(schema))
    errors = sorted(cls(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key_path(e)}: {e.message}" for e in errors]
        raise ConfigError("config does not match the schema:\n" + "\n".join(lines))
    return config


# ---- hyperparameter grids --------------------------------------------------------
# A method entry may give a list of values for any hyperparameter; it stands for one
# plain method per combination. Expanding here, before the schema sees the config, means
# every later consumer (schema defaults, strategy checks, runs, tables, paper links)
# handles plain methods only, and each combination is a normal cached run whose path
# tag (method_tag) encodes its values.
_METHOD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # a name as a user writes it


def grid_method_name(name: str, choice: Mapping[str, Any]) -> str:
    """``name[key=value,...]`` over the grid keys, sorted: readable in tables and unique."""
    inner = ",".join(f"{key}={_grid_value(choice[key])}" for key in sorted(choice))
    return f"{name}[{inner}]"


def _grid_value(value: Any) -> str:
    return "null" if value is None else fmt(value)


def _check_combination(name: str, setting: Mapping[str, Any], grid_keys: list[str]) -> None:
    """One combination against the method schema, errors naming ``methods.<name>.<key>``.

    Checked here rather than after expansion so the message names the grid the user
    wrote (and the offending value), not the generated combination.
    """
    schema = load_schema()
    sub = {"$ref": "#/$defs/method", "$defs": schema["$defs"]}
    cls = jsonschema.validators.validator_for(schema)
    for error in sorted(cls(sub).iter_errors(dict(setting)), key=lambda e: list(e.absolute_path)):
        if error.validator == "additionalProperties":  # an unknown key: name it
            known = set(error.schema.get("properties", {}))
            key = sorted(set(setting) - known)[0]
            raise ConfigError(
                f"methods.{name}.{key}: not a hyperparameter of strategy "
                f"{setting.get('strategy')!r} "
                f"(it takes {sorted(known - {'strategy'})})"
            )
        key = ".".join(str(p) for p in error.absolute_path) or "<entry>"
        where = f"methods.{name}.{key}"
        if key in grid_keys:
            where += f" (grid value {setting[key]!r})"
        raise ConfigError(f"{where}: {error.message}")


def expand_method_grids(config: dict[str, Any]) -> dict[str, Any]:
    """Replace every method with list-valued hyperparameters by one method per combination.

    ``methods.feddifrc: {strategy: feddifrc, features: ddpm, temperature: [0.04, 0.2],
    lambda_tdcl: [0.1, 1.0]}`` becomes four methods named
    ``feddifrc[lambda_tdcl=0.1,temperature=0.04]`` ... and every experiment that lists
    ``feddifrc`` lists all four, in grid order. Lists must be non-empty and free of
    duplicates and nested lists/maps; ``strategy`` cannot be a grid; each combination is
    checked against the strategy's hyperparameters. Works in place and returns
    ``config``; a config without lists is left unchanged (so it may run twice).
    """
    methods = config.get("methods")
    if not isinstance(methods, dict):
        return config  # the schema reports it
    expanded: dict[str, Any] = {}
    grids: dict[str, list[str]] = {}
    for name, method in methods.items():
        grid_keys = (
            sorted(k for k, v in method.items() if isinstance(v, list))
            if isinstance(method, dict)
            else []
        )
        if not grid_keys:
            expanded[name] = method
            continue
        if not _METHOD_NAME.match(str(name)):
            raise ConfigError(f"methods.{name}: a grid's name must match {_METHOD_NAME.pattern}")
        if "strategy" in grid_keys:
            raise ConfigError(
                f"methods.{name}.strategy: cannot be a list (one strategy per method entry)"
            )
        for key in grid_keys:
            values = method[key]
            if not values:
                raise ConfigError(
                    f"methods.{name}.{key}: an empty list (a grid needs at least one value)"
                )
            seen: set[str] = set()
            for value in values:
                if isinstance(value, (list, dict)):
                    raise ConfigError(
                        f"methods.{name}.{key}: grid values must be single values, got {value!r}"
                    )
                token = json.dumps(value)
                if token in seen:
                    raise ConfigError(f"methods.{name}.{key}: {value!r} is listed twice")
                seen.add(token)
        grids[name] = []
        for combo in itertools.product(*(method[key] for key in grid_keys)):
            choice = dict(zip(grid_keys, combo))
            setting = {**method, **choice}
            _check_combination(name, setting, grid_keys)
            new = grid_method_name(name, choice)
            if new in methods or new in expanded:
                raise ConfigError(
                    f"methods.{new}: defined both directly and by the grid methods.{name}"
                )
            expanded[new] = setting
            grids[name].append(new)
    if not grids:
        return config
    config["methods"] = expanded
    for exp in (config.get("experiments") or {}).values():
        if isinstance(exp, dict) and isinstance(exp.get("methods"), list):
            exp["methods"] = [new for m in exp["methods"] for new in grids.get(m, [m])]
    return config


def read_config(path: str | Path = DEFAULT_CONFIG) -> dict[str, Any]:
    """The YAML file as a dict, unchecked (:func:`feddiff.plan.load_config` checks it)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    with open(path) as fh:
        return yaml.safe_load(fh) or {}


def merged_training(config: Mapping[str, Any], experiment: str) -> dict[str, Any]:
    """Top-level ``training`` with the experiment's overrides on top (augment merged too)."""
    base = json.loads(json.dumps(config.get("training", {})))
    override = config["experiments"][experiment].get("training", {}) or {}
    for key, value in override.items():
        if key == "augment":
            base["augment"] = {**base.get("augment", {}), **value}
        else:
            base[key] = value
    return base
