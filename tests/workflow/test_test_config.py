"""``.test/config/config.yaml``: the tiny config as a runnable file (snakemake-workflows layout).

The workflow tests load it as ``TINY`` (tests/workflow/tiny.py), so it is checked end to end
by every test that runs the tiny DAG; here: it validates through the command line, and
``snakemake --directory <dir>`` picks it up as ``<dir>/config/config.yaml`` without
``--configfile`` (the Snakefile's ``configfile:`` is relative to the working directory),
which is what ``snakemake --cores 2 --directory .test`` relies on.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .tiny import REPO, TEST_CONFIG, TINY, check, env, planned_jobs, snakemake


def test_test_config_validates() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "feddiff", "validate", "--config", str(TEST_CONFIG), "--list"],
        capture_output=True,
        text=True,
        env=env(),
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{TEST_CONFIG}: valid; 2 runs" in out.stdout
    run_dirs = [line for line in out.stdout.splitlines() if line.startswith("  tiny: ")]
    assert len(run_dirs) == 2
    assert any("/iid_num_clients4/" in line for line in run_dirs), out.stdout
    assert any("/dirichlet_alpha0.5_num_clients5/" in line for line in run_dirs), out.stdout


def test_directory_convention_picks_up_the_test_config(tmp_path: Path) -> None:
    """A dry run in a copy of ``.test/`` (the repository's own stays free of .snakemake/)."""
    shutil.copytree(TEST_CONFIG.parent, tmp_path / "config")
    out = check(snakemake(tmp_path, "-n", "--cores", "2", timeout=300))
    jobs = planned_jobs(out.stdout)
    counts = Counter(rule for rule, _ in jobs)
    seeds = len(TINY["experiments"]["tiny"]["seeds"])
    assert counts["train"] == len(TINY["partitions"]) * len(TINY["methods"]) * seeds
    assert counts["partition"] == len(TINY["partitions"]) * seeds
    assert counts["prepare_data"] == 1
    # The default config's jobs would include diffusion and FedDifRC stages; the tiny one has none.
    assert "diffuse_train" not in counts and "extract_features" not in counts
