"""FedNH's prototype hyperparameters (no torch: the config checks read them).

The algorithm is :mod:`feddiff.fl.strategies.fednh`; the registry
(:mod:`feddiff.fl.strategies`) maps ``fednh`` to both.
"""

from __future__ import annotations

from dataclasses import dataclass

from feddiff.schema import setting


@dataclass(frozen=True)
class FedNHParams:
    """``smoothing`` is rho (prototype momentum); ``scale`` multiplies the cosine logits."""

    smoothing: float = setting(
        0.9, minimum=0, maximum=1, description="server prototype momentum rho"
    )
    scale: float = setting(30.0, exclusive_minimum=0, description="cosine-logit scale")
