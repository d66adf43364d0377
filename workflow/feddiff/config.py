"""Config loading, hyperparameter grids, validation and expansion of experiment grids into runs.

Hyperparameter grids come first: :func:`expand_method_grids` replaces a method entry
with list-valued hyperparameters by one plain method per combination, so everything
below sees plain methods only. Validation then has two layers. The JSON schema (``config/schema/config.schema.yaml``)
checks structure, types and ranges, the layer Snakemake applies with
``snakemake.utils.validate`` when the DAG is built. :func:`check_semantics` then checks
what a schema cannot express: that experiments name datasets, partitions and methods
that exist, that each partition scheme gets only its own keys, that every method's
hyperparameters are the ones its strategy declares, and that merged training settings
are runnable. Both raise :class:`ConfigError` naming the offending key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategies import method_params
from feddiff.partition.pathological import DEFAULT_ASSIGNMENT

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "config" / "schema" / "config.schema.yaml"
DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"
RESULTS = "results"

# Keys each partition scheme accepts besides scheme, num_clients and imb_factor.
SCHEME_KEYS: dict[str, set[str]] = {
    "iid": set(),
    "dirichlet": {"alpha"},
    "dirichlet_min": {"alpha", "min_size"},
    "domain": {"clients_per_domain", "alpha", "min_size"},
    "pathological": {"classes_per_client", "assignment"},
    "quantity": {"alpha", "min_size"},
}
SCHEME_REQUIRED: dict[str, set[str]] = {
    "dirichlet": {"alpha"},
    "dirichlet_min": {"alpha"},
    "quantity": {"alpha"},
}


class ConfigError(ValueError):
    """The config is invalid; the message names the key."""


def load_schema() -> dict[str, Any]:
    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


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


def check_semantics(config: Mapping[str, Any]) -> None:
    """Cross-reference and per-scheme/per-strategy checks (see module docstring)."""
    for name, spec in config["datasets"].items():
        if spec["source"] == "imagefolder" and "root" not in spec:
            raise ConfigError(f"datasets.{name}.root is required for source 'imagefolder'")
        if spec["source"] == "domains":
            from feddiff.data.domains import check_domains_spec
            from feddiff.data.errors import DataError

            try:
                check_domains_spec(spec["domains"])
            except DataError as exc:
                raise ConfigError(f"datasets.{name}.{exc}") from exc
    for name, setting in config["partitions"].items():
        scheme = setting["scheme"]
        allowed = SCHEME_KEYS[scheme] | {"scheme", "num_clients", "imb_factor"}
        for key in setting:
            if key not in allowed:
                raise ConfigError(
                    f"partitions.{name}.{key}: not a parameter of scheme {scheme!r} "
                    f"(it takes {sorted(allowed - {'scheme'})})"
                )
        for key in SCHEME_REQUIRED.get(scheme, set()):
            if key not in setting:
                raise ConfigError(f"partitions.{name}.{key} is required for scheme {scheme!r}")
        if scheme == "domain":
            _check_domain_partition(name, setting)
    for name, method in config["methods"].items():
        try:
            method_params(method)  # the strategy's hyperparameter dataclass: no torch
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"methods.{name}: {exc}") from exc
    for exp_name, exp in config["experiments"].items():
        for kind in ("datasets", "partitions", "methods"):
            for item in exp[kind]:
                if item not in config[kind]:
                    raise ConfigError(
                        f"experiments.{exp_name}.{kind}: {item!r} is not defined under "
                        f"'{kind}' (defined: {sorted(config[kind])})"
                    )
        try:
            training = TrainSettings.from_dict(merged_training(config, exp_name))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"experiments.{exp_name}.training: {exc}") from exc
        for dataset in exp["datasets"]:
            for part in exp["partitions"]:
                _check_domain_pairing(config, exp_name, dataset, part)
        for part in exp["partitions"]:
            k = config["partitions"][part]["num_clients"]
            if training.clients_per_round > k:
                raise ConfigError(
                    f"experiments.{exp_name}.training.clients_per_round "
                    f"({training.clients_per_round}) exceeds partitions.{part}.num_clients ({k})"
                )
    from feddiff.diffusion.config import check_diffusion

    check_diffusion(config)  # the diffusion section (federated DDPM), before features refer to it
    from feddiff.features.config import check_features

    check_features(config)  # the features section and FedDifRC's references to it
    from feddiff.auxiliary.config import check_auxiliary

    check_auxiliary(config)  # FedDDPM's auxiliary sets and the methods that name them
    from feddiff.report.paper import check_paper_links

    check_paper_links(
        config
    )  # experiments.<name>.paper / diffusion.paper: values file and table id


def _check_domain_partition(name: str, setting: Mapping[str, Any]) -> None:
    """The ``domain`` scheme's own keys, before any data exists."""
    from feddiff.partition.domain import check_clients_per_domain

    if "clients_per_domain" in setting:
        try:
            check_clients_per_domain(setting["clients_per_domain"], setting["num_clients"])
        except ValueError as exc:
            raise ConfigError(f"partitions.{name}.clients_per_domain: {exc}") from exc
    if "min_size" in setting and "alpha" not in setting:
        raise ConfigError(f"partitions.{name}.min_size: applies to scheme 'domain' only with alpha")


