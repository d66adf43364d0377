"""FedDifRC's hyperparameters (no torch: the config checks read them).

The algorithm is :mod:`feddiff.fl.strategies.feddifrc`; the registry
(:mod:`feddiff.fl.strategies`) maps ``feddifrc`` to both.
"""

from __future__ import annotations

from dataclasses import dataclass

from feddiff.schema import setting

NDCR_KINDS = ("l2", "kl")
TDCL_KINDS = ("paper", "cosine", "reference")
PROJECTIONS = ("auto", "linear")


@dataclass(frozen=True)
class FedDifRCParams:
    """Loss weights (paper: 1 and 1), InfoNCE temperature, TDCL and NDCR forms, ablation switches.

    ``features`` names an entry of the config's ``features`` section; runs receive it
    resolved to that entry's cached ``.h5`` for the run's dataset.
    """

    features: str = setting(
        min_length=1,
        description="name of an entry of the features section (cached diffusion representations)",
    )
    lambda_tdcl: float = setting(
        1.0,
        minimum=0,
        description="weight of text-driven diffusion contrastive learning (0: NDCR-only ablation)",
    )
    lambda_ndcr: float = setting(
        1.0,
        minimum=0,
        description="weight of noise-driven consistency regularisation (0: TDCL-only ablation)",
    )
    temperature: float = setting(
        0.04, exclusive_minimum=0, description="InfoNCE temperature of TDCL"
    )
    tdcl: str = setting(
        "paper",
        enum=TDCL_KINDS,
        description=(
            "paper: InfoNCE of cosine normalised by U, the batch's mean cosine distance to each "
            "representation (our reading); cosine: plain cosine / tau per sample; reference: "
            "the reference code's batch-pooled InfoNCE"
        ),
    )
    ndcr: str = setting(
        "l2",
        enum=NDCR_KINDS,
        description=(
            "l2: the paper's L2 (of unit vectors); kl: the reference code's KL of softmaxes"
        ),
    )
    layers: str = setting(
        "all",
        pattern="^(all|[0-9]+([+][0-9]+)*)$",
        description=(
            "decoder blocks used: all, or positions in features.blocks joined by '+', e.g. '0+2'"
        ),
    )
    projection: str = setting(
        "auto",
        enum=PROJECTIONS,
        description=(
            "auto: no head when the model's feature width equals the representation's "
            "(the reference), else one linear layer"
        ),
    )
    self_supervised: bool = setting(
        False, description="no CE on the encoder; needs features of mode self_supervised"
    )

    def check(self) -> None:
        """Cross-value check the schema cannot express: ``layers`` names distinct blocks."""
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
                "method.layers must be 'all' or distinct block positions like '0+2', "
                f"got {self.layers!r}"
            )
        return chosen
