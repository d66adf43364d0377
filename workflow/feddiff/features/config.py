"""The ``features`` config section: resolved settings, cache paths, DAG targets, checks.

An entry is resolved per dataset: with ``diffusion: {partition, mode, seed}`` its
``model`` becomes the ``model/`` folder of the pipeline's own federated DDPM run on
that dataset (from the ``diffusion`` section), whose ``metrics.csv`` (written last) is
then a DAG input of the extraction. Paths (:data:`feddiff.paths.FEATURES`) end in
:func:`feddiff.tags.features_tag`, ``<backbone>-t<t>-b<blocks>-d<dims>-<hash>``, with the
hash over every resolved setting (including the model reference). FedDifRC methods name
an entry; :func:`feddiff.fl.config.resolve_method` replaces the name by the file's path
for each run, so a run's directory (whose method tag shows the file's name) changes with
the features it used, and the train rule gets the file as an input.

The federated DDPM runs an entry may refer to are passed in (``diffusion_runs``, built
once by :mod:`feddiff.plan`); without them they are expanded from the config here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from feddiff import paths
from feddiff.config import ConfigError
from feddiff.diffusion.config import DiffusionRunSpec, expand_diffusion_runs
from feddiff.features.settings import FeatureSettings
from feddiff.tags import features_tag


@dataclass(frozen=True)
class FeatureTarget:
    """One features file the config needs: entry ``name`` on ``dataset``."""

    name: str
    dataset: str
    settings: dict[str, Any]
    model_input: str | None

    @cached_property
    def tag(self) -> str:
        return features_tag(self.settings)

    @cached_property
    def wildcards(self) -> dict[str, Any]:
        """The extract_features rule's wildcards for this file."""
        return {"dataset": self.dataset, "backbone": self.settings["backbone"], "ftag": self.tag}

    @property
    def path(self) -> str:
        return paths.fill(paths.FEATURES, self.wildcards)

    @property
    def figures_dir(self) -> str:
        return paths.fill(paths.FEATURES_DIR, self.wildcards)

    def figures(self) -> list[str]:
        """Every file the feature_figures rule writes for it."""
        return [f"{self.figures_dir}/{name}" for name in paths.FEATURE_FIGURE_FILES]


def _diffusion_run(
    config: Mapping[str, Any],
    name: str,
    ref: Mapping[str, Any],
    dataset: str,
    diffusion_runs: Sequence[DiffusionRunSpec],
) -> DiffusionRunSpec:
    where = f"features.{name}.diffusion"
    if not config.get("diffusion"):
        raise ConfigError(
            f"{where}: the config has no diffusion section to take the federated DDPM from"
        )
    wanted = (dataset, ref["partition"], ref.get("mode", "full"), int(ref.get("seed", 0)))
    for run in diffusion_runs:
        if (run.dataset, run.partition, run.mode, run.seed) == wanted and run.calibration is None:
            return run
    raise ConfigError(
        f"{where}: no federated DDPM run with dataset={wanted[0]}, partition={wanted[1]}, "
        f"mode={wanted[2]}, "
        f"seed={wanted[3]} in diffusion.grid; add it there or give features.{name}.model"
    )


def _split_entry(
    entry: Mapping[str, Any], name: str
) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
    """The entry's FeatureSettings keys and its ``diffusion`` reference (if any), checked."""
    entry = dict(entry)
    ref = entry.pop("diffusion", None)
    if ref is not None:
        if "model" in entry:
            raise ConfigError(f"features.{name}: give either model or diffusion, not both")
        if entry.get("backbone") != "ddpm":
            raise ConfigError(f"features.{name}.diffusion needs backbone: ddpm")
    return entry, ref


def _settings(entry: dict[str, Any], name: str) -> FeatureSettings:
    try:
        return FeatureSettings.from_dict(entry, where=f"features.{name}")
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc


def resolve_entry(
    config: Mapping[str, Any],
    name: str,
    dataset: str,
    diffusion_runs: Sequence[DiffusionRunSpec] | None = None,
) -> tuple[dict[str, Any], str | None]:
    """(FeatureSettings dict, DAG input that makes the model) of entry ``name`` on ``dataset``."""
    entries = config.get("features") or {}
    if name not in entries:
        raise ConfigError(f"{name!r} is not defined under 'features' (defined: {sorted(entries)})")
    entry, ref = _split_entry(entries[name], name)
    model_input = None
    if ref is not None:
        if diffusion_runs is None:
            diffusion_runs = expand_diffusion_runs(config)
        run = _diffusion_run(config, name, ref, dataset, diffusion_runs)
        entry["model"] = run.path(paths.DIFFUSION_MODEL)
        model_input = run.path(paths.DIFFUSION_METRICS)  # written last
    return _settings(entry, name).to_dict(), model_input


def feature_target(
    config: Mapping[str, Any],
    name: str,
    dataset: str,
    diffusion_runs: Sequence[DiffusionRunSpec] | None = None,
) -> FeatureTarget:
    settings, model_input = resolve_entry(config, name, dataset, diffusion_runs)
    return FeatureTarget(name, dataset, settings, model_input)


def feature_targets(
    config: Mapping[str, Any], diffusion_runs: Sequence[DiffusionRunSpec] | None = None
) -> list[FeatureTarget]:
    """Every (entry, dataset) a FedDifRC run of some experiment uses, once each."""
    if diffusion_runs is None:
        diffusion_runs = expand_diffusion_runs(config)
    seen: dict[str, FeatureTarget] = {}
    for exp in config["experiments"].values():
        for method in exp["methods"]:
            setting = config["methods"][method]
            if setting.get("strategy") != "feddifrc":
                continue
            for dataset in exp["datasets"]:
                target = feature_target(config, setting["features"], dataset, diffusion_runs)
                seen.setdefault(target.path, target)
    return list(seen.values())


def check_features(
    config: Mapping[str, Any], diffusion_runs: Sequence[DiffusionRunSpec] | None = None
) -> None:
    """Entries runnable; methods name defined entries in the matching mode."""
    if diffusion_runs is None:
        diffusion_runs = expand_diffusion_runs(config)
    entries = config.get("features") or {}
    for name, raw in entries.items():
        entry, ref = _split_entry(raw, name)
        if ref is not None:
            entry["model"] = "<the federated DDPM>"  # resolved per dataset
        _settings(entry, name)
    for method, setting in config["methods"].items():
        if setting.get("strategy") != "feddifrc":
            continue
        name = setting.get("features")
        if name not in entries:
            raise ConfigError(
                f"methods.{method}.features: {name!r} is not defined under 'features' "
                f"(defined: {sorted(entries)})"
            )
        mode = entries[name].get("mode", "supervised")
        if bool(setting.get("self_supervised", False)) != (mode == "self_supervised"):
            raise ConfigError(
                f"methods.{method}.self_supervised is "
                f"{bool(setting.get('self_supervised', False))} but features.{name}.mode is "
                f"{mode}; a self-supervised method needs self_supervised features"
            )
    for exp_name, exp in config["experiments"].items():
        for method in exp["methods"]:
            if config["methods"].get(method, {}).get("strategy") == "feddifrc":
                for dataset in exp["datasets"]:
                    try:
                        name = config["methods"][method]["features"]
                        feature_target(config, name, dataset, diffusion_runs)
                    except ConfigError as exc:
                        raise ConfigError(
                            f"experiments.{exp_name}: method {method} on {dataset}: {exc}"
                        ) from exc
