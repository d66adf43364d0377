"""Per-rule cost of a pipeline run, from Snakemake's ``benchmark:`` files.

The costly rules write one TSV per job under ``results/benchmarks/<rule>/...`` (wall
seconds ``s``, peak resident memory ``max_rss`` in MB, ``cpu_time``). This module sums
them per rule, so the README's performance notes and a user's own runs are measured the
same way, never by timed assertions in tests. A job that a preload worker ran
(feddiff.preload) has the client's CPU and memory in its benchmark file; the worker's own,
from the last line of the job's log, replace them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from feddiff.preload import worker_usage
from feddiff.report.render import write_table

COLUMNS = ["rule", "jobs", "wall_s_total", "wall_s_mean", "wall_s_max", "cpu_s_total", "max_rss_mb"]


def read_benchmarks(root: Path, logs: Path | None = None) -> pd.DataFrame:
    """One row per benchmark file: its rule (first folder under ``root``) and measures.

    ``logs`` holds the jobs' logs under the same keys (``feddiff.paths``); where one ends
    with a preload worker's usage, its CPU and memory are the job's.
    """
    rows = []
    for path in sorted(Path(root).rglob("*.tsv")):
        frame = pd.read_csv(path, sep="\t")
        if frame.empty or "s" not in frame:
            raise ValueError(f"{path} is not a Snakemake benchmark file (no 's' column)")
        last = frame.iloc[-1]  # `repeat(...)` writes several rows: the last run counts
        rss = pd.to_numeric(last.get("max_rss"), errors="coerce")
        cpu = pd.to_numeric(last.get("cpu_time"), errors="coerce")
        log = None if logs is None else Path(logs) / path.relative_to(root).with_suffix(".log")
        usage = worker_usage(log.read_text(errors="replace")) if log and log.is_file() else None
        if usage is not None:
            cpu, rss = usage
        rows.append(
            {
                "rule": path.relative_to(root).parts[0],
                "file": str(path),
                "wall_s": float(last["s"]),
                "cpu_s": float(cpu),
                "max_rss_mb": float(rss),
            }
        )
    return pd.DataFrame(rows, columns=["rule", "file", "wall_s", "cpu_s", "max_rss_mb"])


def summarize_benchmarks(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per rule: job count, total / mean / max wall seconds, total CPU seconds, peak RSS."""
    if jobs.empty:
        return pd.DataFrame(columns=COLUMNS)
    grouped = jobs.groupby("rule", sort=True)
    table = pd.DataFrame(
        {
            "jobs": grouped.size(),
            "wall_s_total": grouped["wall_s"].sum(),
            "wall_s_mean": grouped["wall_s"].mean(),
            "wall_s_max": grouped["wall_s"].max(),
            "cpu_s_total": grouped["cpu_s"].sum(min_count=1),
            "max_rss_mb": grouped["max_rss_mb"].max(),
        }
    ).reset_index()
    return table.sort_values("wall_s_total", ascending=False, ignore_index=True)[COLUMNS]


def write_benchmark_summary(root: Path, out_stem: Path, logs: Path | None = None) -> pd.DataFrame:
    """``<out_stem>.{csv,md,tex,html}``: the per-rule summary of ``root``'s benchmark files
    (``logs``: the jobs' logs, for the CPU and memory of preload workers)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"no benchmark folder {root}: run the pipeline first (rules write "
            "their benchmark: files there)"
        )
    table = summarize_benchmarks(read_benchmarks(root, logs))
    write_table(
        table,
        Path(out_stem),
        title="Pipeline cost per rule",
        caption="From Snakemake's benchmark: files, the last run of each job. Wall and CPU "
        "time in seconds, peak resident memory (max_rss) in MB; for a job run by a preload "
        "worker, CPU and memory are the worker's (from the job's log).",
        label="tab:benchmarks",
        float_format="%.1f",
        csv_float_format="%.2f",
        source="feddiff.report.benchmarks",
    )
    return table
