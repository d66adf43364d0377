"""FedDDPM's server calibration at a glance: the auxiliary loss per round, corrections marked.

One panel per (dataset, partition); per run a line of the global model's auxiliary loss
after aggregation (``aux_loss``) and, in each round where a calibration pass ran, a
segment down to the loss after it (``aux_loss_after``) ending in a marker. FedDDPM
shows a tooth every round; FedDDPM+ only where progress stalled. Works for classifier
runs (cross-entropy) and federated DDPM runs (denoising loss) alike: both write the same
columns (:class:`feddiff.calibration.ServerCalibrator`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from feddiff.utils.atomic import atomic_path

COLUMNS = ("round", "aux_loss", "aux_loss_after", "calibrated")


@dataclass(frozen=True)
class CalibratedRun:
    """The metrics of one run that calibrated, with the labels its line and panel get."""

    dataset: str
    partition: str
    label: str
    metrics: pd.DataFrame


def has_calibration(metrics: pd.DataFrame) -> bool:
    return all(c in metrics.columns for c in COLUMNS) and metrics["aux_loss"].notna().any()


def build_calibration_figure(runs: Sequence[CalibratedRun], ylabel: str) -> Figure:
    if not runs:
        raise ValueError("no calibrated runs to plot")
    panels = list(dict.fromkeys((r.dataset, r.partition) for r in runs))
    labels = list(dict.fromkeys(r.label for r in runs))
    fig = Figure(figsize=(max(6.4, 4.2 * len(panels)), 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    handles = {}
    for ax, (dataset, partition) in zip(axes, panels):
        for run in (r for r in runs if (r.dataset, r.partition) == (dataset, partition)):
            m = run.metrics.sort_values("round")
            color = f"C{labels.index(run.label) % 10}"
            (line,) = ax.plot(m["round"], m["aux_loss"], color=color, linewidth=1.2)
            fired = m[m["calibrated"] == 1]
            for r, before, after in zip(fired["round"], fired["aux_loss"], fired["aux_loss_after"]):
                ax.plot([r, r], [before, after], color=color, linewidth=0.8, alpha=0.7)
            ax.scatter(
                fired["round"], fired["aux_loss_after"], color=color, marker="v", s=14, zorder=3
            )
            handles.setdefault(run.label, line)
        ax.set_title(f"{dataset} / {partition}", fontsize=9)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncols=min(4, len(handles)),
        fontsize=8,
        frameon=False,
    )
    fig.suptitle("Auxiliary loss after aggregation; ▼ after a calibration pass", fontsize=9)
    return fig


def plot_calibration(runs: Sequence[CalibratedRun], png: Path, ylabel: str) -> None:
    """Write ``png`` and the PDF beside it."""
    fig = build_calibration_figure(runs, ylabel)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    with atomic_path(png.with_suffix(".pdf")) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None})
