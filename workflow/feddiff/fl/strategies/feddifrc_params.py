"""FedDifRC's hyperparameters (no torch: the config checks read them).

The algorithm is :mod:`feddiff.fl.strategies.feddifrc`; the registry
(:mod:`feddiff.fl.strategies`) maps ``feddifrc`` to both.
"""

from __future__ import annotations

from dataclasses import dataclass

NDCR_KINDS = ("l2", "kl")
TDCL_KINDS = ("paper", "cosine", "reference")
PROJECTIONS = ("auto", "linear")


@dataclass(frozen=True)
class FedDifRCParams:
    """Loss weights (paper: 1 and 1), InfoNCE temperature, TDCL and NDCR forms, ablation switches.

    ``features`` names an entry of the config's ``features`` section; runs receive it
    resolved to that entry's cached ``.h5`` for the run's dataset.
    """

    features: str | None = None
    lambda_tdcl: float = 1.0
    lambda_ndcr: float = 1.0
    temperature: float = 0.04
    tdcl: str = "paper"
    ndcr: str = "l2"
    layers: str = "all"
    projection: str = "auto"
    self_supervised: bool = False

    def check(self) -> None:
        if not self.features:
            raise ValueError(
                "method.features is required: the name of an entry of the config's features section"
            )
        for key in ("lambda_tdcl", "lambda_ndcr"):
            if not getattr(self, key) >= 0:
                raise ValueError(f"method.{key} must be >= 0, got {getattr(self, key)}")
        if not self.temperature > 0:
            raise ValueError(f"method.temperature must be > 0, got {self.temperature}")
        if self.tdcl not in TDCL_KINDS:
            raise ValueError(f"method.tdcl must be one of {list(TDCL_KINDS)}, got {self.tdcl!r}")
        if self.ndcr not in NDCR_KINDS:
            raise ValueError(f"method.ndcr must be one of {list(NDCR_KINDS)}, got {self.ndcr!r}")
        if self.projection not in PROJECTIONS:
            raise ValueError(
                f"method.projection must be one of {list(PROJECTIONS)}, got {self.projection!r}"
            )
        self.layer_indices()

    def layer_indices(self) -> list[int] | None:
        """``None`` for all layers, else the chosen block positions."""
        if self.layers == "all":
            return None
        try:
            chosen = [int(p) for p in str(self.layers).split("+")]
        except ValueError:
            chosen = []
        if not chosen or min(chosen) < 0 or len(set(chosen)) != len(chosen):
            raise ValueError(
                f"method.layers must be 'all' or distinct block positions like '0+2', got {self.layers!r}"
            )
        return chosen
