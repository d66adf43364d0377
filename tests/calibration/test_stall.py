"""FedDDPM+'s trigger on synthetic loss sequences: it fires only on a stall, then waits."""

from __future__ import annotations

import pytest

from feddiff.calibration import StallDetector


def fires(
    losses: list[float], window: int = 3, delta: float = 0.05, after: float | None = None
) -> list[int]:
    det = StallDetector(window, delta)
    out = []
    for loss in losses:
        hit = det.observe(loss)
        out.append(int(hit))
        if hit:
            det.reset(after if after is not None else loss)
    return out


def test_steady_progress_never_fires() -> None:
    assert fires([1.0 * 0.8**t for t in range(20)]) == [0] * 20


def test_fires_once_per_stall() -> None:
    # falls fast for 5 rounds, then flat: fires when the last 3 rounds gained < 5 %
    losses = [1.0, 0.8, 0.6, 0.45, 0.35, 0.34, 0.34, 0.34, 0.34, 0.34, 0.34, 0.34]
    got = fires(losses)
    # t=6: (L[3] - L[6]) / L[3] = (0.45 - 0.34) / 0.45 = 24 %; t=7: (0.35 - 0.34) / 0.35 = 2.9 % < 5
    # %
    assert got[:8] == [0] * 7 + [1]
    # history restarts at the corrected loss: the next stall needs window + 1 = 4 observations
    assert got[8:] == [0, 0, 1, 0]


def test_needs_window_plus_one_rounds() -> None:
    det = StallDetector(window=2, delta=0.5)
    assert [det.observe(1.0) for _ in range(3)] == [False, False, True]


def test_rising_loss_is_a_stall_and_state_round_trips() -> None:
    det = StallDetector(window=1, delta=0.0)
    det.observe(1.0)
    assert det.observe(1.1)
    clone = StallDetector(window=1, delta=0.0)
    clone.load_state_dict(det.state_dict())
    assert clone.history == det.history


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        StallDetector(0, 0.1)
