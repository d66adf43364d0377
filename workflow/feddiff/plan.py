"""The plan: every run and target of a config, built once, in dependency order.

:func:`build_plan` checks what the JSON schema cannot express and expands the config
into specs, each section receiving what it refers to as arguments:

1. federated DDPM runs (``diffusion.grid``; a calibrated one names an auxiliary set,
   whose path :func:`~feddiff.auxiliary.config.auxiliary_target` gives),
2. FedDifRC's features files (an entry may name one of the DDPM runs of step 1),
3. classifier runs (methods resolved to the files of steps 1-2 and their auxiliary set),
4. the auxiliary sets the runs of steps 1 and 3 use, once each,
5. the paper comparison links.

The :class:`Plan` then answers the rules' questions by path or by wildcards (a rule's
``wildcards`` fill the same :mod:`feddiff.paths` template the spec filled), so
``rules/common.smk`` is a page of one-line lookups. Torch-free (the DAG build runs it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feddiff import paths
from feddiff.auxiliary.config import AuxiliaryTarget, auxiliary_target, check_auxiliary
from feddiff.config import (
    DEFAULT_CONFIG,
    ConfigError,
    expand_method_grids,
    merged_training,
    read_config,
    validate_schema,
)
from feddiff.diffusion.config import (
    DiffusionRunSpec,
    check_diffusion,
    classifier_settings,
    expand_diffusion_runs,
)
from feddiff.features.config import FeatureTarget, check_features, feature_targets
from feddiff.fl.config import RunSpec, expand_runs
from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategies import method_params
from feddiff.partition.domain import check_clients_per_domain, client_counts
from feddiff.partition.schemes import check_partition_setting
from feddiff.report.paper import PaperLink, check_paper_links, paper_links
from feddiff.tags import partition_tag

__all__ = [
    "Plan",
    "build_plan",
    "check_semantics",
    "expand_runs",
    "load_config",
    "validate_config",
]


@dataclass
class Plan:
    """Every spec of one config, with lookups by path and by a rule's wildcards."""

    config: Mapping[str, Any]
    diffusion_runs: list[DiffusionRunSpec]
    features: list[FeatureTarget]
    runs: list[RunSpec]
    auxiliary: list[AuxiliaryTarget]
    paper_links: dict[str, PaperLink]
    _by_path: dict[str, dict[str, Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_path = {
            "runs": {run.run_dir: run for run in self.runs},
            "diffusion": {run.run_dir: run for run in self.diffusion_runs},
            "features": {target.path: target for target in self.features},
            "auxiliary": {target.path: target for target in self.auxiliary},
            "partitions": {
                partition_tag(setting): (name, setting)
                for name, setting in self.config["partitions"].items()
            },
        }

    # ---- lookups by a rule's wildcards ------------------------------------------
    def run(self, wildcards: Any) -> RunSpec:
        """The classifier run of the train rule's ``wildcards``."""
        return self._by_path["runs"][paths.fill(paths.RUN_DIR, wildcards)]

    def diffusion_run(self, wildcards: Any) -> DiffusionRunSpec:
        return self._by_path["diffusion"][paths.fill(paths.DIFFUSION_DIR, wildcards)]

    def feature(self, wildcards: Any) -> FeatureTarget:
        return self._by_path["features"][paths.fill(paths.FEATURES, wildcards)]

    def auxiliary_set(self, wildcards: Any) -> AuxiliaryTarget:
        return self._by_path["auxiliary"][paths.fill(paths.AUXILIARY, wildcards)]

    def partition(self, wildcards: Any) -> tuple[str, dict[str, Any]]:
        """(config name, setting) of the partition tag ``wildcards.ptag``."""
        return self._by_path["partitions"][paths.fill("{ptag}", wildcards)]

    def paper_link(self, wildcards: Any) -> PaperLink:
        return self.paper_links[paths.fill(paths.PAPER_KEY, wildcards)]

    # ---- whole-config facts -----------------------------------------------------
    @property
    def classifier_settings(self) -> dict[str, Any]:
        """The FID classifier's settings (one per diffusion section)."""
        return classifier_settings(self.config["diffusion"])

    @property
    def domain_datasets(self) -> list[str]:
        """Datasets of source ``domains`` (their partitions also get per-domain outputs)."""
        return sorted(
            name
            for name, spec in self.config["datasets"].items()
            if spec.get("source") == "domains"
        )

    def calibrating_experiments(self) -> list[str]:
        """Experiments with a FedDDPM method: the report draws their calibrations."""
        methods = self.config["methods"]
        return [
            name
            for name, exp in self.config["experiments"].items()
            if any(methods[m]["strategy"] == "fedddpm" for m in exp["methods"])
        ]


def build_plan(config: Mapping[str, Any]) -> Plan:
    """Check ``config`` (schema already applied) and expand it into a :class:`Plan`."""
    _check_core(config)
    check_diffusion(config)  # before features refer to its runs
    diffusion_runs = expand_diffusion_runs(config)
    check_features(config, diffusion_runs)
    check_auxiliary(config)
    check_paper_links(config)  # experiments.<name>.paper / diffusion.paper
    features = feature_targets(config, diffusion_runs)
    runs = expand_runs(config, diffusion_runs)
    return Plan(
        config=config,
        diffusion_runs=diffusion_runs,
        features=features,
        runs=runs,
        auxiliary=_auxiliary_sets(config, runs, diffusion_runs),
        paper_links=paper_links(config),
    )


def check_semantics(config: Mapping[str, Any]) -> Plan:
    """What the schema cannot say, for every section; returns the plan built on the way."""
    return build_plan(config)


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Grids expanded, schema (with defaults), then semantic checks; returns ``config``."""
    expand_method_grids(config)
    validate_schema(config)
    check_semantics(config)
    return config


def load_config(path: str | Path = DEFAULT_CONFIG) -> dict[str, Any]:
    """The config file, read and fully checked."""
    return validate_config(read_config(path))


def _auxiliary_sets(
    config: Mapping[str, Any], runs: list[RunSpec], diffusion_runs: list[DiffusionRunSpec]
) -> list[AuxiliaryTarget]:
    """Every auxiliary file a classifier or diffusion run uses, once each, in run order."""
    seen: dict[str, AuxiliaryTarget] = {}
    for run in runs:
        if run.method_setting.get("strategy") == "fedddpm":
            name = config["methods"][run.method]["auxiliary"]
            target = auxiliary_target(config, name, run.dataset, run.partition, run.seed)
            seen.setdefault(target.path, target)
    for drun in diffusion_runs:
        if drun.calibration is not None:
            name = config["diffusion"]["calibration"][drun.calibration]["auxiliary"]
            target = auxiliary_target(config, name, drun.dataset, drun.partition, drun.seed)
            seen.setdefault(target.path, target)
    return list(seen.values())


# ---- checks of the datasets, partitions, methods and experiments sections -----------
def _check_core(config: Mapping[str, Any]) -> None:
    """Cross references, per-scheme keys, per-strategy hyperparameters, training."""
    for name, spec in config["datasets"].items():
        if spec["source"] == "imagefolder" and "root" not in spec:
            raise ConfigError(f"datasets.{name}.root is required for source 'imagefolder'")
        if spec["source"] == "domains":
            _check_domains_dataset(name, spec)
    for name, setting in config["partitions"].items():
        try:
            check_partition_setting(name, setting)  # the scheme's own keys, required, ranges
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        scheme = setting["scheme"]
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


def _check_domains_dataset(name: str, spec: Mapping[str, Any]) -> None:
    """A multi-domain dataset's data-free checks (its loaders' keys included).

    Imported here, not at the top: the check needs every loader's signature, and the
    loaders' package (``feddiff.data``) imports h5py, which a config without such a
    dataset should not pay for at DAG build. Not a cycle: ``feddiff.data`` imports no
    config module.
    """
    from feddiff.data.domains import check_domains_spec
    from feddiff.data.errors import DataError

    try:
        check_domains_spec(spec["domains"])
    except DataError as exc:
        raise ConfigError(f"datasets.{name}.{exc}") from exc


def _check_domain_partition(name: str, setting: Mapping[str, Any]) -> None:
    """The ``domain`` scheme's own keys, before any data exists."""
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
