"""SCAFFOLD's hyperparameter (no torch: the config checks read them).

The algorithm is :mod:`feddiff.fl.strategies.scaffold`; the registry
(:mod:`feddiff.fl.strategies`) maps ``scaffold`` to both.
"""

from __future__ import annotations

from dataclasses import dataclass

from feddiff.schema import setting


@dataclass(frozen=True)
class ScaffoldParams:
    """``global_lr`` is the server step size eta_g; 1 makes the model a plain mean."""

    global_lr: float = setting(1.0, exclusive_minimum=0, description="server step size eta_g")
