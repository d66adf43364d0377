"""Aggregated accuracy table: exact numbers, ordering, Markdown/LaTeX/CSV rendering."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest

from feddiff.report import RunResult, accuracy_table, load_runs, write_accuracy_tables
from feddiff.report.tables import TABLE_COLUMNS, format_cell, render_latex, render_markdown

from .conftest import MakeRun


def _row(table: pd.DataFrame, method: str, partition: str) -> pd.Series:
    hit = table[(table["method"] == method) & (table["partition"] == partition)]
    assert len(hit) == 1
    return hit.iloc[0]


def _md_row(md: str, first_cell: str) -> list[str]:
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no Markdown row starting with {first_cell!r}")


def test_exact_numbers(grid_runs: list[RunResult]) -> None:
    table = accuracy_table(grid_runs, last_k=5)
    assert list(table.columns) == TABLE_COLUMNS
    assert len(table) == 4
    r = _row(table, "fedavg", "iid")
    assert (r.n_seeds, r.n_rounds) == (3, 6)
    assert r.final_mean == pytest.approx(85.0)
    assert r.final_std == pytest.approx(1.0)  # sample std of 84, 85, 86
    assert r.lastk_mean == pytest.approx(82.2)
    assert r.lastk_std == pytest.approx(1.0)
    assert r.best_mean == pytest.approx(87.0)
    assert r.best_std == pytest.approx(1.0)
    wide = _row(table, "fed_prox", "dir0.5")
    assert wide.final_mean == pytest.approx(80.0)
    assert wide.final_std == pytest.approx(2.0)
    assert wide.best_mean == pytest.approx(82.0)


def test_last_k_changes_window(grid_runs: list[RunResult]) -> None:
    r = _row(accuracy_table(grid_runs, last_k=3), "fedavg", "iid")
    assert r.lastk_mean == pytest.approx((87 + 84 + 85) / 3)
    assert r.final_mean == pytest.approx(85.0)


def test_default_order_is_first_appearance(grid_runs: list[RunResult]) -> None:
    table = accuracy_table(grid_runs)
    assert table["method"].tolist() == ["fedavg", "fedavg", "fed_prox", "fed_prox"]
    assert table["partition"].tolist() == ["iid", "dir0.5", "iid", "dir0.5"]


def test_order_arguments_respected(grid_runs: list[RunResult]) -> None:
    table = accuracy_table(
        grid_runs, method_order=["fed_prox", "fedavg"], partition_order=["dir0.5", "iid"]
    )
    assert table["method"].tolist() == ["fed_prox", "fed_prox", "fedavg", "fedavg"]
    assert table["partition"].tolist() == ["dir0.5", "iid", "dir0.5", "iid"]
    md = render_markdown(table)
    header = _md_row(md, "method")
    assert header[1] == "dir0.5 final" and header[4] == "iid final"
    assert md.index("| fed_prox |") < md.index("| fedavg |")


def test_partial_order_appends_unlisted(grid_runs: list[RunResult]) -> None:
    table = accuracy_table(grid_runs, method_order=["fed_prox", "not_run"])
    assert table["method"].tolist()[::2] == ["fed_prox", "fedavg"]


def test_markdown_cells_and_labels(grid_runs: list[RunResult]) -> None:
    md = render_markdown(accuracy_table(grid_runs), last_k=5)
    assert "## exp_a — cifar10" in md
    assert _md_row(md, "method") == [
        "method",
        "iid final",
        "iid last-5 mean",
        "iid best round",
        "dir0.5 final",
        "dir0.5 last-5 mean",
        "dir0.5 best round",
    ]
    assert _md_row(md, "fedavg") == [
        "fedavg",
        "85.00 ± 1.00",
        "82.20 ± 1.00",
        "87.00 ± 1.00",
        "75.00 ± 1.00",
        "72.20 ± 1.00",
        "77.00 ± 1.00",
    ]
    assert _md_row(md, "fed_prox")[4:] == ["80.00 ± 2.00", "77.20 ± 2.00", "82.00 ± 2.00"]
    legend = (
        "final = accuracy after the last round (round 6); "
        "last-5 mean = mean over the last 5 rounds; "
        "best round = highest accuracy over all rounds (for reference only); "
        "mean ± sample std over 3 seeds"
    )
    assert legend in md


def test_markdown_uses_real_k(grid_runs: list[RunResult]) -> None:
    md = render_markdown(accuracy_table(grid_runs, last_k=3), last_k=3)
    assert "iid last-3 mean" in _md_row(md, "method")
    assert "mean over the last 3 rounds" in md
    assert "last-5" not in md


def test_single_seed_has_no_plus_minus(make_run: MakeRun) -> None:
    runs = load_runs([make_run("a", [0.5, 0.85])])
    table = accuracy_table(runs)
    assert math.isnan(table.loc[0, "final_std"])
    md = render_markdown(table, last_k=5)
    assert _md_row(md, "fedavg") == ["fedavg", "85.00", "67.50", "85.00"]
    assert "±" not in _md_row(md, "fedavg")[1]
    assert "single seed (no std)" in md
    assert "all rounds where a run has fewer" in md  # 2 rounds < k = 5


def test_format_cell() -> None:
    assert format_cell(85.0, 1.0, 3) == "85.00 ± 1.00"
    assert format_cell(85.0, 0.0, 1) == "85.00"  # one seed never shows a spread
    assert format_cell(85.0, float("nan"), 2) == "85.00"
    assert format_cell(float("nan"), float("nan"), 0) == "–"


def test_mixed_seed_counts_and_missing_cell(make_run: MakeRun) -> None:
    dirs = [
        make_run("a0", [0.80], method="fedavg", partition="iid", seed=0),
        make_run("a1", [0.90], method="fedavg", partition="iid", seed=1),
        make_run("b0", [0.70], method="scaffold", partition="iid", seed=0),
        make_run("c0", [0.60], method="fedavg", partition="dir0.1", seed=0),
    ]
    md = render_markdown(accuracy_table(load_runs(dirs)), last_k=5)
    assert _md_row(md, "scaffold") == ["scaffold", "70.00", "70.00", "70.00", "–", "–", "–"]
    assert _md_row(md, "fedavg")[1] == "85.00 ± 7.07"
    assert "mean ± sample std over 1–2 seeds per cell (no ± where a cell has a single seed)" in md


def test_one_block_per_experiment_and_dataset(make_run: MakeRun) -> None:
    dirs = [
        make_run("a", [0.5], experiment="e1", dataset="mnist"),
        make_run("b", [0.6], experiment="e1", dataset="cifar10"),
        make_run("c", [0.7], experiment="e2", dataset="mnist"),
    ]
    md = render_markdown(accuracy_table(load_runs(dirs)))
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings == ["## e1 — mnist", "## e1 — cifar10", "## e2 — mnist"]
    assert md.count("best round = highest accuracy") == 3


def test_latex_booktabs_and_escaping(grid_runs: list[RunResult]) -> None:
    tex = render_latex(accuracy_table(grid_runs), last_k=5)
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\cmidrule(lr){2-4}"):
        assert rule in tex
    assert r"fed\_prox & 87.00 $\pm$ 1.00 & 84.20 $\pm$ 1.00 & 89.00 $\pm$ 1.00" in tex
    assert r"exp\_a" in tex
    assert r"Test accuracy (\%)" in tex
    body = [line for line in tex.splitlines() if not line.startswith("%")]
    assert not any(re.search(r"(?<!\\)[_%]", line) for line in body)
    assert "±" not in tex
    assert r"\multicolumn{3}{c}{iid}" in tex and "best round" in tex


def test_write_accuracy_tables(grid_runs: list[RunResult], tmp_path: Path) -> None:
    table = accuracy_table(grid_runs)
    out = tmp_path / "out"
    write_accuracy_tables(table, out / "acc")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["acc.csv", "acc.html", "acc.md", "acc.tex"]  # no temporary left over
    back = pd.read_csv(out / "acc.csv")
    assert list(back.columns) == TABLE_COLUMNS
    assert back["method"].tolist() == table["method"].tolist()
    assert back.loc[0, "lastk_mean"] == pytest.approx(82.2, abs=1e-9)
    assert "82.2000" in (out / "acc.csv").read_text()
    assert "85.00 ± 1.00" in (out / "acc.md").read_text()
    assert r"\bottomrule" in (out / "acc.tex").read_text()
    page = (out / "acc.html").read_text()
    md = (out / "acc.md").read_text()
    assert page.count("<h2>") == md.count("\n## ") >= 1 and "<td>85.00 ± 1.00</td>" in page
    # the CSV is exactly pandas' tidy frame at 4 decimals (what users' scripts parse)
    assert (out / "acc.csv").read_text() == table.to_csv(index=False, float_format="%.4f")


def test_rendering_from_reloaded_csv(grid_runs: list[RunResult], tmp_path: Path) -> None:
    """A table read back from CSV (no categoricals) still renders, NaN std as no ±."""
    table = accuracy_table(grid_runs)
    table.loc[0, ["n_seeds", "final_std"]] = [1, float("nan")]
    table.to_csv(tmp_path / "t.csv", index=False)
    md = render_markdown(pd.read_csv(tmp_path / "t.csv"))
    assert _md_row(md, "fedavg")[1] == "85.00"


def test_empty_inputs_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no runs"):
        accuracy_table([])
    with pytest.raises(ValueError, match="empty"):
        write_accuracy_tables(pd.DataFrame(columns=TABLE_COLUMNS), tmp_path / "a")
    assert list(tmp_path.iterdir()) == []
