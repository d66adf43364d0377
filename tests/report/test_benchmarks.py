"""The per-rule summary of Snakemake benchmark files, on hand-made files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

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
