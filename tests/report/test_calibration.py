"""The calibration figure: drawn from the columns both federations log, teeth where passes ran."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from feddiff.report.calibration import (
    CalibratedRun,
    build_calibration_figure,
    has_calibration,
    plot_calibration,
)


def metrics(fired: list[int]) -> pd.DataFrame:
    rounds = list(range(1, 7))
    before = [2.0 - 0.2 * r for r in rounds]
    after = [b - 0.3 if r in fired else b for r, b in zip(rounds, before)]
    return pd.DataFrame(
        {
            "round": rounds,
            "test_acc": 0.5,
            "aux_loss": before,
            "aux_loss_after": after,
            "calibrated": [int(r in fired) for r in rounds],
        }
    )


def test_only_runs_that_log_calibration_count() -> None:
    assert has_calibration(metrics([2]))
    assert not has_calibration(pd.DataFrame({"round": [1], "test_acc": [0.5]}))


def test_figure_has_a_panel_per_partition_and_a_marker_per_pass(tmp_path: Path) -> None:
    runs = [
        CalibratedRun("digits", "dir0.5", "fedddpm", metrics([1, 2, 3, 4, 5, 6])),
        CalibratedRun("digits", "dir0.5", "fedddpm_plus", metrics([4])),
        CalibratedRun("digits", "nid2", "fedddpm_plus", metrics([3, 6])),
    ]
    fig = build_calibration_figure(runs, "aux CE")
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["digits / dir0.5", "digits / nid2"]
    markers = [sum(len(c.get_offsets()) for c in ax.collections) for ax in axes]
    assert markers == [6 + 1, 2]
    plot_calibration(runs, tmp_path / "cal.png", "aux CE")
    assert (tmp_path / "cal.png").stat().st_size > 1000 and (
        tmp_path / "cal.pdf"
    ).stat().st_size > 1000


def test_nothing_to_plot_is_an_error() -> None:
    with pytest.raises(ValueError, match="no calibrated runs"):
        build_calibration_figure([], "x")
