"""The ``auxiliary`` config section: resolved settings, output paths, DAG targets, checks.

An auxiliary set belongs to one (entry, dataset, partition, seed): the clients'
models are trained on that partition with that seed. Paths encode the settings::

    results/auxiliary/<dataset>/<partition-tag>/seed<s>/<name>-<generator>-n<size>-<hash>.h5

with the hash over every resolved setting that changes the images (for
``local_ddpm`` the ``diffusion`` section's UNet and schedule too). FedDDPM methods
and ``diffusion.calibration`` entries name an entry; each run gets the file's path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from feddiff.auxiliary.settings import AuxiliarySettings
from feddiff.config import RESULTS, ConfigError, partition_dir, partition_tag
from feddiff.diffusion.config import expand_diffusion_runs
from feddiff.diffusion.settings import DiffusionSettings


@dataclass(frozen=True)
class AuxiliaryTarget:
    """One auxiliary file the config needs."""

    name: str
    dataset: str
    partition_name: str
    seed: int
    partition_setting: dict[str, Any] = field(hash=False, compare=False)
    generation: dict[str, Any] = field(hash=False, compare=False)

    @property
    def tag(self) -> str:
        aux = self.generation["auxiliary"]
        hashed = {
            **self.generation,
            "auxiliary": {k: v for k, v in aux.items() if k not in AuxiliarySettings.NOT_HASHED},
        }
        digest = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.name}-{aux['generator']}-n{aux['size']}-{digest}"

    @property
    def partition_dir(self) -> str:
        return partition_dir(self.dataset, partition_tag(self.partition_setting), self.seed)

    @property
    def path(self) -> str:
        return (
            f"{RESULTS}/auxiliary/{self.dataset}/{partition_tag(self.partition_setting)}/"
            f"seed{self.seed}/{self.tag}.h5"
        )

    def settings(self) -> dict[str, Any]:
        """What the ``generate-auxiliary`` stage needs (goes into the file's attrs)."""
        return {
            **self.generation,
            "seed": self.seed,
            "dataset": self.dataset,
            "partition": self.partition_setting,
        }


def generation_settings(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The entry's resolved settings, plus the local DDPMs' UNet and schedule."""
    entries = config.get("auxiliary") or {}
    if name not in entries:
        raise ConfigError(f"{name!r} is not defined under 'auxiliary' (defined: {sorted(entries)})")
    try:
        aux = AuxiliarySettings.from_dict(dict(entries[name]), where=f"auxiliary.{name}")
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc
    out: dict[str, Any] = {"auxiliary": aux.to_dict()}
    if aux.generator == "local_ddpm":
        section = {
            k: v
            for k, v in dict(config.get("diffusion") or {}).items()
            if k in ("unet", "scheduler")
        }
        try:
            resolved = DiffusionSettings.from_dict(section).to_dict()
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc
        if not resolved["unet"]["class_conditional"]:
            raise ConfigError(
                f"auxiliary.{name}: generator local_ddpm needs diffusion.unet.class_conditional: true"
            )
        out["unet"], out["scheduler"] = resolved["unet"], resolved["scheduler"]
    return out


def auxiliary_target(
    config: Mapping[str, Any], name: str, dataset: str, partition: str, seed: int
) -> AuxiliaryTarget:
    return AuxiliaryTarget(
        name,
        dataset,
        partition,
        int(seed),
        dict(config["partitions"][partition]),
        generation_settings(config, name),
    )


def auxiliary_targets(config: Mapping[str, Any]) -> list[AuxiliaryTarget]:
    """Every auxiliary file a classifier or diffusion run of the config uses, once each."""
    from feddiff.config import expand_runs  # a cycle, until one plan module builds all targets

    seen: dict[str, AuxiliaryTarget] = {}
    for run in expand_runs(config):
        if run.method_setting.get("strategy") == "fedddpm":
            name = config["methods"][run.method]["auxiliary"]
            target = auxiliary_target(config, name, run.dataset, run.partition, run.seed)
            seen.setdefault(target.path, target)
    for drun in expand_diffusion_runs(config):
        if drun.calibration is not None:
            name = config["diffusion"]["calibration"][drun.calibration]["auxiliary"]
            target = auxiliary_target(config, name, drun.dataset, drun.partition, drun.seed)
            seen.setdefault(target.path, target)
    return list(seen.values())


def check_auxiliary(config: Mapping[str, Any]) -> None:
    """Entries runnable; FedDDPM methods name defined entries."""
    for name in config.get("auxiliary") or {}:
        generation_settings(config, name)
    entries = config.get("auxiliary") or {}
    for method, setting in config["methods"].items():
        if setting.get("strategy") == "fedddpm" and setting.get("auxiliary") not in entries:
            raise ConfigError(
                f"methods.{method}.auxiliary: {setting.get('auxiliary')!r} is not defined under "
                f"'auxiliary' (defined: {sorted(entries)})"
            )
