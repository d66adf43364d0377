"""FedNova's hyperparameters (no torch: the config checks read them).

The algorithm is :mod:`feddiff.fl.strategies.fednova`; the registry
(:mod:`feddiff.fl.strategies`) maps ``fednova`` to both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FedNovaParams:
    """``gmf``: global (server) momentum factor; 0, the reference's default, is plain FedNova."""

    gmf: float = 0.0

    def check(self) -> None:
        if not 0 <= self.gmf < 1:
            raise ValueError(f"method.gmf must be in [0, 1), got {self.gmf}")
