"""FedProx's hyperparameter (no torch: the config checks read them).

The algorithm is :mod:`feddiff.fl.strategies.fedprox`; the registry
(:mod:`feddiff.fl.strategies`) maps ``fedprox`` to both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FedProxParams:
    """``mu``: proximal weight; 0.01 is among the values Li et al. (2020) tune over."""

    mu: float = 0.01

    def check(self) -> None:
        if not self.mu >= 0:  # also rejects NaN
            raise ValueError(f"method.mu must be >= 0, got {self.mu}")
