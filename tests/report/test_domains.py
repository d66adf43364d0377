"""Per-domain table and figure rows from hand-written runs (two seeds, two domains).

Seeds 0/1 of fedavg end at 60/70 % on domain "mnist" and 30/50 % on "svhn"; fedbn at
80/80 % and 40/60 %. So fedavg's cells are 65.00 ± 7.07 and 40.00 ± 14.14 with a
domain mean of 52.50 ± 10.61, worked out by hand here.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from feddiff.report.collect import RunResult
from feddiff.report.domains import (
    MEAN_LABEL,
    domain_table,
    render_domain_latex,
    render_domain_markdown,
)
from feddiff.report.figures import build_accuracy_figure

FINAL = {
    ("fedavg", 0): (0.6, 0.3),
    ("fedavg", 1): (0.7, 0.5),
    ("fedbn", 0): (0.8, 0.4),
    ("fedbn", 1): (0.8, 0.6),
}


def _run(method: str, seed: int, domains: bool = True, experiment: str = "shift") -> RunResult:
    a, b = FINAL[(method, seed)]
    metrics = pd.DataFrame({"round": [1, 2, 3], "test_acc": [0.1, 0.2, (a + b) / 2]})
    if domains:
        metrics["test_acc_mnist"] = [0.1, 0.2, a]
        metrics["test_acc_svhn"] = [0.1, 0.2, b]
        metrics["test_acc_domain_mean"] = [0.1, 0.2, (a + b) / 2]
    return RunResult(
        experiment, "digits4", "dom", method, seed, metrics, Path(f"/runs/{method}/{seed}")
    )


def _runs() -> list[RunResult]:
    return [_run(m, s) for m in ("fedavg", "fedbn") for s in (0, 1)]


def test_domain_table_values_by_hand() -> None:
    table = domain_table(_runs(), last_k=2)
    cell = table.set_index(["method", "domain"])
    assert cell.loc[("fedavg", "mnist"), "final_mean"] == pytest.approx(65.0)
    assert cell.loc[("fedavg", "mnist"), "final_std"] == pytest.approx(7.0711, abs=1e-4)
    assert cell.loc[("fedavg", "svhn"), "final_std"] == pytest.approx(14.1421, abs=1e-4)
    assert cell.loc[("fedavg", MEAN_LABEL), "final_mean"] == pytest.approx(52.5)
    assert cell.loc[("fedbn", "mnist"), "final_std"] == pytest.approx(0.0)
    # last-2 mean of fedavg/mnist: seeds (20+60)/2 = 40 and (20+70)/2 = 45 -> 42.5
    assert cell.loc[("fedavg", "mnist"), "lastk_mean"] == pytest.approx(42.5)
    assert list(table["domain"][:3]) == ["mnist", "svhn", MEAN_LABEL]


def test_markdown_and_latex_render_the_hand_values() -> None:
    table = domain_table(_runs())
    md = render_domain_markdown(table)
    assert "| method | partition | mnist | svhn | mean over domains |" in md
    assert "| fedavg | dom | 65.00 ± 7.07 | 40.00 ± 14.14 | 52.50 ± 10.61 |" in md
    assert "| fedbn | dom | 80.00 ± 0.00 | 50.00 ± 14.14 | 65.00 ± 7.07 |" in md
    tex = render_domain_latex(table)
    assert r"fedavg & dom & 65.00 $\pm$ 7.07 & 40.00 $\pm$ 14.14 & 52.50 $\pm$ 10.61 \\" in tex
    assert r"\begin{tabular}{llrrr}" in tex  # numbers right-aligned, as in every table


def test_runs_without_domains_are_left_out_and_none_is_an_error() -> None:
    table = domain_table([*_runs(), _run("fedavg", 0, domains=False, experiment="plain")])
    assert set(table["experiment"]) == {"shift"}
    with pytest.raises(ValueError, match="no run has per-domain"):
        domain_table([_run("fedavg", 0, domains=False)])


def test_figure_has_a_row_per_domain_and_the_mean() -> None:
    fig = build_accuracy_figure([*_runs(), _run("fedavg", 0, domains=False, experiment="plain")])
    titles = [ax.get_title().split("\n")[0] for ax in fig.axes if ax.get_title()]
    assert titles == [
        "shift: digits4 · dom",
        "shift: digits4 · dom · domain mnist",
        "shift: digits4 · dom · domain svhn",
        "shift: digits4 · dom · mean over domains",
        "plain: digits4 · dom",
    ]
    svhn = next(
        ax for ax in fig.axes if ax.get_title().startswith("shift: digits4 · dom · domain svhn")
    )
    fedavg = next(line for line in svhn.get_lines() if line.get_label() == "fedavg")
    assert list(fedavg.get_ydata())[-1] == pytest.approx(40.0)
