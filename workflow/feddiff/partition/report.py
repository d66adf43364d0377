"""Client x class count tables and heatmaps, the standard picture of a partition.

The figure is drawn on a bare ``Figure`` with the Agg canvas rather than through
pyplot, so it needs no display, never switches the process-wide backend, and holds
no global figure state between Snakemake jobs.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from feddiff.utils.atomic import atomic_path

ANNOTATE_MAX_CELLS = 400
"""Write each count in its cell only up to this many cells; beyond, text is unreadable."""


def count_matrix(clients: Sequence[np.ndarray], labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, C)`` int64 matrix: entry ``[k, c]`` counts client k's samples of class c."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, num_classes={num_classes})")
    counts = np.zeros((len(clients), num_classes), dtype=np.int64)
    for k, idx in enumerate(clients):
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= labels.size):
            raise ValueError(f"client {k} has indices outside [0, {labels.size})")
        counts[k] = np.bincount(labels[idx], minlength=num_classes)
    return counts


def _check(counts: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise ValueError(f"counts must be a (clients, classes) matrix, got shape {counts.shape}")
    if len(class_names) != counts.shape[1]:
        raise ValueError(
            f"class_names has {len(class_names)} names for {counts.shape[1]} count columns"
        )
    return counts


def write_counts_csv(
    path: str | os.PathLike[str], counts: np.ndarray, class_names: Sequence[str]
) -> None:
    """CSV with header ``client,<class names...>,total`` and one row per client."""
    counts = _check(counts, class_names)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["client", *class_names, "total"])
        for k, row in enumerate(counts):
            writer.writerow([k, *(int(v) for v in row), int(row.sum())])


def plot_heatmap(
    path: str | os.PathLike[str],
    counts: np.ndarray,
    class_names: Sequence[str],
    title: str,
    xlabel: str = "class",
) -> None:
    """PNG heatmap of the client x class matrix; cells annotated when few enough.

    With ``xlabel="domain"`` and domain names for ``class_names`` it draws the client x
    domain matrix of a multi-domain dataset (:func:`count_matrix` of the domain indices).
    """
    counts = _check(counts, class_names)
    n_clients, n_classes = counts.shape
    fig = Figure(
        figsize=(
            min(max(4.0, 0.55 * n_classes + 2.5), 24.0),
            min(max(3.0, 0.35 * n_clients + 1.8), 24.0),
        ),
        dpi=100,
    )
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(counts, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="samples")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("client")
    xstep = max(1, n_classes // 40)
    ystep = max(1, n_clients // 40)
    ax.set_xticks(np.arange(0, n_classes, xstep))
    ax.set_xticklabels(
        [class_names[i] for i in range(0, n_classes, xstep)], rotation=60, ha="right", fontsize=7
    )
    ax.set_yticks(np.arange(0, n_clients, ystep))
    ax.set_yticklabels([str(i) for i in range(0, n_clients, ystep)], fontsize=7)
    if counts.size <= ANNOTATE_MAX_CELLS:
        mid = counts.max() / 2 if counts.size else 0
        for (k, c), v in np.ndenumerate(counts):
            ax.text(
                c,
                k,
                str(int(v)),
                ha="center",
                va="center",
                fontsize=6,
                color="black" if v > mid else "white",
            )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
