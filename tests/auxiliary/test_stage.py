"""FedDDPM end to end through the CLI on digits, as the rules call it: generate the auxiliary
set, then a calibrated federated DDPM and a fedddpm classifier run that log each correction."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from feddiff.cli import main
from feddiff.diffusion.config import expand_diffusion_runs
from feddiff.plan import build_plan, expand_runs, validate_config
from tests.auxiliary.conftest import TINY_UNET


@pytest.fixture(scope="module")
def digits_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from feddiff.data.prepare import prepare_dataset

    path = tmp_path_factory.mktemp("digits") / "digits.h5"
    prepare_dataset({"source": "digits", "test_fraction": 0.25, "split_seed": 0}, path)
    return path


def test_help() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["generate-auxiliary", "--help"])
    assert exc.value.code == 0


def test_fedddpm_stages_end_to_end(
    tmp_path: Path, digits_h5: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("feddiff.diffusion.fid.inception_weights_path", lambda: None)
    monkeypatch.chdir(tmp_path)  # the config's result paths are relative
    config = validate_config(
        {
            "datasets": {"digits": {"source": "digits"}},
            "partitions": {"dir": {"scheme": "dirichlet", "num_clients": 4, "alpha": 0.5}},
            "methods": {
                "plus": {
                    "strategy": "fedddpm",
                    "auxiliary": "ddpm",
                    "trigger": "stall",
                    "window": 1,
                    "delta": 1.0,
                    "steps": 3,
                    "eval_size": 32,
                }
            },
            "training": {"rounds": 2, "clients_per_round": 2, "local_epochs": 1, "device": "cpu"},
            "experiments": {
                "e": {
                    "datasets": ["digits"],
                    "partitions": ["dir"],
                    "methods": ["plus"],
                    "seeds": [0],
                }
            },
            "auxiliary": {
                "ddpm": {
                    "size": 40,
                    "local_epochs": 1,
                    "batch_size": 32,
                    "lr": 1e-3,
                    "steps": 3,
                    "device": "cpu",
                }
            },
            "diffusion": {
                "unet": {k: v for k, v in TINY_UNET.items()},
                "training": {
                    "rounds": 2,
                    "clients_per_round": 2,
                    "batch_size": 32,
                    "lr": 1e-3,
                    "device": "cpu",
                },
                "sampling": {"num_samples": 16, "steps": 3, "grid_per_class": 2},
                "fid": {"classifier": {"epochs": 1, "device": "cpu"}},
                "calibration": {"cal": {"auxiliary": "ddpm", "steps": 3, "eval_size": 32}},
                "grid": {
                    "datasets": ["digits"],
                    "partitions": ["dir"],
                    "modes": ["full+cal"],
                    "seeds": [0],
                },
            },
        }
    )
    (target,) = build_plan(config).auxiliary
    data = Path("results/data/digits.h5")
    data.parent.mkdir(parents=True)
    data.write_bytes(digits_h5.read_bytes())
    part = Path(target.partition_dir)
    assert (
        main(
            [
                "partition",
                "--data",
                str(data),
                "--setting",
                json.dumps(target.partition_setting),
                "--seed",
                "0",
                "--out-dir",
                str(part),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "generate-auxiliary",
                "--data",
                str(data),
                "--partition",
                str(part / "partition.npz"),
                "--settings",
                json.dumps(target.settings()),
                "--out",
                target.path,
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    assert Path(target.path).is_file()

    (drun,) = expand_diffusion_runs(config)
    assert drun.calibration_setting["auxiliary"] == target.path
    assert (
        main(
            [
                "fid-classifier",
                "--data",
                str(data),
                "--out-dir",
                "clf",
                "--threads",
                "1",
                "--settings",
                json.dumps({"epochs": 1, "device": "cpu"}),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "diffuse-train",
                "--data",
                str(data),
                "--partition",
                str(part / "partition.npz"),
                "--classifier",
                "clf",
                "--settings",
                json.dumps(drun.settings()),
                "--labels",
                json.dumps(drun.labels()),
                "--out-dir",
                drun.run_dir,
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    metrics = pd.read_csv(Path(drun.run_dir) / "metrics.csv")
    assert metrics["calibrated"].tolist() == [1, 1]
    assert (metrics["aux_loss_after"] < metrics["aux_loss"]).all()

    (run,) = expand_runs(config)
    assert run.method_setting["auxiliary"] == target.path
    assert (
        main(
            [
                "train",
                "--data",
                str(data),
                "--partition",
                str(part / "partition.npz"),
                "--settings",
                json.dumps(run.settings()),
                "--labels",
                json.dumps(run.labels()),
                "--out-dir",
                run.run_dir,
                "--threads",
                "1",
            ]
        )
        == 0
    )
    metrics = pd.read_csv(Path(run.run_dir) / "metrics.csv")
    # window 1, delta 1: any round whose loss did not halve since the previous one stalls
    assert {"test_acc", "aux_loss", "aux_loss_after", "calibrated", "calibrations"} <= set(
        metrics.columns
    )
    assert metrics["calibrated"].tolist() == [0, 1]
