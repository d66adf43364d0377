"""The CLI stages end to end on digits: every artifact written, loadable, labelled."""

import json
from pathlib import Path

import pandas as pd
import pytest
from diffusers import UNet2DModel

from feddiff.cli import main
from feddiff.diffusion.config import expand_diffusion_runs
from feddiff.diffusion.fid import KIND_CLASSIFIER

from .conftest import TINY_UNET

STAGES = ["fid-classifier", "diffuse-train", "diffuse-report"]


@pytest.mark.parametrize("stage", STAGES)
def test_stage_help(stage: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([stage, "--help"])
    assert exc.value.code == 0
    assert f"usage: feddiff {stage}" in capsys.readouterr().out


def test_stages_end_to_end(
    tmp_path: Path, digits_h5: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("feddiff.diffusion.fid.inception_weights_path", lambda: None)
    setting = {"scheme": "dirichlet", "num_clients": 5, "alpha": 0.5}
    config = {
        "datasets": {"digits": {"source": "digits"}},
        "partitions": {"dir": setting},
        "diffusion": {
            "unet": TINY_UNET,
            "training": {
                "rounds": 2,
                "clients_per_round": 3,
                "batch_size": 32,
                "lr": 1e-3,
                "device": "cpu",
            },
            "sampling": {"num_samples": 24, "steps": 3, "grid_per_class": 2},
            "fid": {"classifier": {"epochs": 1, "device": "cpu"}},
            "grid": {
                "datasets": ["digits"],
                "partitions": ["dir"],
                "modes": ["full", "udec"],
                "seeds": [0],
            },
        },
    }
    runs = expand_diffusion_runs(config)
    assert [r.mode for r in runs] == ["full", "udec"]
    part = tmp_path / "part"
    assert (
        main(
            [
                "partition",
                "--data",
                str(digits_h5),
                "--setting",
                json.dumps(setting),
                "--seed",
                "0",
                "--out-dir",
                str(part),
            ]
        )
        == 0
    )
    clf = tmp_path / "clf"
    assert (
        main(
            [
                "fid-classifier",
                "--data",
                str(digits_h5),
                "--out-dir",
                str(clf),
                "--threads",
                "1",
                "--settings",
                json.dumps(config["diffusion"]["fid"]["classifier"]),
            ]
        )
        == 0
    )
    manifest = []
    for run in runs:
        out = tmp_path / run.mode
        assert (
            main(
                [
                    "diffuse-train",
                    "--data",
                    str(digits_h5),
                    "--partition",
                    str(part / "partition.npz"),
                    "--classifier",
                    str(clf),
                    "--settings",
                    json.dumps(run.settings()),
                    "--labels",
                    json.dumps(run.labels()),
                    "--out-dir",
                    str(out),
                    "--threads",
                    "1",
                    "--no-progress",
                ]
            )
            == 0
        )
        manifest.append({"run_dir": str(out), "labels": run.labels()})
        metrics = pd.read_csv(out / "metrics.csv")
        for col in (
            "round",
            "train_loss",
            "seconds",
            "params_up",
            "params_down",
            "bytes_up",
            "bytes_down",
            "fid",
            "fid_kind",
        ):
            assert col in metrics.columns
        assert list(metrics["round"]) == [1, 2] and metrics["fid"].iloc[-1] > 0
        assert metrics["fid_kind"].iloc[-1] == KIND_CLASSIFIER
        comm = pd.read_csv(out / "communication.csv")
        assert (
            len(comm) == 6
            and comm.groupby("round")["params_up"].sum().tolist() == metrics["params_up"].tolist()
        )
        fid = json.loads((out / "fid.json").read_text())
        info = json.loads((out / "run.json").read_text())
        assert info["labels"]["mode"] == run.mode and info["fid_kind"] == KIND_CLASSIFIER
        assert not (out / "checkpoint.pt").exists()
        models = json.loads((out / "model" / "model.json").read_text())["models"]
        if run.mode == "full":
            assert (
                models == {"global": "unet"}
                and (out / "samples" / "global.png").stat().st_size > 100
            )
        else:
            assert sorted(models) == [f"client{k}" for k in range(5)] and len(fid["per_model"]) == 5
            assert len(list((out / "samples").glob("client*.png"))) == 5
        unet = UNet2DModel.from_pretrained(out / "model" / next(iter(models.values())))
        assert unet.config.num_class_embeds == 11
    tables, figures = tmp_path / "tables", tmp_path / "figures"
    assert (
        main(
            [
                "diffuse-report",
                "--manifest",
                json.dumps(manifest),
                "--tables-dir",
                str(tables),
                "--figures-dir",
                str(figures),
            ]
        )
        == 0
    )
    table = pd.read_csv(tables / "diffusion_fid.csv")
    assert list(table["mode"]) == ["full", "udec"]
    assert (
        table.loc[0, "up_reduction_vs_full_pct"] == 0
        and table.loc[1, "up_reduction_vs_full_pct"] > 30
    )
    assert table.loc[1, "params_up"] < table.loc[0, "params_up"]
    assert (table["fid_kind"] == KIND_CLASSIFIER).all()
    md = (tables / "diffusion_fid.md").read_text()
    assert "not Inception FID" in md and "udec" in md
    assert r"\toprule" in (tables / "diffusion_fid.tex").read_text()
    for ext in ("png", "pdf"):
        assert (figures / f"diffusion_fid_vs_params.{ext}").stat().st_size > 1000
