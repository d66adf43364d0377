"""FedAvgM's server-momentum hyperparameters (no torch: the config checks read them).

The algorithm is :mod:`feddiff.fl.strategies.fedavgm`; the registry
(:mod:`feddiff.fl.strategies`) maps ``fedavgm`` to both.
"""

from __future__ import annotations

from dataclasses import dataclass

from feddiff.schema import setting


@dataclass(frozen=True)
class FedAvgMParams:
    """``server_momentum`` (beta) = 0.9, a value in Hsu et al.'s (2019) sweep; ``server_lr``
    = 1 applies the velocity as the paper's update ``w <- w - v`` does."""

    server_momentum: float = setting(0.9, minimum=0, exclusive_maximum=1)
    server_lr: float = setting(1.0, exclusive_minimum=0)
