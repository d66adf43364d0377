"""Count matrix, CSV and heatmap."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from feddiff.partition.report import count_matrix, plot_heatmap, write_counts_csv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_count_matrix() -> None:
    labels = np.array([0, 1, 1, 2, 0, 2, 2])
    counts = count_matrix(
        [np.array([0, 1, 2]), np.array([3, 4, 5, 6]), np.array([], dtype=int)], labels, 4
    )
    assert counts.tolist() == [[1, 2, 0, 0], [1, 0, 3, 0], [0, 0, 0, 0]]
    assert counts.dtype == np.int64


def test_count_matrix_rejects_bad_indices() -> None:
    with pytest.raises(ValueError, match="client 0"):
        count_matrix([np.array([7])], np.array([0, 1]), 2)


def test_csv(tmp_path: Path) -> None:
    path = tmp_path / "counts.csv"
    write_counts_csv(path, np.array([[3, 0, 1], [2, 5, 0]]), ["cat", "dog", "ship"])
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [
        ["client", "cat", "dog", "ship", "total"],
        ["0", "3", "0", "1", "4"],
        ["1", "2", "5", "0", "7"],
    ]


def test_csv_name_count_mismatch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="class_names"):
        write_counts_csv(tmp_path / "c.csv", np.zeros((2, 3)), ["a", "b"])
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("shape", [(4, 3), (30, 100)])  # annotated, and too big to annotate
def test_heatmap_is_png(tmp_path: Path, shape: tuple[int, int]) -> None:
    counts = np.random.default_rng(0).integers(0, 50, size=shape)
    path = tmp_path / "heat.png"
    plot_heatmap(path, counts, [f"c{i}" for i in range(shape[1])], "clients x classes")
    assert path.read_bytes()[:8] == PNG_MAGIC
    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert [p.name for p in tmp_path.iterdir()] == ["heat.png"]


def test_heatmap_rejects_bad_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="matrix"):
        plot_heatmap(tmp_path / "h.png", np.zeros(3), ["a", "b", "c"], "t")
