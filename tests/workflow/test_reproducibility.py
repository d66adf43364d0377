"""The DAG as a cache: a finished run is not redone, and a changed setting reruns exactly
the jobs downstream of it (checked on dry runs of a finished tiny run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .tiny import (
    TINY,
    check,
    job_stats,
    planned_jobs,
    snakemake,
    tiny_config,
    write_config,
)

pytestmark = pytest.mark.slow


def _mtimes(workdir: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (workdir / "results").rglob("*") if p.is_file()}


def _dry_run(workdir: Path, config: Path) -> str:
    out = check(snakemake(workdir, "-n", f"--configfile={config}"))
    return out.stdout + out.stderr


def test_second_invocation_does_nothing(tiny_run: Path, tmp_path: Path) -> None:
    before = _mtimes(tiny_run)
    out = check(snakemake(tiny_run, "--cores", "2", f"--configfile={tiny_run / 'tiny.yaml'}"))
    assert "Nothing to be done" in out.stdout + out.stderr
    assert _mtimes(tiny_run) == before  # not a single file rewritten or touched
    # the same config written afresh (new file, same content) changes nothing either
    assert "Nothing to be done" in _dry_run(tiny_run, write_config(tmp_path / "same.yaml", TINY))


def test_changing_a_partition_setting_reruns_exactly_its_downstream_jobs(
    tiny_run: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "alpha.yaml", tiny_config(**{"partitions.dir.alpha": 0.3}))
    output = _dry_run(tiny_run, config)
    # one partition job (one seed), the one run trained on it, the report, its HTML table
    assert job_stats(output) == {"partition": 1, "train": 1, "report": 1, "all": 1}
    jobs = planned_jobs(output)
    changed = "dirichlet_alpha0.3_num_clients5"
    assert {w["ptag"] for rule, w in jobs if rule in ("partition", "train")} == {changed}
    # untouched: the dataset, the iid partition and its run, the old alpha=0.5 results
    assert not [rule for rule, _ in jobs if rule == "prepare_data"]


def test_changing_a_training_setting_reruns_training_but_no_partition(
    tiny_run: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "lr.yaml", tiny_config(**{"training.lr": 0.02}))
    stats = job_stats(_dry_run(tiny_run, config))
    assert stats == {"train": 2, "report": 1, "all": 1}


def test_changing_the_report_setting_reruns_only_the_report(tiny_run: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "lastk.yaml", tiny_config(last_k=3))
    stats = job_stats(_dry_run(tiny_run, config))
    assert stats == {"report": 1, "all": 1}
