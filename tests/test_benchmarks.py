"""Smoke runs of the benchmark scripts in their tiniest settings (CPU, no Flower needed)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", REPO / "benchmarks" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_round_throughput_tiny_runs_our_variants_and_reports_missing_flower(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load("round_throughput")
    flower_installed = importlib.util.find_spec("flwr") is not None
    rc = bench.main(
        [
            "--tiny",
            "--variants",
            "vectorized,sequential,flower",
            "--out-dir",
            str(tmp_path),
            "--tag",
            "smoke",
            "--date",
            "2026-11-23",
            "--flower-python",
            sys.executable,
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    with open(tmp_path / "smoke.csv") as fh:
        rows = list(csv.DictReader(fh))
    variants = [r["variant"] for r in rows]
    assert variants[:2] == ["vectorized", "sequential"]
    for row in rows:
        assert float(row["images_per_second"]) > 0 and float(row["peak_rss_mb"]) > 0
        assert row["date"] == "2026-11-23"
        assert float(row["ratio_vs_sequential"]) > 0
    md = (tmp_path / "smoke.md").read_text()
    assert "x vs vectorized" in md and "images/s" in md
    if not flower_installed:  # CI: Flower is not a test dependency
        assert "flower: skipped, flwr[simulation] is not installed" in out
        assert "flower: skipped" in md and "flower" not in variants


def test_images_per_round_drops_a_trailing_single_sample() -> None:
    bench = _load("round_throughput")
    assert bench.images_per_round([20, 33, 47], batch_size=16, epochs=2) == 2 * (20 + 32 + 47)


def test_paper_cell_tiny_scale_runs_on_cpu(tmp_path: Path) -> None:
    cell = _load("paper_cell")
    out = tmp_path / "cell.csv"
    result = cell.main(
        [
            "--scale",
            "0.002",
            "--dataset",
            "synthetic",
            "--width",
            "0.0625",
            "--num-clients",
            "2",
            "--clients-per-round",
            "2",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--date",
            "2026-11-23",
        ]
    )
    assert (
        result["rounds"] == 1 and result["local_epochs"] == 1 and result["images_per_client"] == 10
    )
    assert result["images_per_second"] > 0
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and rows[0]["vectorize"] == "on"


def test_job_overhead_times_a_train_job_and_the_stage_imports(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One sample per tree and stage: the tables come out (no timing is asserted)."""
    bench = _load("job_overhead")
    trees = f"a={REPO / 'workflow'},b={REPO / 'workflow'}"
    assert bench.main(["--trees", trees, "--repeats", "1", "--stages", "partition"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("| a |", "| b |"))]
    assert len(rows) == 4  # a train row and an import row per tree
    assert all("| partition | `feddiff.stages` |" in r for r in rows if "stages" in r)
    assert sum("matplotlib" in r for r in rows) == 2  # the heatmap's import is reported


def test_job_overhead_times_a_train_job_through_a_preload_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same job alone and by a worker (which must have run it, or the script fails)."""
    bench = _load("job_overhead")
    assert bench.main(["--parts", "train", "--repeats", "1", "--preload"]) == 0
    out = capsys.readouterr().out
    assert sum(line.startswith("| current |") for line in out.splitlines()) == 1
    assert sum(line.startswith("| current+preload |") for line in out.splitlines()) == 1
