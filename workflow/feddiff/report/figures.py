"""Accuracy-vs-round figures: one panel per (dataset, partition), one line per method.

Each line is the mean over seeds of test accuracy (percent) per round, with a ±1
sample-std band (``ddof=1``, as in the table) wherever more than one seed reports
that round. Panels are laid out with one row per (experiment, dataset) and one
column per partition; a method keeps its colour in every panel so the single shared
legend is unambiguous. Runs of different experiments are never averaged together:
they get separate rows, and the experiment is named in the titles when there is more
than one. Runs on a multi-domain dataset get one more row per domain (accuracy on that
domain's test split) and one for the mean over domains, below their overall row
(columns of :mod:`feddiff.fl.domain_columns`).

Figures are built on a bare ``Figure`` with the Agg canvas rather than pyplot, so no
global state or interactive backend is involved.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from feddiff.fl.domain_columns import DOMAIN_MEAN, domain_columns, domain_name
from feddiff.report.collect import RunResult, group_runs, resolve_order
from feddiff.utils.atomic import atomic_path

CURVE_COLUMNS = ["experiment", "dataset", "partition", "method", "round", "mean", "std", "n"]
_LINESTYLES = ("-", "--", ":", "-.")


def accuracy_curves(runs: list[RunResult], column: str = "test_acc") -> pd.DataFrame:
    """Per-round mean/std (percent) and seed count ``n`` of each plotted line, tidy.

    ``column`` picks the metric (a per-domain column: only the runs that have it).
    """
    frames = []
    runs = [r for r in runs if column in r.metrics.columns]
    for (experiment, dataset, method, partition), members in group_runs(runs).items():
        stacked = pd.concat([r.metrics[["round", column]] for r in members])
        acc = stacked.groupby("round", sort=True)[column]
        curve = pd.DataFrame(
            {"mean": acc.mean() * 100.0, "std": acc.std(ddof=1) * 100.0, "n": acc.size()}
        ).reset_index()
        curve.insert(0, "method", method)
        curve.insert(0, "partition", partition)
        curve.insert(0, "dataset", dataset)
        curve.insert(0, "experiment", experiment)
        frames.append(curve)
    if not frames:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[CURVE_COLUMNS]


def _metric_rows(runs: list[RunResult]) -> list[tuple[str, str, str]]:
    """(experiment, dataset, column) per figure row: overall, then each domain and the mean."""
    rows: list[tuple[str, str, str]] = []
    for experiment, dataset in dict.fromkeys((r.experiment, r.dataset) for r in runs):
        rows.append((experiment, dataset, "test_acc"))
        cols: list[str] = []
        for r in runs:
            if (r.experiment, r.dataset) == (experiment, dataset):
                cols += [c for c in domain_columns(r.metrics.columns) if c not in cols]
        rows += [(experiment, dataset, c) for c in [*cols, DOMAIN_MEAN] if cols]
    return rows


def _row_label(column: str) -> str:
    if column == "test_acc":
        return ""
    return " · mean over domains" if column == DOMAIN_MEAN else f" · domain {domain_name(column)}"


def _style(index: int) -> dict[str, str]:
    """Colour from the default cycle; linestyle changes after every 10 methods."""
    return {"color": f"C{index % 10}", "linestyle": _LINESTYLES[(index // 10) % 4]}


def _seed_note(counts: list[int]) -> str:
    lo, hi = min(counts), max(counts)
    noun = "seed" if hi == 1 else "seeds"
    return f"n = {lo} {noun}" if lo == hi else f"n = {lo}–{hi} {noun}"


def _draw_panel(ax: Axes, panel: pd.DataFrame, methods: list[str]) -> dict[str, object]:
    handles: dict[str, object] = {}
    for i, method in enumerate(methods):
        curve = panel[panel["method"] == method]
        if curve.empty:
            continue
        marker = "o" if len(curve) <= 30 else None
        (line,) = ax.plot(
            curve["round"],
            curve["mean"],
            label=method,
            marker=marker,
            markersize=3,
            linewidth=1.5,
            **_style(i),
        )
        band = curve[curve["n"] > 1]
        if not band.empty:
            ax.fill_between(
                band["round"],
                band["mean"] - band["std"],
                band["mean"] + band["std"],
                color=line.get_color(),
                alpha=0.2,
                linewidth=0,
            )
        handles[method] = line
    return handles


def build_accuracy_figure(
    runs: list[RunResult],
    method_order: list[str] | None = None,
    partition_order: list[str] | None = None,
) -> Figure:
    """Lay out the panels; exposed separately from saving so it can be inspected."""
    if not runs:
        raise ValueError("no runs to plot")
    methods = resolve_order((r.method for r in runs), method_order)
    partitions = resolve_order((r.partition for r in runs), partition_order)
    rows = _metric_rows(runs)
    curves = {c: accuracy_curves(runs, c) for c in dict.fromkeys(c for _, _, c in rows)}
    many_experiments = len({e for e, _, _ in rows}) > 1
    # at least 6 in wide: the suptitle and legend of a one-partition figure fit
    fig = Figure(
        figsize=(max(4.0 * len(partitions), 6.0), 3.2 * len(rows) + 0.8), layout="constrained"
    )
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), len(partitions), squeeze=False, sharey="row")
    handles: dict[str, object] = {}
    for r, (experiment, dataset, column) in enumerate(rows):
        labelled_row = False  # y ticks are shared per row: label its first drawn panel
        for c, partition in enumerate(partitions):
            ax = axes[r][c]
            frame = curves[column]
            panel = frame[
                (frame["experiment"] == experiment)
                & (frame["dataset"] == dataset)
                & (frame["partition"] == partition)
            ]
            if panel.empty:
                ax.set_axis_off()
                continue
            handles.update(
                {k: v for k, v in _draw_panel(ax, panel, methods).items() if k not in handles}
            )
            seeds = panel.groupby("method")["n"].max().astype(int).tolist()
            title = f"{dataset} · {partition}{_row_label(column)}"
            if many_experiments:
                title = f"{experiment}: {title}"
            ax.set_title(f"{title}\n{_seed_note(seeds)}", fontsize=10)
            ax.set_xlabel("round")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if not labelled_row:
                ax.set_ylabel("test accuracy (%)")
                ax.yaxis.set_tick_params(labelleft=True)
                labelled_row = True
            ax.grid(True, alpha=0.3)
    ordered = [m for m in methods if m in handles]
    fig.legend(
        [handles[m] for m in ordered],
        ordered,
        loc="outside lower center",
        ncol=min(len(ordered), 6),
        frameon=False,
    )
    fig.suptitle("Test accuracy vs. round (mean ± std over seeds)")
    return fig


def plot_accuracy_curves(
    runs: list[RunResult],
    out_png: Path,
    method_order: list[str] | None = None,
    partition_order: list[str] | None = None,
) -> None:
    """Write ``out_png`` and a PDF with the same stem next to it, both atomically."""
    out_png = Path(out_png)
    fig = build_accuracy_figure(runs, method_order, partition_order)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    with atomic_path(out_png.with_suffix(".pdf")) as tmp:
        # No creation date, so re-running on the same runs gives the same bytes.
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None})
