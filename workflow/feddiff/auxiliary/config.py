"""The ``auxiliary`` config section: resolved settings, output paths, DAG targets, checks.

An auxiliary set belongs to one (entry, dataset, partition, seed): the clients'
models are trained on that partition with that seed. Its path
(:data:`feddiff.paths.AUXILIARY`) ends in :func:`feddiff.tags.auxiliary_tag`,
``<name>-<generator>-n<size>-<hash>``, with the hash over every resolved setting that
changes the images (for ``local_ddpm`` the ``diffusion`` section's UNet and schedule
too). FedDDPM methods and ``diffusion.calibration`` entries name an entry; each run gets
the file's path. Which sets the config needs is collected by :mod:`feddiff.plan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from feddiff import paths
from feddiff.auxiliary.settings import AuxiliarySettings
from feddiff.config import ConfigError
from feddiff.diffusion.settings import DiffusionSettings
from feddiff.tags import auxiliary_tag, partition_tag


@dataclass(frozen=True)
class AuxiliaryTarget:
    """One auxiliary file the config needs."""

    name: str
    dataset: str
    partition_name: str
    seed: int
    partition_setting: dict[str, Any] = field(hash=False, compare=False)
    generation: dict[str, Any] = field(hash=False, compare=False)

    @cached_property
    def tag(self) -> str:
        return auxiliary_tag(self.name, self.generation, AuxiliarySettings.NOT_HASHED)

    @property
    def partition_dir(self) -> str:
        return paths.fill(paths.PARTITION_DIR, self.wildcards)

    @property
    def partition(self) -> str:
        """The partition file its clients' models are trained on (a DAG input)."""
        return paths.fill(paths.PARTITION, self.wildcards)

    @property
    def path(self) -> str:
        return paths.fill(paths.AUXILIARY, self.wildcards)

    @property
    def grid(self) -> str:
        return paths.fill(paths.AUXILIARY_GRID, self.wildcards)

    @cached_property
    def wildcards(self) -> dict[str, Any]:
        """The generate_auxiliary rule's wildcards for this set."""
        return {
            "dataset": self.dataset,
            "ptag": partition_tag(self.partition_setting),
            "seed": self.seed,
            "atag": self.tag,
        }

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
                f"auxiliary.{name}: generator local_ddpm needs "
                "diffusion.unet.class_conditional: true"
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
