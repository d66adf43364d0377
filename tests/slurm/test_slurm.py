"""The same DAG on a real SLURM cluster: a throwaway single-node cluster on this host.

``start_slurm.sh`` installs slurm-wlm and munge with apt-get when missing, writes
/etc/slurm/slurm.conf for this host (no accounting database: job status comes from
squeue), and starts munged, slurmctld and slurmd; the fixture stops them again. The tiny
config then runs with the repository's SLURM profile (profiles/slurm) and the executor
plugin: every job that is not a local rule must be a SLURM job, and every output must
match the local run of the same config. The test skips, saying why, only where the
cluster cannot be brought up (not root, apt-get failing, daemons unable to run).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ..workflow.tiny import REPO, TINY, env, snakemake_cmd, write_config

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("start_slurm.sh")
SKIP_CODES = {  # exit codes of `start_slurm.sh start` that mean: no cluster can run here
    3: "not root",
    4: "apt-get install of slurm-wlm/munge failed",
    5: "a SLURM/munge daemon could not start (or another SLURM cluster is in the way)",
    6: "the SLURM node never became idle",
}
LOCAL_RULES = {"partition", "report"}  # `localrules:` in the Snakefile


def _script(action: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), action], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("starting slurmctld/slurmd for the test cluster needs root")
    try:
        started = _script("start", timeout=600)
    except subprocess.TimeoutExpired:
        _script("stop", timeout=120)
        pytest.skip("bringing up the SLURM test cluster timed out (apt-get or daemons)")
    if started.returncode in SKIP_CODES:
        _script("stop", timeout=120)
        pytest.skip(
            f"SLURM cannot run here: {SKIP_CODES[started.returncode]}:\n{started.stderr[-1500:]}"
        )
    assert started.returncode == 0, (
        f"start_slurm.sh failed ({started.returncode}):\n{started.stderr}"
    )
    try:
        yield
    finally:
        stopped = _script("stop", timeout=120)
        assert stopped.returncode == 0, stopped.stderr


def _squeue(run_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T", "--name", run_id],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(line.split("|", 1) for line in out.stdout.split())


def _files(workdir: Path, pattern: str) -> dict[str, Path]:
    return {str(p.relative_to(workdir)): p for p in sorted(workdir.glob(pattern))}


def _wait_for(
    predicate, proc: subprocess.Popen[bytes], log: Path, what: str, timeout: float = 300
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, (
            f"snakemake ended while waiting for {what}:\n{log.read_text()[-6000:]}"
        )
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what}:\n{log.read_text()[-6000:]}"
        )
        time.sleep(0.05)


def test_tiny_config_runs_on_slurm_like_locally(
    slurm_cluster: None, tiny_run: Path, tmp_path: Path
) -> None:
    """Also: one train job is cancelled (scancel) mid-run, after its first checkpoint; the
    profile's `retries: 1` resubmits it and the new SLURM job resumes from checkpoint.pt."""
    config = write_config(tmp_path / "tiny.yaml", TINY)
    cmd = snakemake_cmd(
        tmp_path,
        "--workflow-profile",
        str(REPO / "profiles" / "slurm"),
        "--executor",
        "slurm",
        "--jobs",
        "4",
        f"--configfile={config}",
        "--default-resources",
        "slurm_partition=debug",
        # small enough for any CI machine's node; replaces the profile's set-resources
        # (so no GPU is requested from this GPU-less node)
        "--set-resources",
        "prepare_data:mem_mb=1000",
        "train:mem_mb=1000",
        "--slurm-status-command",
        "squeue",  # no accounting database here
        "--slurm-init-seconds-before-status-checks",
        "1",
        "--seconds-between-status-checks",
        "1",
        "--slurm-keep-successful-logs",
        "--latency-wait",
        "10",
    )
    log = tmp_path / "snakemake.out"
    (iid_run,) = (tiny_run / "results/runs/digits/iid_num_clients4/fedavg").glob("*/seed0")
    checkpoint = tmp_path / iid_run.relative_to(tiny_run) / "checkpoint.pt"
    iid_train = re.compile(
        r"submitted with SLURM jobid (\d+) \(log: \S+/rule_train/digits_iid_\S+\)"
    )
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env())
        try:
            _wait_for(
                lambda: iid_train.search(log.read_text()),
                proc,
                log,
                "the iid train job's submission",
            )
            (cancelled,) = iid_train.findall(log.read_text())
            _wait_for(checkpoint.exists, proc, log, "the iid train job's first checkpoint")
            subprocess.run(["scancel", cancelled], check=True)
            proc.wait(timeout=480)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = log.read_text()
    assert proc.returncode == 0, f"snakemake on SLURM failed:\n{output[-6000:]}"

    # (a) every job that is not a local rule ran as a SLURM job of this run ...
    (run_id,) = re.findall(r"SLURM run ID: (\S+)", output)
    submitted = re.findall(
        r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.", output
    )
    remote_rules = sorted(
        Path(job_log).parts[-3].removeprefix("rule_") for _, _, job_log in submitted
    )
    # prepare_data, the two train jobs and the cancelled train job's second attempt
    assert remote_rules == ["prepare_data", "train", "train", "train"], submitted
    # the light rules ran on the submitting host (shown as `localrule`), never in SLURM
    assert LOCAL_RULES <= set(re.findall(r"^localrule (\w+):$", output, re.MULTILINE))
    states = _squeue(run_id)
    assert set(states) == {slurm_id for _, slurm_id, _ in submitted}
    assert states.pop(cancelled) == "CANCELLED" and set(states.values()) == {"COMPLETED"}, states
    # ... and left its SLURM log, in which the job's own snakemake ran the rule
    ran = []
    for _, slurm_id, job_log in submitted:
        log_path = Path(job_log)
        assert log_path.is_file() and log_path.name == f"{slurm_id}.log"
        assert log_path.is_relative_to(tmp_path / ".snakemake" / "slurm_logs")
        text = log_path.read_text()
        (rule,) = re.findall(r"^rule (\w+):$", text, re.MULTILINE)
        assert log_path.parts[-3] == f"rule_{rule}"
        assert ("1 of 1 steps (100%) done" in text) == (slurm_id != cancelled)
        ran.append(rule)
    assert sorted(ran) == remote_rules
    # the resubmitted job resumed from the cancelled one's checkpoint
    train_log = (
        tmp_path
        / "results/logs/train/digits/iid_num_clients4/fedavg"
        / iid_run.parent.name
        / "seed0.log"
    )
    assert "resuming from" in train_log.read_text()
    assert not checkpoint.exists()

    # (b) the results equal the local run's
    slurm_metrics = _files(tmp_path, "results/runs/**/metrics.csv")
    local_metrics = _files(tiny_run, "results/runs/**/metrics.csv")
    assert slurm_metrics.keys() == local_metrics.keys() and len(slurm_metrics) == 2
    for rel, path in slurm_metrics.items():
        pd.testing.assert_frame_equal(
            pd.read_csv(path).drop(columns="seconds"),
            pd.read_csv(local_metrics[rel]).drop(columns="seconds"),
            check_exact=True,
        )
    for pattern in (
        "results/runs/**/model.safetensors",
        "results/partitions/**/partition.npz",
        "results/partitions/**/counts.csv",
        "results/tables/accuracy.*",
    ):
        slurm_files, local_files = _files(tmp_path, pattern), _files(tiny_run, pattern)
        assert slurm_files and slurm_files.keys() == local_files.keys(), pattern
        for rel, path in slurm_files.items():
            if rel.endswith(".npz"):
                with np.load(path) as a, np.load(local_files[rel]) as b:
                    assert a.files == b.files and all(
                        np.array_equal(a[k], b[k]) for k in a.files
                    ), rel
            assert path.read_bytes() == local_files[rel].read_bytes(), rel
