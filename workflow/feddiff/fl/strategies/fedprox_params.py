"""FedProx's hyperparameter (no torch: the config checks read them).

The algorithm is :mod:`feddiff.fl.strategies.fedprox`; the registry
(:mod:`feddiff.fl.strategies`) maps ``fedprox`` to both.
"""

from __future__ import annotations

from dataclasses import dataclass

from feddiff.schema import setting


@dataclass(frozen=True)
class FedProxParams:
    """``mu``: proximal weight; 0.01 is among the values Li et al. (2020) tune over."""

    mu: float = setting(0.01, minimum=0, description="proximal weight (mu/2)||w - w_global||^2")
