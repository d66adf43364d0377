"""MOON's hyperparameters (no torch: the config checks read them).

The algorithm is :mod:`feddiff.fl.strategies.moon`; the registry
(:mod:`feddiff.fl.strategies`) maps ``moon`` to both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MoonParams:
    """MOON's hyperparameters: loss weight ``mu``, contrastive ``temperature``, head width."""

    mu: float = 1.0
    temperature: float = 0.5
    projection_dim: int = 256

    def check(self) -> None:
        if self.mu < 0:
            raise ValueError(f"method.mu must be >= 0, got {self.mu}")
        if self.temperature <= 0:
            raise ValueError(f"method.temperature must be > 0, got {self.temperature}")
        if self.projection_dim < 1:
            raise ValueError(f"method.projection_dim must be >= 1, got {self.projection_dim}")
