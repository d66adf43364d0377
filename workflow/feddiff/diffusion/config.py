"""The ``diffusion`` config section: checks, run grid and output paths.

Kept apart from :mod:`feddiff.config` so a config without ``diffusion`` never touches
it (no diffusion run, nothing added to the DAG). Paths encode the parameters, as for
the classifier runs (templates in :mod:`feddiff.paths`, tags in :mod:`feddiff.tags`):

- :data:`~feddiff.paths.DIFFUSION_DIR`, with training tag
  ``ddpm-R<rounds>-E<epochs>-<hash of every diffusion setting>``;
- :data:`~feddiff.paths.CLASSIFIER_DIR` (``<model>-E<epochs>-<hash>``) for the FID
  feature network, shared by every run of a dataset.

A calibrated run (``<mode>+<calibration>``) trains on an auxiliary set, whose path
comes from :func:`feddiff.auxiliary.config.auxiliary_target`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from feddiff import paths
from feddiff.auxiliary.config import auxiliary_target
from feddiff.calibration.params import CalibrationParams
from feddiff.config import ConfigError
from feddiff.diffusion.modes import MODE_CLASSES, build_mode
from feddiff.diffusion.settings import DiffusionSettings
from feddiff.tags import classifier_tag, diffusion_settings, diffusion_tag, partition_tag

#: The ``{mode}`` wildcard of a run directory: a mode, then ``+<calibration>`` if any.
MODE_WILDCARD = rf"({'|'.join(sorted(MODE_CLASSES))})(\+[A-Za-z0-9][A-Za-z0-9_.-]*)?"


def parse_method(entry: str) -> tuple[str, str | None]:
    """``"full"`` -> ("full", None); ``"full+fedddpm"`` -> ("full", "fedddpm")."""
    mode, _, calibration = str(entry).partition("+")
    return mode, (calibration or None)


def calibration_setting(
    config: Mapping[str, Any], name: str, dataset: str, partition: str, seed: int
) -> dict[str, Any]:
    """The resolved calibration entry of one run, its ``auxiliary`` replaced by the file's path."""
    entries = (config.get("diffusion") or {}).get("calibration") or {}
    if name not in entries:
        raise ConfigError(
            f"diffusion.grid.modes: calibration {name!r} is not defined under "
            f"'diffusion.calibration' (defined: {sorted(entries)})"
        )
    entry = {k: v for k, v in dict(entries[name]).items() if k != "strategy"}
    try:
        params = CalibrationParams(**entry)
        params.check()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"diffusion.calibration.{name}: {exc}") from exc
    out = asdict(params)
    out["auxiliary"] = auxiliary_target(
        config, str(params.auxiliary), dataset, partition, seed
    ).path
    return out


@dataclass(frozen=True)
class DiffusionRunSpec:
    """One federated DDPM run of the diffusion grid."""

    dataset: str
    partition: str
    mode: str
    seed: int
    partition_setting: dict[str, Any] = field(hash=False, compare=False)
    section: dict[str, Any] = field(hash=False, compare=False)
    calibration: str | None = None
    calibration_setting: dict[str, Any] | None = field(default=None, hash=False, compare=False)

    @property
    def method(self) -> str:
        """The grid entry: the mode, with ``+<calibration>`` when the server calibrates."""
        return self.mode if self.calibration is None else f"{self.mode}+{self.calibration}"

    @cached_property
    def partition_tag(self) -> str:
        return partition_tag(self.partition_setting)

    @cached_property
    def training_tag(self) -> str:
        return diffusion_tag(self.section, self.calibration_setting)

    @cached_property
    def wildcards(self) -> dict[str, Any]:
        """The diffuse_train rule's wildcards, and the FID classifier's tag (``ctag``)."""
        return {
            "dataset": self.dataset,
            "ptag": self.partition_tag,
            "mode": self.method,
            "ttag": self.training_tag,
            "seed": self.seed,
            "ctag": classifier_tag(self.section),
        }

    @property
    def run_dir(self) -> str:
        return paths.fill(paths.DIFFUSION_DIR, self.wildcards)

    @property
    def partition_dir(self) -> str:
        return paths.fill(paths.PARTITION_DIR, self.wildcards)

    @property
    def partition_file(self) -> str:
        return paths.fill(paths.PARTITION, self.wildcards)

    @property
    def classifier_dir(self) -> str:
        return paths.fill(paths.CLASSIFIER_DIR, self.wildcards)

    def path(self, template: str) -> str:
        """One of the run's files: ``template`` from :mod:`feddiff.paths` filled."""
        return paths.fill(template, self.wildcards)

    def settings(self) -> dict[str, Any]:
        """Everything that determines the run's results (goes into run.json)."""
        out = {
            "dataset": self.dataset,
            "partition": self.partition_setting,
            "mode": self.mode,
            "seed": self.seed,
            "diffusion": diffusion_settings(self.section),
        }
        if self.calibration_setting is not None:
            out["calibration"] = dict(self.calibration_setting)
        return out

    def labels(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "partition": self.partition,
            "mode": self.method,
            "seed": self.seed,
        }


def expand_diffusion_runs(config: Mapping[str, Any]) -> list[DiffusionRunSpec]:
    """datasets x partitions x modes x seeds of ``diffusion.grid``; none without the section."""
    section = config.get("diffusion")
    if not section:
        return []
    grid = section["grid"]
    runs = []
    for d in grid["datasets"]:
        for p in grid["partitions"]:
            for entry in grid["modes"]:
                mode, calibration = parse_method(entry)
                for s in grid["seeds"]:
                    cal = (
                        calibration_setting(config, calibration, d, p, int(s))
                        if calibration
                        else None
                    )
                    runs.append(
                        DiffusionRunSpec(
                            dataset=d,
                            partition=p,
                            mode=mode,
                            seed=int(s),
                            partition_setting=dict(config["partitions"][p]),
                            section=dict(section),
                            calibration=calibration,
                            calibration_setting=cal,
                        )
                    )
    return runs


def classifier_settings(section: Mapping[str, Any]) -> dict[str, Any]:
    return diffusion_settings(section)["fid"]["classifier"]


def check_diffusion(config: Mapping[str, Any]) -> None:
    """What the schema cannot say: names defined, settings runnable, clients available."""
    section = config.get("diffusion")
    if not section:
        return
    try:
        settings = DiffusionSettings.from_dict(dict(section))
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc
    grid = section["grid"]
    for kind in ("datasets", "partitions"):
        for item in grid[kind]:
            if item not in config[kind]:
                raise ConfigError(
                    f"diffusion.grid.{kind}: {item!r} is not defined under '{kind}' "
                    f"(defined: {sorted(config[kind])})"
                )
    for entry in grid["modes"]:
        mode, calibration = parse_method(entry)
        if calibration is None:
            continue
        if build_mode(mode).private:
            raise ConfigError(
                f"diffusion.grid.modes: {entry!r}: calibration trains the server's global model, "
                f"but mode {mode} keeps parts private (no global model); use full or usplit"
            )
        for d in grid["datasets"]:
            calibration_setting(config, calibration, d, grid["partitions"][0], 0)
    for part in grid["partitions"]:
        k = config["partitions"][part]["num_clients"]
        if settings.training.clients_per_round > k:
            raise ConfigError(
                f"diffusion.training.clients_per_round ({settings.training.clients_per_round}) "
                f"exceeds partitions.{part}.num_clients ({k})"
            )
