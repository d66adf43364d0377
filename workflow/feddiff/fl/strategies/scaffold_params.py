"""SCAFFOLD's hyperparameter (no torch: the config checks read them).

The algorithm is :mod:`feddiff.fl.strategies.scaffold`; the registry
(:mod:`feddiff.fl.strategies`) maps ``scaffold`` to both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScaffoldParams:
    """``global_lr`` is the server step size eta_g; 1 makes the model a plain mean."""

    global_lr: float = 1.0

    def check(self) -> None:
        if self.global_lr <= 0:
            raise ValueError(f"method.global_lr must be > 0, got {self.global_lr}")
