"""End to end: the real Snakemake DAG on the default config, and a CIFAR-10 slice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml

from feddiff.data.prepare import prepare_dataset
from feddiff.fl.run import train_run
from feddiff.stages import make_partition

from .conftest import REPO

pytestmark = pytest.mark.slow


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("snakemake")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(exe), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=1500,
    )


def test_default_config_runs_end_to_end(tmp_path: Path) -> None:
    """The DAG of the default config, run by Snakemake in a fresh directory."""
    config = REPO / "config" / "config.yaml"
    out = _snakemake(tmp_path, "--cores", "2", "--configfile", str(config))
    assert out.returncode == 0, out.stderr[-4000:]
    raw = yaml.safe_load(config.read_text())
    exp = raw["experiments"]["main"]
    tables = pd.read_csv(tmp_path / "results/tables/accuracy.csv")
    assert set(tables["experiment"]) == set(raw["experiments"])
    table = tables[tables["experiment"] == "main"]
    assert set(table["method"]) == set(exp["methods"])
    assert set(table["partition"]) == set(exp["partitions"])
    assert (table["n_seeds"] == len(exp["seeds"])).all()
    assert tables["final_mean"].between(0, 100).all()
    md = (tmp_path / "results/tables/accuracy.md").read_text()
    assert "best round" in md and "final" in md
    for ext in ("png", "pdf"):
        assert (tmp_path / f"results/figures/accuracy_vs_round_main.{ext}").stat().st_size > 1000
    runs = list((tmp_path / "results/runs").glob("*/*/*/*/seed*/metrics.csv"))
    main_runs = [r for r in runs if "/fedddpm_" not in str(r) and r.parts[-6] in exp["datasets"]]
    assert len(main_runs) == len(exp["datasets"]) * len(exp["partitions"]) * len(
        exp["methods"]
    ) * len(exp["seeds"])
    # FedDDPM / FedDDPM+ for the classifier: an auxiliary set per (partition, seed), corrections
    # logged
    fexp = raw["experiments"]["fedddpm"]
    aux = list((tmp_path / "results/auxiliary").rglob("*.h5"))
    assert len(aux) == len(fexp["partitions"]) * len(fexp["seeds"])
    for path in aux:
        assert (path.with_suffix("") / "grid.png").stat().st_size > 100
        assert len(pd.read_csv(path.with_suffix("") / "counts.csv")) == 10
    fedddpm_runs = [r for r in runs if "/fedddpm_" in str(r)]
    assert len(fedddpm_runs) == 2 * len(fexp["partitions"]) * len(fexp["seeds"])
    for metrics_path in fedddpm_runs:
        m = pd.read_csv(metrics_path)
        assert m["calibrations"].iloc[-1] == m["calibrated"].sum() >= 1
        if "triggerevery_round" in str(metrics_path):
            assert (m["calibrated"] == 1).all()
    for name in ("calibration_fedddpm", "diffusion_calibration"):  # the corrections, drawn
        for ext in ("png", "pdf"):
            assert (tmp_path / f"results/figures/{name}.{ext}").stat().st_size > 1000
    info = json.loads((runs[0].parent / "run.json").read_text())
    assert info["versions"]["torch"] and "training" in info["config"]
    assert not list((tmp_path / "results/runs").rglob("checkpoint.pt"))
    heatmaps = [
        h
        for d in exp["datasets"]
        for h in (tmp_path / "results/partitions" / d).rglob("heatmap.png")
    ]
    assert len(heatmaps) == len(exp["partitions"]) * len(exp["seeds"])
    # FedDiffuse: one federated DDPM per diffusion.grid cell, then its FID table and figure.
    grid = raw["diffusion"]["grid"]
    fid = pd.read_csv(tmp_path / "results/tables/diffusion_fid.csv")
    assert set(fid["mode"]) == set(grid["modes"]) and (fid["n_seeds"] == len(grid["seeds"])).all()
    assert {"full+fedddpm", "full+fedddpm_plus"} <= set(fid["mode"])
    assert (fid["fid_mean"] > 0).all() and fid["fid_kind"].str.len().gt(0).all()
    assert "vs FULL" in (tmp_path / "results/tables/diffusion_fid.md").read_text()
    for ext in ("png", "pdf"):
        assert (tmp_path / f"results/figures/diffusion_fid_vs_params.{ext}").stat().st_size > 1000
    druns = list((tmp_path / "results/diffusion").glob("*/*/*/*/seed*/metrics.csv"))
    assert len(druns) == len(grid["datasets"]) * len(grid["partitions"]) * len(grid["modes"]) * len(
        grid["seeds"]
    )
    for metrics in druns:
        assert (metrics.parent / "model" / "scheduler" / "scheduler_config.json").is_file()
        assert (
            list((metrics.parent / "samples").glob("*.png"))
            and (metrics.parent / "fid.json").is_file()
        )
    assert not list((tmp_path / "results/diffusion").rglob("checkpoint.pt"))
    # FedDifRC: features from the federated FULL DDPM, extracted once, used by every feddifrc run.
    features = list((tmp_path / "results/features").glob("*/ddpm/*.h5"))
    assert len(features) == 1 and not list((tmp_path / "results/features").rglob("*.partial.h5"))
    with h5py.File(features[0], "r") as f:
        assert (
            f.attrs["complete"]
            and "/diffusion/" in f.attrs["model_dir"]
            and "/full/" in f.attrs["model_dir"]
        )
        assert f["train/conditional"].shape[1] == 10 and f["train/done"][()].all()
    difrc = [m for m in exp["methods"] if raw["methods"][m]["strategy"] == "feddifrc"]
    assert len(difrc) == 3  # FedDifRC, TDCL only, NDCR only
    difrc_runs = [r for r in runs if "/feddifrc_features" in str(r)]
    assert len(difrc_runs) == len(difrc) * len(exp["partitions"]) * len(exp["seeds"])
    for metrics in difrc_runs:
        assert json.loads((metrics.parent / "run.json").read_text())["config"]["method"][
            "features"
        ] == str(features[0].relative_to(tmp_path))
    figures = features[0].with_suffix("")
    kmeans = pd.read_csv(figures / "kmeans.csv")
    assert kmeans["representation"].tolist()[-1] == "fused" and kmeans["nmi"].between(0, 1).all()
    for name in ("tsne.png", "pca.png", "kmeans.md"):
        assert (figures / name).stat().st_size > 100
    # Feature shift (issue #14): per-domain accuracies, their table and the domain counts.
    shift = raw["experiments"]["shift"]
    by_domain = pd.read_csv(tmp_path / "results/tables/accuracy_domains.csv")
    assert set(by_domain["experiment"]) == {"shift"} and set(by_domain["method"]) == set(
        shift["methods"]
    )
    assert by_domain["final_mean"].between(0, 100).all()
    assert (tmp_path / "results/tables/accuracy_domains.html").stat().st_size > 100
    [domain_counts] = (tmp_path / "results/partitions" / shift["datasets"][0]).rglob(
        "domain_counts.csv"
    )
    assert len(pd.read_csv(domain_counts)) == 4
    # A finished run is not redone.
    again = _snakemake(tmp_path, "--cores", "2", "--configfile", str(config), "-n")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def test_invalid_config_stops_before_any_job(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    raw["training"]["roundz"] = 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    out = _snakemake(tmp_path, "--cores", "1", "--configfile", str(bad))
    assert out.returncode != 0
    assert "roundz" in out.stderr + out.stdout
    assert not (tmp_path / "results").exists()


def test_cifar10_slice_trains(tmp_path: Path, cifar10_root: Path) -> None:
    """A few rounds of ResNet-10 on a slice of the CIFAR-10 folder, through the stages."""
    spec = {
        "source": "imagefolder",
        "root": str(cifar10_root),
        "max_train_per_class": 40,
        "max_test_per_class": 10,
    }
    arrays = prepare_dataset(spec, tmp_path / "cifar10.h5")
    assert arrays.x_train.shape == (400, 32, 32, 3)
    assert arrays.class_names[0] == "airplane" and arrays.class_names[-1] == "truck"
    setting = {"scheme": "dirichlet", "num_clients": 5, "alpha": 0.5}
    make_partition(tmp_path / "cifar10.h5", setting, 0, tmp_path / "part")
    counts = pd.read_csv(tmp_path / "part" / "counts.csv")
    assert counts["total"].sum() == 400
    settings = {
        "dataset": "cifar10",
        "partition": setting,
        "method": {"strategy": "fedavg"},
        "seed": 0,
        "training": {
            "model": "resnet10",
            "width": 0.125,
            "rounds": 2,
            "clients_per_round": 2,
            "local_epochs": 1,
            "batch_size": 32,
            "lr": 0.01,
            "augment": {"crop_padding": 4, "hflip": True},
        },
    }
    metrics = train_run(
        settings,
        tmp_path / "cifar10.h5",
        tmp_path / "part" / "partition.npz",
        tmp_path / "run",
        progress=False,
    )
    assert list(metrics["round"]) == [1, 2]
    assert metrics["test_acc"].between(0, 1).all() and metrics["train_loss"].notna().all()
    assert (tmp_path / "run" / "model.safetensors").stat().st_size > 10_000


def test_a_configfile_replaces_the_default_config(tmp_path: Path) -> None:
    """--configfile runs exactly that config's grid, not merged with the default's."""
    paper = REPO / "config" / "paper" / "feddifrc_baselines.yaml"
    out = _snakemake(REPO, "-n", "--configfile", str(paper))
    assert out.returncode == 0, out.stderr[-3000:]
    raw = yaml.safe_load(paper.read_text())
    exp = next(iter(raw["experiments"].values()))
    expected = len(exp["partitions"]) * len(exp["methods"]) * len(exp["seeds"])
    stats = out.stdout + out.stderr
    train_counts = [line.split()[1] for line in stats.splitlines() if line.startswith("train ")]
    assert train_counts and int(train_counts[0]) == expected
