"""When a run checkpoints: every ``checkpoint_every`` rounds and after the last one.

One rule for the classifier engine and the federated DDPM (both call it), so a resumed
run of either starts from the same rounds.
"""

from __future__ import annotations

from feddiff.fl.checkpoint import checkpoint_due


def _due(every: int, rounds: int) -> list[int]:
    return [r for r in range(1, rounds + 1) if checkpoint_due(r, every, rounds)]


def test_every_k_rounds_and_the_last() -> None:
    assert _due(3, 10) == [3, 6, 9, 10]
    assert _due(5, 10) == [5, 10]  # the last round is not written twice
    assert _due(1, 4) == [1, 2, 3, 4]
    assert _due(50, 20) == [20]
