"""Settings of one auxiliary-data entry (the ``auxiliary`` config section).

A frozen dataclass mirrors the schema (a test keeps the defaults in sync). The local
DDPMs use the ``diffusion`` section's UNet and noise schedule, so the resolved
settings carry those too and the output path's hash covers them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from feddiff.utils.dataclass_config import build_settings

GENERATORS = ("local_ddpm", "stable_diffusion")
SAMPLERS = ("ddpm", "ddim")


@dataclass(frozen=True)
class AuxiliarySettings:
    """How the server's auxiliary set is made.

    ``local_ddpm`` (the FedDDPM paper): before FL every client trains a
    class-conditional DDPM on its own data for ``local_epochs`` epochs (Adam ``lr``,
    label dropout for guidance) and uploads it once; the server samples each model
    for the classes its client holds. ``stable_diffusion``: the text-to-image model
    ``model`` draws ``prompt_template`` per class with the same class mix.
    """

    generator: str = "local_ddpm"
    size: int = 1000
    # local DDPMs
    local_epochs: int = 50
    batch_size: int = 64
    lr: float = 1.0e-4
    label_dropout: float = 0.1
    sampler: str = "ddim"
    steps: int = 50
    guidance_scale: float = 1.0
    sample_batch_size: int = 500
    device: str = "auto"
    # Stable Diffusion
    model: str | None = None
    prompt_template: str = "a photo of a {class}"
    sd_steps: int = 25
    sd_guidance_scale: float = 7.5
    sd_resolution: int | None = None
    dtype: str = "auto"

    def check(self, where: str = "auxiliary") -> None:
        if self.generator not in GENERATORS:
            raise ValueError(
                f"{where}.generator must be one of {GENERATORS}, got {self.generator!r}"
            )
        if self.sampler not in SAMPLERS:
            raise ValueError(f"{where}.sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        for name in (
            "size",
            "local_epochs",
            "batch_size",
            "steps",
            "sample_batch_size",
            "sd_steps",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{where}.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"{where}.lr must be > 0, got {self.lr}")
        if not 0 <= self.label_dropout < 1:
            raise ValueError(f"{where}.label_dropout must be in [0, 1), got {self.label_dropout}")
        if self.generator == "stable_diffusion":
            if not self.model:
                raise ValueError(
                    f"{where}.model is required for generator 'stable_diffusion' "
                    "(a Hugging Face id such as stabilityai/stable-diffusion-2-1, or a local folder)"
                )
            if "{class}" not in self.prompt_template:
                raise ValueError(
                    f"{where}.prompt_template must contain '{{class}}', got {self.prompt_template!r}"
                )
        elif self.model is not None:
            raise ValueError(f"{where}.model is only used by generator 'stable_diffusion'")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "auxiliary") -> AuxiliarySettings:
        settings = build_settings(cls, data, where)
        settings.check(where)
        return settings

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    #: Settings that never change the images (left out of the output path's hash).
    NOT_HASHED = ("sample_batch_size", "device")
