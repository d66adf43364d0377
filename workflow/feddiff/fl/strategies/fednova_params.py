"""FedNova's hyperparameters (no torch: the config checks read them).

The algorithm is :mod:`feddiff.fl.strategies.fednova`; the registry
(:mod:`feddiff.fl.strategies`) maps ``fednova`` to both.
"""

from __future__ import annotations

from dataclasses import dataclass

from feddiff.schema import setting


@dataclass(frozen=True)
class FedNovaParams:
    """``gmf``: global (server) momentum factor; 0, the reference's default, is plain FedNova."""

    gmf: float = setting(0.0, minimum=0, exclusive_maximum=1, description="global momentum factor")
