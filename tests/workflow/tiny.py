"""A tiny config and a Snakemake runner for the workflow-level tests.

The tiny config (``.test/config/config.yaml``: digits, fedavg, one seed, two partitions, a
few short rounds) runs through the whole DAG in about half a minute on 2 CPU cores; the
report config adds a tiny federated DDPM, diffusion features, FedDifRC and paper links (for
the HTML report).
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: The runnable copy of the tiny config (snakemake-workflows convention: ``snakemake --cores 2
#: --directory .test`` from the repository root); the one definition the tests use.
TEST_CONFIG = REPO / ".test" / "config" / "config.yaml"
TINY: dict[str, Any] = yaml.safe_load(TEST_CONFIG.read_text())


def tiny_config(**changes: Any) -> dict[str, Any]:
    """A deep copy of TINY; ``changes`` maps dotted keys (``partitions.dir.alpha``) to values."""
    config = copy.deepcopy(TINY)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = config
        for key in parents:
            node = node[key]
        node[leaf] = value
    return config


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def env() -> dict[str, str]:
    """The environment for snakemake and its jobs: this interpreter's bin first on PATH."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    return [
        str(BIN / "snakemake"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]


def snakemake(workdir: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        snakemake_cmd(workdir, *args),
        capture_output=True,
        text=True,
        env=env(),
        timeout=timeout,
        check=False,
    )


def check(out: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert out.returncode == 0, (
        f"snakemake failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    )
    return out


_JOB_HEADER = re.compile(r"^\s*(local)?rule (\w+):\s*$")
_WILDCARDS = re.compile(r"^\s*wildcards: (.*)$")


def planned_jobs(dry_run_output: str) -> list[tuple[str, dict[str, str]]]:
    """``(rule, wildcards)`` of every job a ``snakemake -n`` printed."""
    jobs: list[tuple[str, dict[str, str]]] = []
    for line in dry_run_output.splitlines():
        header = _JOB_HEADER.match(line)
        if header:
            jobs.append((header.group(2), {}))
            continue
        wildcards = _WILDCARDS.match(line)
        if wildcards and jobs:
            jobs[-1][1].update(dict(item.split("=", 1) for item in wildcards.group(1).split(", ")))
    return jobs


def job_stats(output: str) -> dict[str, int]:
    """The ``Job stats`` table of snakemake's output as ``{rule: count}`` (without total)."""
    stats: dict[str, int] = {}
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    except StopIteration:
        return stats
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            stats[parts[0]] = int(parts[1])
    return stats


#: The paper numbers the report config compares with (made up for the test, labelled so).
REPORT_VALUES = """table,dataset,partition,method,metric,value,source
tiny_acc,digits,,,accuracy,,"Test paper (2025), arXiv:0000.00000v1, Table 1 (made up for the test)"
tiny_acc,digits,iid,fedavg,accuracy,90.0,"Test paper (2025), arXiv:0000.00000v1, Table 1 (made up for the test)"
tiny_fid,digits,dir,full,fid,12.5,"Test paper (2025), arXiv:0000.00000v1, Table 2 (made up for the test)"
"""  # noqa: E501 (CSV rows, kept one per line)


def report_config() -> dict[str, Any]:
    """TINY plus everything the HTML report shows: a FedDifRC method on diffusion features of
    the pipeline's own federated DDPM (two modes, a tiny UNet, a few rounds), and paper links
    for the accuracy and the FID table (values in ``paper_values.csv`` in the workdir)."""
    config = tiny_config()
    config["methods"]["feddifrc"] = {"strategy": "feddifrc", "features": "ddpm"}
    config["features"] = {
        "ddpm": {
            "backbone": "ddpm",
            "diffusion": {"partition": "dir", "mode": "full", "seed": 0},
            "timestep": 100,
            "blocks": [0, 1],
            "dims": [8, 4],
            "pca_fit_images": 100,
            "batch_size": 128,
            "device": "cpu",
        },
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
            "rounds": 2,
            "clients_per_round": 2,
            "local_epochs": 1,
            "batch_size": 64,
            "lr": 3.0e-3,
            "device": "cpu",
        },
        "sampling": {
            "sampler": "ddim",
            "steps": 5,
            "num_samples": 40,
            "batch_size": 40,
            "grid_per_class": 2,
        },
        "fid": {
            "backend": "classifier",
            "classifier": {"model": "cnn", "epochs": 1, "device": "cpu"},
        },
        "grid": {
            "datasets": ["digits"],
            "partitions": ["dir"],
            "modes": ["full", "udec"],
            "seeds": [0],
        },
        "paper": {"table": "tiny_fid", "values": "paper_values.csv"},
    }
    exp = config["experiments"]["tiny"]
    exp["methods"] = ["fedavg", "feddifrc"]
    exp["paper"] = {"table": "tiny_acc", "values": "paper_values.csv"}
    return config


_FINISHED: dict[str, Path] = {}


def finished_tiny_run(factory: Any) -> Path:
    """A directory where `snakemake` ran TINY to completion, built once per test session
    (``factory``: pytest's ``tmp_path_factory``). Tests must not modify it."""
    if "tiny" not in _FINISHED:
        workdir = factory.mktemp("tiny_run")
        config = write_config(workdir / "tiny.yaml", TINY)
        check(snakemake(workdir, "--cores", "2", f"--configfile={config}"))
        _FINISHED["tiny"] = workdir
    return _FINISHED["tiny"]


def finished_report_run(factory: Any) -> Path:
    """A directory where `snakemake` ran :func:`report_config` to completion, once per
    session (``factory``: pytest's ``tmp_path_factory``). Tests must not modify it."""
    if "report" not in _FINISHED:
        workdir = factory.mktemp("report_run")
        (workdir / "paper_values.csv").write_text(REPORT_VALUES)
        config = write_config(workdir / "report.yaml", report_config())
        check(snakemake(workdir, "--cores", "2", f"--configfile={config}"))
        _FINISHED["report"] = workdir
    return _FINISHED["report"]
