"""FedNH's prototype hyperparameters (no torch: the config checks read them).

The algorithm is :mod:`feddiff.fl.strategies.fednh`; the registry
(:mod:`feddiff.fl.strategies`) maps ``fednh`` to both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FedNHParams:
    """``smoothing`` is rho (prototype momentum); ``scale`` multiplies the cosine logits."""

    smoothing: float = 0.9
    scale: float = 30.0

    def check(self) -> None:
        if not 0.0 <= self.smoothing <= 1.0:
            raise ValueError(f"method.smoothing must be in [0, 1], got {self.smoothing}")
        if self.scale <= 0:
            raise ValueError(f"method.scale must be > 0, got {self.scale}")
