"""Settings of a federated DDPM run: the ``diffusion`` block of the config, minus its grid.

Frozen dataclasses mirror the schema (a test keeps their defaults in sync), so the
package runs the same whether settings come from a validated config, a run.json or a
test. ``to_dict`` gives the fully resolved settings that the output-path hash covers:
two runs that differ in any setting, even one left at its default in one config and
spelled out in another, hash alike only when they really are alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from feddiff.utils.dataclass_config import build_settings

MODES = ("full", "usplit", "udec", "ulatdec")
SAMPLERS = ("ddpm", "ddim")
FID_BACKENDS = ("auto", "classifier")


_build = build_settings


@dataclass(frozen=True)
class UNetSettings:
    """A diffusers ``UNet2DModel``: one down and one up block per entry of ``block_out_channels``.

    Each level but the last halves the resolution, so the image side must be divisible
    by ``2 ** (levels - 1)`` (8x8 digits: up to 4 levels).
    """

    block_out_channels: tuple[int, ...] = (32, 64)
    layers_per_block: int = 1
    attention: tuple[bool, ...] = (False, False)
    mid_attention: bool = True
    attention_head_dim: int = 8
    norm_num_groups: int = 8
    class_conditional: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "block_out_channels", tuple(int(c) for c in self.block_out_channels)
        )
        object.__setattr__(self, "attention", tuple(bool(a) for a in self.attention))

    def check(self) -> None:
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

    num_train_timesteps: int = 1000
    beta_start: float = 1.0e-4
    beta_end: float = 0.02

    def check(self) -> None:
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError(
                "diffusion.scheduler: need 0 < beta_start < beta_end < 1, got "
                f"{self.beta_start}, {self.beta_end}"
            )


@dataclass(frozen=True)
class DiffusionTrainSettings:
    """Local Adam (a fresh optimizer per client and round, as in the classifier runs)."""

    rounds: int = 20
    clients_per_round: int = 5
    local_epochs: int = 1
    batch_size: int = 64
    lr: float = 1.0e-4
    label_dropout: float = 0.1
    device: str = "auto"
    checkpoint_every: int = 1
    fid_every: int = 0

    def check(self) -> None:
        for name in (
            "rounds",
            "clients_per_round",
            "local_epochs",
            "batch_size",
            "checkpoint_every",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(
                    f"diffusion.training.{name} must be >= 1, got {getattr(self, name)}"
                )
        if self.lr <= 0:
            raise ValueError(f"diffusion.training.lr must be > 0, got {self.lr}")
        if not 0 <= self.label_dropout < 1:
            raise ValueError(
                f"diffusion.training.label_dropout must be in [0, 1), got {self.label_dropout}"
            )
        if self.fid_every < 0:
            raise ValueError(f"diffusion.training.fid_every must be >= 0, got {self.fid_every}")


@dataclass(frozen=True)
class SamplingSettings:
    """Generation for FID and the sample grids: DDPM ancestral over all T steps by default
    (fewer ``steps`` stride it), DDIM as the cheap option."""

    sampler: str = "ddpm"
    steps: int = 1000
    eta: float = 0.0
    num_samples: int = 1000
    batch_size: int = 500
    guidance_scale: float = 1.0
    grid_per_class: int = 8

    def check(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(
                f"diffusion.sampling.sampler must be one of {SAMPLERS}, got {self.sampler!r}"
            )
        for name in ("steps", "num_samples", "batch_size", "grid_per_class"):
            if int(getattr(self, name)) < 1:
                raise ValueError(
                    f"diffusion.sampling.{name} must be >= 1, got {getattr(self, name)}"
                )
        if self.num_samples < 2:
            raise ValueError(
                "diffusion.sampling.num_samples must be >= 2 (a covariance needs two samples)"
            )


@dataclass(frozen=True)
class ClassifierSettings:
    """The feature network of the offline FID fallback, trained centrally on the train split."""

    model: str = "cnn"
    width: float = 1.0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5.0e-4
    seed: int = 0
    device: str = "auto"


@dataclass(frozen=True)
class FIDSettings:
    """``auto``: Inception FID through torch-fidelity when it imports and its weights are
    on disk, else the classifier-feature Fréchet distance; ``classifier``: always the latter."""

    backend: str = "auto"
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)

    def check(self) -> None:
        if self.backend not in FID_BACKENDS:
            raise ValueError(
                f"diffusion.fid.backend must be one of {FID_BACKENDS}, got {self.backend!r}"
            )


@dataclass(frozen=True)
class DiffusionSettings:
    """Everything of the ``diffusion`` block that determines a run's results."""

    unet: UNetSettings = field(default_factory=UNetSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    training: DiffusionTrainSettings = field(default_factory=DiffusionTrainSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    fid: FIDSettings = field(default_factory=FIDSettings)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffusionSettings:
        """Build and check; ``grid`` (the run grid) and ``calibration`` (FedDDPM's server
        step, per run) are not settings of the model's training and are ignored, nor is
        ``paper`` (the comparison table the FID table is set beside)."""
        data = {k: v for k, v in dict(data).items() if k not in ("grid", "calibration", "paper")}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"diffusion: unknown key(s) {unknown}; known keys are {sorted(known)}")
        fid = dict(data.get("fid") or {})
        fid["classifier"] = _build(
            ClassifierSettings, fid.get("classifier"), "diffusion.fid.classifier"
        )
        settings = cls(
            unet=_build(UNetSettings, data.get("unet"), "diffusion.unet"),
            scheduler=_build(SchedulerSettings, data.get("scheduler"), "diffusion.scheduler"),
            training=_build(DiffusionTrainSettings, data.get("training"), "diffusion.training"),
            sampling=_build(SamplingSettings, data.get("sampling"), "diffusion.sampling"),
            fid=_build(FIDSettings, fid, "diffusion.fid"),
        )
        for part in (
            settings.unet,
            settings.scheduler,
            settings.training,
            settings.sampling,
            settings.fid,
        ):
            part.check()
        return settings

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["unet"]["block_out_channels"] = list(self.unet.block_out_channels)
        out["unet"]["attention"] = list(self.unet.attention)
        return out
