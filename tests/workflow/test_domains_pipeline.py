"""Feature shift end to end: a derived multi-domain digits set, one client per domain.

FedAvg, FedBN, FedDifRC (on the features of a federated DDPM trained on the domain
partition) and FedDDPM (auxiliary set from the clients' DDPMs) run unchanged on the
``domain`` partition; metrics.csv carries the per-domain accuracies, and the per-domain
tables and the partition's domain counts are written and declared. (The per-domain
numbers themselves are checked against plain torch in tests/fl/test_domain_eval.py and
tests/fl/test_fedbn.py.) The domains come in declaration order, as when the dataset is
prepared by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from .tiny import REPO, check, snakemake, tiny_config, write_config

DOMAINS = ["plain", "rotated", "inverted", "blurred"]  # declaration order


def domains_config() -> dict[str, Any]:
    config = tiny_config()
    config["datasets"] = {
        "digits4": {
            "source": "domains",
            "image_size": 8,
            "channels": 1,
            "domains": {
                "plain": {
                    "source": "digits",
                    "test_fraction": 0.25,
                    "split_seed": 0,
                    "max_train_per_class": 8,
                },
                "rotated": {"derive": {"from": "plain", "transform": "rotate", "degrees": 90}},
                "inverted": {"derive": {"from": "plain", "transform": "invert"}},
                "blurred": {"derive": {"from": "plain", "transform": "blur", "sigma": 1.0}},
            },
        }
    }
    config["partitions"] = {"dom": {"scheme": "domain", "num_clients": 4, "clients_per_domain": 1}}
    config["methods"] = {
        "fedavg": {"strategy": "fedavg"},
        "fedbn": {"strategy": "fedbn"},
        "feddifrc": {"strategy": "feddifrc", "features": "ddpm"},
        "fedddpm": {"strategy": "fedddpm", "auxiliary": "aux"},
    }
    config["training"] = {**config["training"], "rounds": 3, "clients_per_round": 3}
    config["features"] = {
        "ddpm": {
            "backbone": "ddpm",
            "diffusion": {"partition": "dom", "mode": "full", "seed": 0},
            "timestep": 100,
            "blocks": [0, 1],
            "dims": [8, 4],
            "pca_fit_images": 60,
            "batch_size": 128,
            "device": "cpu",
        }
    }
    config["auxiliary"] = {
        "aux": {
            "generator": "local_ddpm",
            "size": 40,
            "local_epochs": 1,
            "batch_size": 16,
            "lr": 3.0e-3,
            "sampler": "ddim",
            "steps": 5,
        }
    }
    config["diffusion"] = {
        "unet": {
            "block_out_channels": [8, 16],
            "layers_per_block": 1,
            "attention": [False, False],
            "mid_attention": False,
            "norm_num_groups": 4,
        },
        "training": {
            "rounds": 1,
            "clients_per_round": 2,
            "local_epochs": 1,
            "batch_size": 64,
            "lr": 3.0e-3,
            "device": "cpu",
        },
        "sampling": {
            "sampler": "ddim",
            "steps": 5,
            "num_samples": 20,
            "batch_size": 20,
            "grid_per_class": 1,
        },
        "fid": {
            "backend": "classifier",
            "classifier": {"model": "cnn", "epochs": 1, "device": "cpu"},
        },
        "grid": {"datasets": ["digits4"], "partitions": ["dom"], "modes": ["full"], "seeds": [0]},
    }
    config["experiments"] = {
        "shift": {
            "datasets": ["digits4"],
            "partitions": ["dom"],
            "methods": list(config["methods"]),
            "seeds": [0],
        }
    }
    return config


@pytest.fixture(scope="module")
def domain_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("domain_run")
    config = write_config(workdir / "domains.yaml", domains_config())
    check(snakemake(workdir, "--cores", "2", f"--configfile={config}"))
    return workdir


def _metrics(workdir: Path, method: str) -> pd.DataFrame:
    [path] = (workdir / "results" / "runs" / "digits4").glob(f"*/{method}*/*/seed0/metrics.csv")
    return pd.read_csv(path)


@pytest.mark.slow
def test_every_method_runs_on_the_domain_partition_with_per_domain_columns(
    domain_run: Path,
) -> None:
    for method in ("fedavg", "fedbn", "feddifrc", "fedddpm"):
        m = _metrics(domain_run, method)
        cols = [f"test_acc_{d}" for d in DOMAINS]
        assert list(m.columns[m.columns.str.startswith("test_acc_")]) == [
            *cols,
            "test_acc_domain_mean",
        ], method
        assert len(m) == 3
        assert (m["test_acc_domain_mean"] - m[cols].mean(axis=1)).abs().max() < 1e-9, method
        # one client per domain, equal test splits: the overall accuracy is the domain mean
        assert (m["test_acc"] - m["test_acc_domain_mean"]).abs().max() < 1e-9, method


@pytest.mark.slow
def test_domain_tables_figure_and_partition_counts_are_written(domain_run: Path) -> None:
    tables = domain_run / "results" / "tables"
    tidy = pd.read_csv(tables / "accuracy_domains.csv")
    assert sorted(tidy["method"].unique()) == ["fedavg", "fedbn", "fedddpm", "feddifrc"]
    assert list(tidy[tidy["method"] == "fedbn"]["domain"]) == [*DOMAINS, "mean over domains"]
    final = _metrics(domain_run, "fedbn").iloc[-1]
    got = tidy[(tidy["method"] == "fedbn") & (tidy["domain"] == "inverted")]["final_mean"].item()
    assert got == pytest.approx(100 * final["test_acc_inverted"], abs=1e-4)
    for ext in ("md", "tex", "html"):
        assert "inverted" in (tables / f"accuracy_domains.{ext}").read_text()
    assert (domain_run / "results" / "figures" / "accuracy_vs_round_shift.png").stat().st_size > 0
    [part] = (domain_run / "results" / "partitions" / "digits4").glob("*/seed0")
    counts = pd.read_csv(part / "domain_counts.csv", index_col=0)[DOMAINS]
    assert counts.shape == (4, 4) and (counts.to_numpy() > 0).sum() == 4  # one domain per client
    assert (part / "domain_heatmap.png").stat().st_size > 0


@pytest.mark.parametrize("name", ["fedbn_digits.yaml", "fedbn_office_caltech.yaml"])
def test_fedbn_paper_configs_validate_and_say_what_they_need(name: str) -> None:
    """They validate (their DAG dry-builds in tests/workflow/test_paper_configs.py), one
    client per domain with every client in every round, and the header says what it needs
    and that the hyperparameters are our choice (the FedBN paper is not in the cited papers)."""
    from feddiff.plan import expand_runs, load_config

    path = REPO / "config" / "paper" / name
    header = "".join(
        line for line in path.read_text().splitlines(keepends=True) if line.startswith("#")
    )
    assert "NEEDS THE DATA AND A GPU" in header and "OUR CHOICE" in header
    assert f"snakemake --cores all --configfile config/paper/{name}" in header
    config = load_config(path)
    [dataset] = config["datasets"].values()
    assert dataset["source"] == "domains" and len(dataset["domains"]) == 4
    [part] = config["partitions"].values()
    assert part == {**part, "scheme": "domain", "num_clients": 4, "clients_per_domain": 1}
    assert config["training"]["clients_per_round"] == 4
    assert {run.method for run in expand_runs(config)} >= {"fedavg", "fedbn"}
