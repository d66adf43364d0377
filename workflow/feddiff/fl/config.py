"""The ``experiments`` section: one :class:`RunSpec` per federated classifier run.

An experiment is a grid, datasets x partitions x methods x seeds; every cell is one
run whose directory (:data:`feddiff.paths.RUN_DIR`) encodes the partition, the method
and the training settings as tags, so runs that differ in any setting never share a
directory. Methods that use a file the pipeline makes get the file's path in place of
the entry's name (:func:`resolve_method`): FedDifRC its diffusion features, FedDDPM its
auxiliary set, so the run's method tag (and directory) changes with the file.

Torch-free: the DAG build reads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from feddiff import paths
from feddiff.auxiliary.config import auxiliary_target
from feddiff.config import ConfigError, merged_training
from feddiff.diffusion.config import DiffusionRunSpec, expand_diffusion_runs
from feddiff.features.config import feature_target
from feddiff.tags import method_tag, partition_tag, training_tag


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

    @cached_property
    def partition_tag(self) -> str:
        return partition_tag(self.partition_setting)

    @cached_property
    def method_tag(self) -> str:
        return method_tag(self.method_setting)

    @cached_property
    def training_tag(self) -> str:
        return training_tag(self.training)

    @cached_property
    def wildcards(self) -> dict[str, Any]:
        """The train rule's wildcards for this run."""
        return {
            "dataset": self.dataset,
            "ptag": self.partition_tag,
            "mtag": self.method_tag,
            "ttag": self.training_tag,
            "seed": self.seed,
        }

    @property
    def run_dir(self) -> str:
        return paths.fill(paths.RUN_DIR, self.wildcards)

    @property
    def partition_dir(self) -> str:
        return paths.fill(paths.PARTITION_DIR, self.wildcards)

    def path(self, template: str) -> str:
        """One of the run's files (or its partition's): a :mod:`feddiff.paths` template."""
        return paths.fill(template, self.wildcards)

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


def resolve_method(
    config: Mapping[str, Any],
    method: str,
    dataset: str,
    diffusion_runs: Sequence[DiffusionRunSpec] | None = None,
) -> dict[str, Any]:
    """The method's settings on ``dataset`` (FedDifRC: ``features`` -> the .h5 path).

    FedDDPM's ``auxiliary`` depends on the partition and seed as well; :func:`expand_runs`
    replaces it.
    """
    setting = dict(config["methods"][method])
    if setting.get("strategy") == "feddifrc":
        name = str(setting.get("features"))
        try:
            setting["features"] = feature_target(config, name, dataset, diffusion_runs).path
        except ConfigError as exc:
            raise ConfigError(f"methods.{method}.features: {exc}") from exc
    return setting


def expand_runs(
    config: Mapping[str, Any], diffusion_runs: Sequence[DiffusionRunSpec] | None = None
) -> list[RunSpec]:
    """Every run of every experiment: datasets x partitions x methods x seeds."""
    if diffusion_runs is None:
        diffusion_runs = expand_diffusion_runs(config)
    methods: dict[tuple[str, str], dict[str, Any]] = {}  # resolved once per (method, dataset)
    runs = []
    for exp_name, exp in config["experiments"].items():
        training = merged_training(config, exp_name)
        for dataset in exp["datasets"]:
            for part in exp["partitions"]:
                for method in exp["methods"]:
                    if (method, dataset) not in methods:
                        methods[method, dataset] = resolve_method(
                            config, method, dataset, diffusion_runs
                        )
                    for seed in exp["seeds"]:
                        setting = dict(methods[method, dataset])
                        if setting.get("strategy") == "fedddpm":  # per partition and seed
                            name = str(setting.get("auxiliary"))
                            target = auxiliary_target(config, name, dataset, part, int(seed))
                            setting["auxiliary"] = target.path
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
