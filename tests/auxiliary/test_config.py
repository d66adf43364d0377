"""The auxiliary section and FedDDPM's references to it: defaults, paths, DAG targets, errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from feddiff.auxiliary.config import auxiliary_target
from feddiff.config import DEFAULT_CONFIG, ConfigError
from feddiff.diffusion.config import expand_diffusion_runs
from feddiff.plan import build_plan, expand_runs, validate_config


@pytest.fixture
def raw() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CONFIG.read_text())


def test_default_config_generates_one_set_per_partition_and_seed(raw: dict[str, Any]) -> None:
    config = validate_config(raw)
    targets = build_plan(config).auxiliary
    fedddpm_runs = [r for r in expand_runs(config) if r.method_setting["strategy"] == "fedddpm"]
    assert fedddpm_runs and {r.method_setting["auxiliary"] for r in fedddpm_runs} == {
        t.path for t in targets
    }
    calibrated = [d for d in expand_diffusion_runs(config) if d.calibration]
    assert {d.method for d in calibrated} == {"full+fedddpm", "full+fedddpm_plus"}
    assert all(d.calibration_setting["auxiliary"] in {t.path for t in targets} for d in calibrated)
    assert all("/full+fedddpm" in d.run_dir for d in calibrated)


def test_paths_encode_what_changes_the_images(raw: dict[str, Any]) -> None:
    config = validate_config(copy.deepcopy(raw))
    base = auxiliary_target(config, "ddpm", "digits", "dir0.5", 0).path
    assert base.startswith(
        "results/auxiliary/digits/dirichlet_alpha0.5_num_clients10/seed0/ddpm-local_ddpm-n"
    )
    assert auxiliary_target(config, "ddpm", "digits", "dir0.5", 1).path != base
    for key, value, changes in (
        ("local_epochs", 3, True),
        ("size", 7, True),
        ("sample_batch_size", 3, False),
    ):
        other = copy.deepcopy(raw)
        other["auxiliary"]["ddpm"][key] = value
        path = auxiliary_target(validate_config(other), "ddpm", "digits", "dir0.5", 0).path
        assert (path != base) == changes, key
    other = copy.deepcopy(raw)
    other["diffusion"]["unet"]["block_out_channels"] = [8, 16]  # the local DDPMs' architecture
    assert auxiliary_target(validate_config(other), "ddpm", "digits", "dir0.5", 0).path != base


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda c: c["methods"]["fedddpm"].__setitem__("auxiliary", "nope"),
            r"methods\.fedddpm\.auxiliary: 'nope'",
        ),
        (
            lambda c: c["methods"]["fedddpm"].__setitem__("trigger", "sometimes"),
            r"methods\.fedddpm\.trigger",
        ),
        (lambda c: c["methods"]["fedddpm"].pop("auxiliary"), r"methods\.fedddpm"),
        (
            lambda c: c["auxiliary"]["ddpm"].__setitem__("generator", "gan"),
            r"auxiliary\.ddpm\.generator",
        ),
        (
            lambda c: c["auxiliary"]["ddpm"].__setitem__("generator", "stable_diffusion"),
            r"auxiliary\.ddpm\.model",
        ),
        (
            lambda c: c["diffusion"]["grid"]["modes"].append("udec+fedddpm"),
            r"udec\+fedddpm.*private",
        ),
        (
            lambda c: c["diffusion"]["grid"]["modes"].append("full+other"),
            r"calibration 'other' is not defined",
        ),
        (
            lambda c: c["diffusion"]["calibration"]["fedddpm"].__setitem__("steps", 0),
            r"diffusion\.calibration\.fedddpm\.steps",
        ),
    ],
)
def test_errors_name_the_key(raw: dict[str, Any], mutate: Any, message: str) -> None:
    mutate(raw)
    with pytest.raises(ConfigError, match=message):
        validate_config(raw)