def _check_domain_pairing(config: Mapping[str, Any], exp: str, dataset: str, part: str) -> None:
    """A ``domain`` partition needs a multi-domain dataset whose domains it names."""
    setting = config["partitions"][part]
    if setting["scheme"] != "domain":
        return
    spec = config["datasets"][dataset]
    if spec["source"] != "domains":
        raise ConfigError(
            f"experiments.{exp}: partition {part!r} uses scheme 'domain', which needs a dataset of "
            f"source 'domains'; datasets.{dataset} has source {spec['source']!r}"
        )
    from feddiff.partition.domain import client_counts

    names = list(spec["domains"])
    k = setting["num_clients"]
    per = setting.get("clients_per_domain", k // len(names) if k % len(names) == 0 else None)
    if per is None:
        raise ConfigError(
            f"partitions.{part}.num_clients: {k} is not a multiple of the {len(names)} domains "
            f"of datasets.{dataset}; give clients_per_domain"
        )
    try:
        client_counts(per, names, k)
    except ValueError as exc:
        raise ConfigError(
            f"partitions.{part}.clients_per_domain (with datasets.{dataset}): {exc}"
        ) from exc


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
    return "null" if value is None else _fmt(value)


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
                f"methods.{name}.{key}: not a hyperparameter of strategy {setting.get('strategy')!r} "
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


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Grids expanded, schema (with defaults), then semantic checks; returns ``config``."""
    expand_method_grids(config)
    validate_schema(config)
    check_semantics(config)
    return config


def load_config(path: str | Path = DEFAULT_CONFIG) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    with open(path) as fh:
        config = yaml.safe_load(fh) or {}
    return validate_config(config)


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


# ---- paths ------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, Mapping):  # e.g. the domain scheme's clients_per_domain
        return "-".join(f"{k}{_fmt(v)}" for k, v in sorted(value.items()))
    if isinstance(value, str) and "/" in value:  # a file (FedDifRC's features): its name only
        return Path(value).stem
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def params_tag(head: str, params: Mapping[str, Any]) -> str:
    """``head`` followed by ``_<key><value>`` for each parameter, sorted by key.

    Paths built from tags encode the parameters that made them, so runs that differ
    in any parameter never share a directory.
    """
    parts = [head] + [f"{k}{_fmt(params[k])}" for k in sorted(params)]
    return "_".join(parts)


def partition_tag(setting: Mapping[str, Any]) -> str:
    """``<scheme>_<key><value>...``; ``pathological`` always spells out its ``assignment``.

    The class-assignment rule of ``pathological`` changed default (cyclic → random); a tag
    without it would name cyclic partitions made before the change, so it is written out
    even when the config leaves it to the default.
    """
    rest = {k: v for k, v in setting.items() if k != "scheme"}
    if setting["scheme"] == "pathological":
        rest.setdefault("assignment", DEFAULT_ASSIGNMENT)
    return params_tag(str(setting["scheme"]), rest)


def method_tag(method: Mapping[str, Any]) -> str:
    rest = {k: v for k, v in method.items() if k != "strategy"}
    return params_tag(str(method["strategy"]), rest)


def training_tag(training: Mapping[str, Any]) -> str:
    """Readable head (model, rounds, local epochs) plus a hash of every resolved setting."""
    resolved = TrainSettings.from_dict(dict(training)).to_dict()
    digest = hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:8]
    return f"{resolved['model']}-R{resolved['rounds']}-E{resolved['local_epochs']}-{digest}"


def data_path(dataset: str) -> str:
    return f"{RESULTS}/data/{dataset}.h5"


def partition_dir(dataset: str, ptag: str, seed: int) -> str:
    return f"{RESULTS}/partitions/{dataset}/{ptag}/seed{seed}"


@dataclass(frozen=True)
class RunSpec:
    """One federated run of an experiment grid."""

    experiment: str
    dataset: str
    partition: str
    method: str
    seed: int
    partition_setting: dict[str, Any] = field(hash=False, compare=False)
    method_setting: dict[str, Any] = field(hash=False, compare=False)
    training: dict[str, Any] = field(hash=False, compare=False)

    @property
    def partition_tag(self) -> str:
        return partition_tag(self.partition_setting)

    @property
    def method_tag(self) -> str:
        return method_tag(self.method_setting)

    @property
    def training_tag(self) -> str:
        return training_tag(self.training)

    @property
    def run_dir(self) -> str:
        return (
            f"{RESULTS}/runs/{self.dataset}/{self.partition_tag}/{self.method_tag}/"
            f"{self.training_tag}/seed{self.seed}"
        )

    @property
    def partition_dir(self) -> str:
        return partition_dir(self.dataset, self.partition_tag, self.seed)

    def settings(self) -> dict[str, Any]:
        """Everything that determines the run's results (goes into run.json)."""
        return {
            "dataset": self.dataset,
            "partition": self.partition_setting,
            "method": self.method_setting,
            "training": self.training,
            "seed": self.seed,
        }

    def labels(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "dataset": self.dataset,
            "partition": self.partition,
            "method": self.method,
            "seed": self.seed,
        }


def expand_runs(config: Mapping[str, Any]) -> list[RunSpec]:
    """Every run of every experiment: datasets x partitions x methods x seeds."""
    from feddiff.features.config import resolve_method

    runs = []
    for exp_name, exp in config["experiments"].items():
        training = merged_training(config, exp_name)
        for dataset in exp["datasets"]:
            for part in exp["partitions"]:
                for method in exp["methods"]:
                    for seed in exp["seeds"]:
                        setting = resolve_method(config, method, dataset)
                        if (
                            setting.get("strategy") == "fedddpm"
                        ):  # its auxiliary set, per partition and seed
                            from feddiff.auxiliary.config import auxiliary_target

                            setting["auxiliary"] = auxiliary_target(
                                config, str(setting.get("auxiliary")), dataset, part, int(seed)
                            ).path
                        runs.append(
                            RunSpec(
                                experiment=exp_name,
                                dataset=dataset,
                                partition=part,
                                method=method,
                                seed=int(seed),
                                partition_setting=dict(config["partitions"][part]),
                                method_setting=setting,
                                training=training,
                            )
                        )
    return runs
