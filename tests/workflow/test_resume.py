"""A train job killed mid-run resumes from its checkpoint when Snakemake reruns it.

``checkpoint.pt`` lives in the run directory but is not a declared output, so neither
Snakemake's cleanup of a failed/incomplete job nor ``--rerun-incomplete`` deletes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from .tiny import TINY, check, env, snakemake, snakemake_cmd, write_config

pytestmark = pytest.mark.slow

RUN = "results/runs/digits/iid_num_clients4/fedavg"
TRAIN_LOG = "results/logs/train/digits/iid_num_clients4/fedavg"


def _run_dir(workdir: Path) -> Path:
    (run_dir,) = (workdir / RUN).glob("*/seed0")  # the training tag is a hash of the settings
    return run_dir


def test_killed_train_job_resumes_through_snakemake(tiny_run: Path, tmp_path: Path) -> None:
    reference = _run_dir(tiny_run)  # the same config, run without interruption
    rel = reference.relative_to(tiny_run)
    config = write_config(tmp_path / "tiny.yaml", TINY)
    target = f"{rel}/metrics.csv"
    checkpoint = tmp_path / rel / "checkpoint.pt"

    # 1. Start snakemake; SIGKILL its whole process group (snakemake and the train job
    #    under it, as a crash or an OOM kill would) once the first checkpoint exists.
    with open(tmp_path / "killed.log", "w") as out:
        proc = subprocess.Popen(
            snakemake_cmd(tmp_path, "--cores", "1", f"--configfile={config}", target),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env(),
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 600
            while not checkpoint.exists():
                assert proc.poll() is None, (
                    "snakemake ended before the first checkpoint:\n"
                    + (tmp_path / "killed.log").read_text()
                )
                assert time.monotonic() < deadline, "no checkpoint after 10 minutes"
                time.sleep(0.01)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not (tmp_path / target).exists(), (
        "the run finished before the kill; the test proves nothing"
    )
    done = torch.load(checkpoint, map_location="cpu", weights_only=False)["round"]
    assert 1 <= done < TINY["training"]["rounds"]
    assert (tmp_path / ".snakemake" / "incomplete").is_dir()  # snakemake had no chance to clean up

    # 2. What a user does next: unlock (the killed snakemake left its lock) and rerun.
    check(snakemake(tmp_path, "--unlock", f"--configfile={config}"))
    assert checkpoint.exists()
    out = check(
        snakemake(tmp_path, "--cores", "1", f"--configfile={config}", "--rerun-incomplete", target)
    )
    log = (tmp_path / TRAIN_LOG / f"{reference.parent.name}/seed0.log").read_text()
    assert "resuming from" in log and f"after round {done}" in log, log[-2000:]
    assert not checkpoint.exists()  # removed once the outputs are written

    # 3. The resumed run ends exactly where the uninterrupted one did.
    resumed = pd.read_csv(tmp_path / target).drop(columns="seconds")
    expected = pd.read_csv(reference / "metrics.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(resumed, expected, check_exact=True)
    assert list(resumed["round"]) == list(range(1, TINY["training"]["rounds"] + 1))
    again = check(snakemake(tmp_path, "-n", f"--configfile={config}", target))
    assert "Nothing to be done" in again.stdout + again.stderr
