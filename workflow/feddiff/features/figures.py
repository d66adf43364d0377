"""Figures of cached diffusion representations: t-SNE, K-means scores, the PCA view.

The representations shown are the denoised ones (the denoising prompt, no class
information) of the test split, per decoder block (its slice of the vector) and fused
(all blocks concatenated), as in the paper's t-SNE of Stable Diffusion decoder
features. Outputs, each written atomically:

- ``tsne.{png,pdf}``: one t-SNE panel per representation, points coloured by class;
- ``kmeans.{csv,md,tex,html}``: K-means with K = number of classes on each representation,
  scored by purity (share of points in their cluster's majority class) and NMI;
- ``pca.{png,pdf}``: cumulative explained variance of each block's fitted PCA (how
  much of the hypercolumn variance the kept width retains) and a 2-D PCA scatter of
  the fused representation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from feddiff.features.store import load_features
from feddiff.report.render import tex_label, write_table
from feddiff.utils.atomic import atomic_path

KMEANS_COLUMNS = ["representation", "dim", "purity", "nmi"]


@dataclass
class Representations:
    """Named (n, d) arrays of one split, their labels and class names."""

    sets: dict[str, np.ndarray]
    labels: np.ndarray
    class_names: list[str]
    explained: list[np.ndarray]
    blocks: list[int]


def load_representations(
    path: Path, split: str = "test", max_points: int = 2000, seed: int = 0
) -> Representations:
    """The denoised vectors of ``split`` (a seeded subsample of ``max_points``), per block
    and fused."""
    cache = load_features(path, split)
    x = cache.denoised.numpy()
    y = cache.labels.numpy()
    if len(y) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), size=max_points, replace=False))
        x, y = x[keep], y[keep]
    blocks = [int(b) for b in cache.attrs["blocks"]]
    bounds = np.cumsum([0, *cache.layer_dims])
    sets = {f"block {b}": x[:, bounds[i] : bounds[i + 1]] for i, b in enumerate(blocks)}
    sets["fused"] = x
    with h5py.File(path, "r") as f:
        explained = [f[f"pca/layer{i}/explained_variance_ratio"][()] for i in range(len(blocks))]
    return Representations(sets, y, list(cache.attrs["class_names"]), explained, blocks)


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Share of points whose label is their cluster's most frequent label."""
    total = 0
    for c in np.unique(clusters):
        total += np.bincount(labels[clusters == c]).max()
    return float(total) / len(labels)


def kmeans_table(reps: Representations, seed: int = 0) -> pd.DataFrame:
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    k = len(reps.class_names)
    rows = []
    for name, x in reps.sets.items():
        clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
        rows.append(
            {
                "representation": name,
                "dim": x.shape[1],
                "purity": purity(reps.labels, clusters),
                "nmi": float(normalized_mutual_info_score(reps.labels, clusters)),
            }
        )
    return pd.DataFrame(rows, columns=KMEANS_COLUMNS)


def write_kmeans_table(
    table: pd.DataFrame, stem: Path, k: int, n_points: int, split: str
) -> dict[str, Path]:
    """``stem.csv`` (full precision) and ``stem.{md,tex,html}`` (scores to 3 decimals)."""
    three = "{:.3f}".format
    return write_table(
        table,
        stem,
        title=f"K-means (K = {k}) on denoised diffusion representations, {n_points} {split} images",
        caption="purity = share of points in their cluster's majority class; "
        "NMI = normalised mutual information of clusters and classes.",
        label=tex_label("tab:kmeans", str(stem.parent.name)),
        formatters={"purity": three, "nmi": three},
        headers={"nmi": "NMI"},
        source="feddiff.features.figures",
    )


def _scatter(ax, xy: np.ndarray, labels: np.ndarray, class_names: list[str]) -> None:  # type: ignore[no-untyped-def]
    for c, name in enumerate(class_names):
        sel = labels == c
        if sel.any():
            ax.scatter(
                xy[sel, 0],
                xy[sel, 1],
                s=4,
                color=f"C{c % 10}",
                marker="o" if c < 10 else "x",
                label=name,
            )
    ax.set_xticks([])
    ax.set_yticks([])


def tsne_figure(reps: Representations, seed: int = 0) -> Figure:
    from sklearn.manifold import TSNE

    names = list(reps.sets)
    fig = Figure(figsize=(3.6 * len(names), 3.9), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    n = len(reps.labels)
    for ax, name in zip(axes, names):
        x = reps.sets[name]
        xy = TSNE(
            n_components=2, init="pca", random_state=seed, perplexity=min(30.0, (n - 1) / 3)
        ).fit_transform(x)
        _scatter(ax, xy, reps.labels, reps.class_names)
        ax.set_title(f"{name} ({x.shape[1]}-d)", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    if len(labels) <= 20:
        fig.legend(
            handles, labels, loc="outside right center", markerscale=3, frameon=False, fontsize=8
        )
    fig.suptitle(f"t-SNE of denoised diffusion representations ({n} test images)")
    return fig


def pca_figure(reps: Representations) -> Figure:
    from sklearn.decomposition import PCA

    fig = Figure(figsize=(8.0, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    for block, ratio in zip(reps.blocks, reps.explained):
        left.plot(np.arange(1, len(ratio) + 1), np.cumsum(ratio), label=f"block {block}")
    left.set_xlabel("components kept")
    left.set_ylabel("cumulative explained variance")
    left.set_ylim(0, 1.02)
    left.grid(True, alpha=0.3)
    left.legend(frameon=False, fontsize=8)
    left.set_title("per-block PCA of hypercolumns", fontsize=10)
    xy = PCA(n_components=2).fit_transform(reps.sets["fused"])
    _scatter(right, xy, reps.labels, reps.class_names)
    right.set_title("fused representation, first two PCs", fontsize=10)
    return fig


def _save(fig: Figure, png: Path) -> None:
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    with atomic_path(png.with_suffix(".pdf")) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None})


def make_feature_figures(
    features: str | Path,
    out_dir: str | Path,
    split: str = "test",
    max_points: int = 2000,
    seed: int = 0,
    threads: int = 1,
) -> pd.DataFrame:
    """Write the t-SNE and PCA figures and the K-means table into ``out_dir``.

    scikit-learn's OpenMP/BLAS pools are capped at ``threads``: uncapped on a busy
    machine, three 450-point t-SNEs took 85 s instead of 10 s (spin-waiting threads).
    """
    from threadpoolctl import threadpool_limits

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reps = load_representations(Path(features), split, max_points, seed)
    with threadpool_limits(threads):
        table = kmeans_table(reps, seed)
        tsne = tsne_figure(reps, seed)
        pca = pca_figure(reps)
    write_kmeans_table(table, out_dir / "kmeans", len(reps.class_names), len(reps.labels), split)
    _save(pca, out_dir / "pca.png")
    _save(tsne, out_dir / "tsne.png")
    return table
