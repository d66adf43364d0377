"""The ``features`` config section: resolved settings, cache paths, DAG targets, checks.

An entry is resolved per dataset: with ``diffusion: {partition, mode, seed}`` its
``model`` becomes the ``model/`` folder of the pipeline's own federated DDPM run on
that dataset (from the ``diffusion`` section), whose ``metrics.csv`` (written last) is
then a DAG input of the extraction. Paths encode the settings::

    results/features/<dataset>/<backbone>/<backbone>-t<t>-b<blocks>-d<dims>-<hash>.h5

with the hash over every resolved setting (including the model reference). FedDifRC
methods name an entry; :func:`resolve_method` replaces the name by the file's path for
each run, so a run's directory (whose method tag shows the file's name) changes with
the features it used, and the train rule gets the file as an input.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from feddiff.config import RESULTS, ConfigError
from feddiff.diffusion.config import expand_diffusion_runs
from feddiff.features.settings import FeatureSettings

#: Settings that never change the vectors (left out of the path hash).
_NOT_HASHED = ("batch_size", "unet_batch_size")


@dataclass(frozen=True)
class FeatureTarget:
    """One features file the config needs: entry ``name`` on ``dataset``."""

    name: str
    dataset: str
    settings: dict[str, Any]
    model_input: str | None

    @property
    def tag(self) -> str:
        return features_tag(self.settings)

    @property
    def path(self) -> str:
        return f"{RESULTS}/features/{self.dataset}/{self.settings['backbone']}/{self.tag}.h5"

    @property
    def figures_dir(self) -> str:
        return f"{RESULTS}/features/{self.dataset}/{self.settings['backbone']}/{self.tag}"


def features_tag(settings: Mapping[str, Any]) -> str:
    s = FeatureSettings.from_dict(dict(settings)).to_dict()
    hashed = {k: v for k, v in s.items() if k not in _NOT_HASHED}
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:8]
    blocks = ".".join(str(b) for b in s["blocks"])
    dims = ".".join(str(d) for d in s["dims"])
    head = f"{s['backbone']}-t{s['timestep']}-b{blocks}-d{dims}"
    return f"{head}-ss-{digest}" if s["mode"] == "self_supervised" else f"{head}-{digest}"


def _diffusion_run(
    config: Mapping[str, Any], name: str, ref: Mapping[str, Any], dataset: str
) -> Any:
    where = f"features.{name}.diffusion"
    if not config.get("diffusion"):
        raise ConfigError(
            f"{where}: the config has no diffusion section to take the federated DDPM from"
        )
    wanted = (dataset, ref["partition"], ref.get("mode", "full"), int(ref.get("seed", 0)))
    for run in expand_diffusion_runs(config):
        if (run.dataset, run.partition, run.mode, run.seed) == wanted and run.calibration is None:
            return run
    raise ConfigError(
        f"{where}: no federated DDPM run with dataset={wanted[0]}, partition={wanted[1]}, mode={wanted[2]}, "
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
    config: Mapping[str, Any], name: str, dataset: str
) -> tuple[dict[str, Any], str | None]:
    """(FeatureSettings dict, DAG input that makes the model) of entry ``name`` on ``dataset``."""
    entries = config.get("features") or {}
    if name not in entries:
        raise ConfigError(f"{name!r} is not defined under 'features' (defined: {sorted(entries)})")
    entry, ref = _split_entry(entries[name], name)
    model_input = None
    if ref is not None:
        run = _diffusion_run(config, name, ref, dataset)
        entry["model"] = f"{run.run_dir}/model"
        model_input = f"{run.run_dir}/metrics.csv"
    return _settings(entry, name).to_dict(), model_input


def feature_target(config: Mapping[str, Any], name: str, dataset: str) -> FeatureTarget:
    settings, model_input = resolve_entry(config, name, dataset)
    return FeatureTarget(name, dataset, settings, model_input)


def resolve_method(config: Mapping[str, Any], method: str, dataset: str) -> dict[str, Any]:
    """The method's settings for a run on ``dataset`` (FedDifRC: ``features`` -> the .h5 path)."""
    setting = dict(config["methods"][method])
    if setting.get("strategy") == "feddifrc":
        try:
            setting["features"] = feature_target(config, str(setting.get("features")), dataset).path
        except ConfigError as exc:
            raise ConfigError(f"methods.{method}.features: {exc}") from exc
    return setting


def feature_targets(config: Mapping[str, Any]) -> list[FeatureTarget]:
    """Every (entry, dataset) a FedDifRC run of some experiment uses, once each."""
    seen: dict[str, FeatureTarget] = {}
    for exp in config["experiments"].values():
        for method in exp["methods"]:
            setting = config["methods"][method]
            if setting.get("strategy") != "feddifrc":
                continue
            for dataset in exp["datasets"]:
                target = feature_target(config, setting["features"], dataset)
                seen.setdefault(target.path, target)
    return list(seen.values())


def check_features(config: Mapping[str, Any]) -> None:
    """Entries runnable; methods name defined entries in the matching mode."""
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
                f"methods.{method}.features: {name!r} is not defined under 'features' (defined: {sorted(entries)})"
            )
        mode = entries[name].get("mode", "supervised")
        if bool(setting.get("self_supervised", False)) != (mode == "self_supervised"):
            raise ConfigError(
                f"methods.{method}.self_supervised is {bool(setting.get('self_supervised', False))} but "
                f"features.{name}.mode is {mode}; a self-supervised method needs self_supervised features"
            )
    for exp_name, exp in config["experiments"].items():
        for method in exp["methods"]:
            if config["methods"].get(method, {}).get("strategy") == "feddifrc":
                for dataset in exp["datasets"]:
                    try:
                        feature_target(config, config["methods"][method]["features"], dataset)
                    except ConfigError as exc:
                        raise ConfigError(
                            f"experiments.{exp_name}: method {method} on {dataset}: {exc}"
                        ) from exc
