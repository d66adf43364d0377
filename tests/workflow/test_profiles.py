"""The Snakemake profiles (profiles/default, profiles/slurm) and the workflow's lint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .tiny import REPO, TINY, check, planned_jobs, snakemake, write_config

DEFAULT = REPO / "profiles" / "default" / "config.yaml"
SLURM = REPO / "profiles" / "slurm" / "config.yaml"


def test_default_profile() -> None:
    profile = yaml.safe_load(DEFAULT.read_text())
    assert profile["cores"] == "all"
    assert profile["rerun-incomplete"] is True and profile["printshellcmds"] is True
    assert profile["keep-going"] is False


def test_slurm_profile() -> None:
    profile = yaml.safe_load(SLURM.read_text())
    assert profile["executor"] == "slurm"
    assert profile["jobs"] >= 1 and profile["retries"] >= 1
    assert profile["slurm-requeue"] is True and profile["rerun-incomplete"] is True
    assert profile["set-resources"]["train"]["gpu"] == 1
    # site settings are documented placeholders, not made-up values
    text = SLURM.read_text()
    assert "# slurm_partition:" in text and "# slurm_account:" in text
    assert not {"slurm_partition", "slurm_account"} & set(profile["default-resources"])


@pytest.mark.slow
def test_profiles_are_accepted_by_snakemake(tmp_path: Path) -> None:
    config = write_config(tmp_path / "tiny.yaml", TINY)
    # no profile given: the workflow's profiles/default applies
    plain = check(snakemake(tmp_path, "-n", f"--configfile={config}"))
    assert re.search(r"workflow specific profile \S*profiles/default\b", plain.stderr), plain.stderr
    # the cluster profile parses with the installed SLURM plugin and sets the resources
    slurm = check(
        snakemake(tmp_path, "-n", "--workflow-profile", str(SLURM.parent), f"--configfile={config}")
    )
    output = slurm.stdout + slurm.stderr
    assert f"workflow specific profile {SLURM.parent}" in output
    jobs = [rule for rule, _ in planned_jobs(output)]
    assert jobs.count("train") == 2
    resources = [line for line in output.splitlines() if line.strip().startswith("resources:")]
    train_resources = [r for r in resources if "runtime=240" in r]
    assert len(train_resources) == 2 and all(
        "gpu=1" in r and "mem_mb=8000" in r for r in train_resources
    )
    assert sum("gpu=1" in r for r in resources) == 2  # only train asks for a GPU


@pytest.mark.slow
def test_lint_is_clean() -> None:
    out = check(snakemake(REPO, "--lint", "--configfile", str(REPO / "config" / "config.yaml")))
    assert "Congratulations, your workflow is in a good condition!" in out.stdout + out.stderr
