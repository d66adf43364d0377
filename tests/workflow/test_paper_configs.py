"""The paper configs (config/paper/*.yaml): each builds its DAG without the data, as
given (torchvision download) and with the dataset pointed at the ImageFolder copy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .tiny import REPO, check, job_stats, planned_jobs, snakemake

pytestmark = pytest.mark.slow

PAPER = REPO / "config" / "paper"
CONFIGS = sorted(PAPER.glob("*.yaml"))
IMAGEFOLDER = "datasets={cifar10: {source: imagefolder, root: ../shared/datasets/cifar10}}"


def _header(path: Path) -> str:
    return "".join(
        line for line in path.read_text().splitlines(keepends=True) if line.startswith("#")
    )


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_dry_run_builds_the_dag(path: Path, tmp_path: Path) -> None:
    """From another working directory: nothing of the data is needed, the values file is found."""
    out = check(snakemake(tmp_path, "-n", f"--configfile={path}"))
    stats = job_stats(out.stdout + out.stderr)
    raw = yaml.safe_load(path.read_text())
    runs = {
        (ds, p, m, s)
        for exp in raw["experiments"].values()
        for ds in exp["datasets"]
        for p in exp["partitions"]
        for m in exp["methods"]
        for s in exp["seeds"]
    }
    assert stats["train"] <= len(runs) and stats["prepare_data"] == len(raw["datasets"])
    links = [exp["paper"]["table"] for exp in raw["experiments"].values() if exp.get("paper")]
    links += [raw["diffusion"]["paper"]["table"]] if raw.get("diffusion", {}).get("paper") else []
    assert stats.get("paper_table", 0) == len(set(links))
    if raw.get("diffusion"):
        assert stats["diffuse_train"] == stats["diffusion_samples"]


CELEBA_FOLDER = "datasets={celeba: {source: imagefolder, root: /data/celeba_smiling}}"
#: Per paper config: its datasets as given (torchvision downloads) and the documented override
#: that points one of them at an ImageFolder copy.
DATASETS = {
    "feddifrc_main.yaml": (
        {"cifar10": {"source": "cifar10"}},
        IMAGEFOLDER,
        "../shared/datasets/cifar10",
    ),
    "feddifrc_ablation.yaml": (
        {"cifar10": {"source": "cifar10"}},
        IMAGEFOLDER,
        "../shared/datasets/cifar10",
    ),
    "feddiffuse_fid_cifar10.yaml": (
        {"cifar10": {"source": "cifar10"}},
        IMAGEFOLDER,
        "../shared/datasets/cifar10",
    ),
    # the paper's own datasets (FedDiffuse summary): Fashion-MNIST and CelebA
    "feddiffuse_fid.yaml": (
        {"fashion_mnist": {"source": "fashion_mnist"}, "celeba": {"source": "celeba"}},
        CELEBA_FOLDER,
        "/data/celeba_smiling",
    ),
}


@pytest.mark.parametrize("name", list(DATASETS))
def test_paper_config_header_and_dataset(name: str, tmp_path: Path) -> None:
    path = PAPER / name
    header = _header(path)
    datasets, override, root = DATASETS[name]
    assert "arXiv:" in header and "GPU" in header
    assert f"snakemake --configfile config/paper/{name}" in header
    assert f"snakemake --workflow-profile profiles/slurm --configfile config/paper/{name}" in header
    assert override in header
    raw = yaml.safe_load(path.read_text())
    assert raw["datasets"] == datasets  # torchvision downloads by default
    # the documented override points one dataset at the ImageFolder copy, the others stay
    out = check(snakemake(tmp_path, "-n", "-p", f"--configfile={path}", "--config", override))
    prepare = [line for line in out.stdout.splitlines() if " prepare --spec " in line]
    assert len(prepare) == len(datasets)
    folder = [line for line in prepare if '"source": "imagefolder"' in line]
    assert len(folder) == 1 and root in folder[0]
    assert [rule for rule, _ in planned_jobs(out.stdout)].count("prepare_data") == len(datasets)


def test_feddiffuse_config_follows_the_paper_summary() -> None:
    """K, R, E and the datasets as the FedDiffuse summary gives them (K = 5, R = 15, E = 5;
    Fashion-MNIST and CelebA), and a UNet whose levels fit 28x28 and 32x32 without padding."""
    from feddiff.data.torchvision_sources import source_image_shape
    from feddiff.plan import load_config

    config = load_config(PAPER / "feddiffuse_fid.yaml")
    section = config["diffusion"]
    training = section["training"]
    assert (training["clients_per_round"], training["rounds"], training["local_epochs"]) == (
        5,
        15,
        5,
    )
    assert {config["partitions"][p]["num_clients"] for p in section["grid"]["partitions"]} == {5}
    assert [config["datasets"][d]["source"] for d in section["grid"]["datasets"]] == [
        "fashion_mnist",
        "celeba",
    ]
    assert section["grid"]["modes"] == ["full", "usplit", "udec", "ulatdec"]
    halvings = len(section["unet"]["block_out_channels"]) - 1
    for d in section["grid"]["datasets"]:
        side = source_image_shape(config["datasets"][d])[0]
        assert side % 2**halvings == 0, (d, side)
