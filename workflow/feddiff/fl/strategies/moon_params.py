"""MOON's hyperparameters (no torch: the config checks read them).

The algorithm is :mod:`feddiff.fl.strategies.moon`; the registry
(:mod:`feddiff.fl.strategies`) maps ``moon`` to both.
"""

from __future__ import annotations

from dataclasses import dataclass

from feddiff.schema import setting


@dataclass(frozen=True)
class MoonParams:
    """MOON's hyperparameters: loss weight ``mu``, contrastive ``temperature``, head width."""

    mu: float = setting(1.0, minimum=0, description="weight of the model-contrastive loss")
    temperature: float = setting(0.5, exclusive_minimum=0)
    projection_dim: int = setting(256, minimum=1)
