"""FedAvgM's server-momentum hyperparameters (no torch: the config checks read them).

The algorithm is :mod:`feddiff.fl.strategies.fedavgm`; the registry
(:mod:`feddiff.fl.strategies`) maps ``fedavgm`` to both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FedAvgMParams:
    """``server_momentum`` (beta) = 0.9, a value in Hsu et al.'s (2019) sweep; ``server_lr``
    = 1 applies the velocity as the paper's update ``w <- w - v`` does."""

    server_momentum: float = 0.9
    server_lr: float = 1.0

    def check(self) -> None:
        if not 0 <= self.server_momentum < 1:
            raise ValueError(
                f"method.server_momentum must be in [0, 1), got {self.server_momentum}"
            )
        if not self.server_lr > 0:
            raise ValueError(f"method.server_lr must be > 0, got {self.server_lr}")
