"""Settings of a federated DDPM run: the ``diffusion`` block of the config, minus its grid.

Frozen dataclasses declare every key once (type, range, default, description:
:mod:`feddiff.schema`); the config schema's ``diffusion`` block is generated from them,
so the package runs the same whether settings come from a validated config, a run.json
or a test. ``to_dict`` gives the fully resolved settings that the output-path hash covers:
two runs that differ in any setting, even one left at its default in one config and
spelled out in another, hash alike only when they really are alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from feddiff.fl.settings import DEVICE_PATTERN, MODELS
from feddiff.schema import build, setting

MODES = ("full", "usplit", "udec", "ulatdec")
SAMPLERS = ("ddpm", "ddim")
FID_BACKENDS = ("auto", "classifier")


@dataclass(frozen=True)
class UNetSettings:
    """A diffusers ``UNet2DModel``: one down and one up block per entry of ``block_out_channels``.

    Each level but the last halves the resolution, so the image side must be divisible
    by ``2 ** (levels - 1)`` (8x8 digits: up to 4 levels).
    """

    block_out_channels: tuple[int, ...] = setting(
        (32, 64),
        min_items=1,
        items={"minimum": 1},
        description="one down and one up block per level; each level but the last halves the side",
    )
    layers_per_block: int = setting(1, minimum=1)
    attention: tuple[bool, ...] = setting(
        (False, False),
        min_items=1,
        description="attention blocks per level (one entry per block_out_channels entry)",
    )
    mid_attention: bool = True
    attention_head_dim: int = setting(8, minimum=1)
    norm_num_groups: int = setting(
        8, minimum=1, description="must divide every block_out_channels entry"
    )
    class_conditional: bool = setting(
        True, description="num_class_embeds = C + 1; the extra index is the null class"
    )

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "block_out_channels", tuple(int(c) for c in self.block_out_channels)
        )
        object.__setattr__(self, "attention", tuple(bool(a) for a in self.attention))

    def check(self) -> None:
        """Cross-key checks: one attention flag per level, groups dividing every width."""
        if len(self.attention) != len(self.block_out_channels):
            raise ValueError(
                f"diffusion.unet.attention has {len(self.attention)} entries but "
                f"block_out_channels has {len(self.block_out_channels)}; give one per level"
            )
        for c in self.block_out_channels:
            if c % self.norm_num_groups:
                raise ValueError(
                    f"diffusion.unet.block_out_channels: {c} is not divisible by "
                    f"norm_num_groups ({self.norm_num_groups})"
                )


@dataclass(frozen=True)
class SchedulerSettings:
    """DDPM noise schedule: linear betas from ``beta_start`` to ``beta_end`` over T steps."""

    num_train_timesteps: int = setting(1000, minimum=2)
    beta_start: float = setting(1.0e-4, exclusive_minimum=0, exclusive_maximum=1)
    beta_end: float = setting(0.02, exclusive_minimum=0, exclusive_maximum=1)

    def check(self) -> None:
        """Cross-key check: the betas increase."""
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError(
                "diffusion.scheduler: need 0 < beta_start < beta_end < 1, got "
                f"{self.beta_start}, {self.beta_end}"
            )


@dataclass(frozen=True)
class DiffusionTrainSettings:
    """Local Adam (a fresh optimizer per client and round, as in the classifier runs)."""

    rounds: int = setting(20, minimum=1)
    clients_per_round: int = setting(5, minimum=1)
    local_epochs: int = setting(1, minimum=1)
    batch_size: int = setting(64, minimum=2)
    lr: float = setting(
        1.0e-4, exclusive_minimum=0, description="Adam, a fresh optimizer per client and round"
    )
    label_dropout: float = setting(
        0.1,
        minimum=0,
        exclusive_maximum=1,
        description="probability a label is replaced by the null class",
    )
    device: str = setting("auto", pattern=DEVICE_PATTERN)
    checkpoint_every: int = setting(1, minimum=1)
    fid_every: int = setting(
        0, minimum=0, description="also score FID every k rounds (0: only after the last round)"
    )


@dataclass(frozen=True)
class SamplingSettings:
    """Generation for FID and the sample grids: DDPM ancestral over all T steps by default
    (fewer ``steps`` stride it), DDIM as the cheap option."""

    sampler: str = setting(
        "ddpm",
        enum=SAMPLERS,
        description="ddpm: ancestral (strided when steps < T); ddim: deterministic with eta 0",
    )
    steps: int = setting(
        1000, minimum=1, description="denoising steps (at most num_train_timesteps)"
    )
    eta: float = setting(0.0, minimum=0, description="DDIM only")
    num_samples: int = setting(
        1000,
        minimum=2,
        description="generated samples per model for FID (a covariance needs two)",
    )
    batch_size: int = setting(500, minimum=1)
    guidance_scale: float = setting(
        1.0,
        minimum=0,
        description="classifier-free guidance weight (1: plain conditional sampling)",
    )
    grid_per_class: int = setting(8, minimum=1, description="samples per class in each PNG grid")


@dataclass(frozen=True)
class ClassifierSettings:
    """The feature network of the offline FID fallback, trained centrally on the train split."""

    model: str = setting("cnn", enum=MODELS)
    width: float = setting(1.0, exclusive_minimum=0)
    epochs: int = setting(10, minimum=1)
    batch_size: int = setting(64, minimum=2)
    lr: float = setting(0.05, exclusive_minimum=0)
    momentum: float = setting(0.9, minimum=0, exclusive_maximum=1)
    weight_decay: float = setting(5.0e-4, minimum=0)
    seed: int = setting(0, minimum=0)
    device: str = setting("auto", pattern=DEVICE_PATTERN)


@dataclass(frozen=True)
class FIDSettings:
    """``auto``: Inception FID through torch-fidelity when it imports and its weights are
    on disk, else the classifier-feature Fréchet distance; ``classifier``: always the latter."""

    backend: str = setting(
        "auto",
        enum=FID_BACKENDS,
        description=(
            "auto: torch-fidelity Inception FID when it imports and its weights are already on "
            "disk, else the classifier-feature Frechet distance (labelled as such)"
        ),
    )
    classifier: ClassifierSettings = setting(
        default_factory=ClassifierSettings,
        description=(
            "trained centrally on the real train split, cached under results/fid_classifier/"
        ),
    )


@dataclass(frozen=True)
class DiffusionSettings:
    """Everything of the ``diffusion`` block that determines a run's results."""

    unet: UNetSettings = setting(default_factory=UNetSettings)
    scheduler: SchedulerSettings = setting(default_factory=SchedulerSettings)
    training: DiffusionTrainSettings = setting(default_factory=DiffusionTrainSettings)
    sampling: SamplingSettings = setting(default_factory=SamplingSettings)
    fid: FIDSettings = setting(default_factory=FIDSettings)

    #: Keys of the ``diffusion`` block that are not settings of the model's training:
    #: ``grid`` (the run grid), ``calibration`` (FedDDPM's server step, per run) and
    #: ``paper`` (the comparison table the FID table is set beside).
    NOT_SETTINGS = ("grid", "calibration", "paper")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffusionSettings:
        """Build and check, ignoring :attr:`NOT_SETTINGS`."""
        data = {k: v for k, v in dict(data).items() if k not in cls.NOT_SETTINGS}
        settings = build(cls, data, "diffusion")
        settings.unet.check()
        settings.scheduler.check()
        return settings

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["unet"]["block_out_channels"] = list(self.unet.block_out_channels)
        out["unet"]["attention"] = list(self.unet.attention)
        return out
