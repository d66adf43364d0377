"""The per-rule summary of Snakemake benchmark files, on hand-made files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from feddiff.preload import USAGE_LINE
from feddiff.report.benchmarks import read_benchmarks, summarize_benchmarks, write_benchmark_summary

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _bench(path: Path, *rows: tuple[float, float, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{s}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n" for s, rss, cpu in rows]
    path.write_text(HEADER + "".join(lines))


def test_summary_per_rule(tmp_path: Path) -> None:
    root = tmp_path / "benchmarks"
    _bench(root / "train" / "digits" / "a" / "seed0.tsv", (4.0, 300.0, 3.5))
    _bench(root / "train" / "digits" / "b" / "seed1.tsv", (6.0, 500.0, 5.0))
    _bench(root / "prepare_data" / "digits.tsv", (1.5, 120.0, 1.0))
    # a repeat()-ed benchmark: only its last row counts
    _bench(root / "diffuse_train" / "x.tsv", (100.0, 900.0, 90.0), (20.0, 800.0, 19.0))
    table = write_benchmark_summary(root, tmp_path / "out" / "benchmarks")
    assert list(table["rule"]) == ["diffuse_train", "train", "prepare_data"]  # by total wall time
    train = table.set_index("rule").loc["train"]
    assert train["jobs"] == 2
    assert train["wall_s_total"] == pytest.approx(10.0)
    assert train["wall_s_mean"] == pytest.approx(5.0)
    assert train["wall_s_max"] == pytest.approx(6.0)
    assert train["cpu_s_total"] == pytest.approx(8.5)
    assert train["max_rss_mb"] == pytest.approx(500.0)
    assert table.set_index("rule").loc["diffuse_train", "wall_s_total"] == pytest.approx(20.0)
    assert pd.read_csv(tmp_path / "out" / "benchmarks.csv")["jobs"].sum() == 4
    assert "| train" in (tmp_path / "out" / "benchmarks.md").read_text()


def test_not_a_benchmark_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "train" / "x.tsv"
    bad.parent.mkdir(parents=True)
    bad.write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="x.tsv"):
        read_benchmarks(tmp_path)


def test_missing_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run the pipeline first"):
        write_benchmark_summary(tmp_path / "nope", tmp_path / "out")


def test_empty_folder_gives_empty_table(tmp_path: Path) -> None:
    assert summarize_benchmarks(read_benchmarks(tmp_path)).empty


def test_a_preload_workers_cpu_and_memory_come_from_the_jobs_log(tmp_path: Path) -> None:
    """The benchmark file measured the client; the worker wrote its own cost to the log."""
    root, logs = tmp_path / "benchmarks", tmp_path / "logs"
    _bench(root / "train" / "digits" / "a" / "seed0.tsv", (4.0, 20.0, 0.1))  # served
    _bench(root / "train" / "digits" / "b" / "seed0.tsv", (5.0, 300.0, 4.5))  # ran alone
    served = logs / "train" / "digits" / "a" / "seed0.log"
    served.parent.mkdir(parents=True)
    line = USAGE_LINE.format(pid=42, cpu=3.25, mb=612.4)
    served.write_text(f"wrote run\n{USAGE_LINE.format(pid=41, cpu=1.0, mb=1.0)}\n{line}\n")
    (logs / "train" / "digits" / "b").mkdir(parents=True)
    (logs / "train" / "digits" / "b" / "seed0.log").write_text("wrote run\n")
    jobs = read_benchmarks(root, logs).set_index("file")
    a = jobs.loc[str(root / "train" / "digits" / "a" / "seed0.tsv")]
    b = jobs.loc[str(root / "train" / "digits" / "b" / "seed0.tsv")]
    assert (a["wall_s"], a["cpu_s"], a["max_rss_mb"]) == (4.0, 3.25, 612.0)  # the last line
    assert (b["wall_s"], b["cpu_s"], b["max_rss_mb"]) == (5.0, 4.5, 300.0)
    assert read_benchmarks(root).set_index("file").loc[a.name, "cpu_s"] == 0.1  # no logs
