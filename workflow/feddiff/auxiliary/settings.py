"""Settings of one auxiliary-data entry (the ``auxiliary`` config section).

A frozen dataclass declares every key once (:mod:`feddiff.schema`; the config schema's
``auxiliary_entry`` is generated from it). The local
DDPMs use the ``diffusion`` section's UNet and noise schedule, so the resolved
settings carry those too and the output path's hash covers them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from feddiff.fl.settings import DEVICE_PATTERN
from feddiff.schema import build, check_values, setting

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

    generator: str = setting(
        "local_ddpm",
        enum=GENERATORS,
        description=(
            "local_ddpm: each client's class-conditional DDPM, sampled for its own classes; "
            "stable_diffusion: text-to-image 'a photo of a {class}'"
        ),
    )
    size: int = setting(
        1000,
        minimum=1,
        description=(
            "auxiliary images in total, split over clients and classes in proportion to the "
            "partition's counts"
        ),
    )
    # local DDPMs
    local_epochs: int = setting(
        50, minimum=1, description="local_ddpm: epochs each client trains its DDPM before FL"
    )
    batch_size: int = setting(64, minimum=1)
    lr: float = setting(1.0e-4, exclusive_minimum=0, description="local_ddpm: Adam lr")
    label_dropout: float = setting(0.1, minimum=0, exclusive_maximum=1)
    sampler: str = setting("ddim", enum=SAMPLERS)
    steps: int = setting(
        50, minimum=1, description="denoising steps when sampling the client models"
    )
    guidance_scale: float = setting(1.0, minimum=0)
    sample_batch_size: int = setting(500, minimum=1)
    device: str = setting("auto", pattern=DEVICE_PATTERN)
    # Stable Diffusion
    model: str | None = setting(
        None,
        min_length=1,
        fill=False,
        description=(
            "stable_diffusion: a Hugging Face id (e.g. stabilityai/stable-diffusion-2-1) or a "
            "local diffusers folder"
        ),
    )
    prompt_template: str = setting("a photo of a {class}", pattern="[{]class[}]")
    sd_steps: int = setting(25, minimum=1)
    sd_guidance_scale: float = setting(7.5, minimum=0)
    sd_resolution: int | None = setting(
        None,
        minimum=8,
        fill=False,
        description=(
            "stable_diffusion: generation side (default: the model's); images are resized to "
            "the dataset's"
        ),
    )
    dtype: str = setting("auto", enum=("auto", "float32", "float16", "bfloat16"))

    def check(self, where: str = "auxiliary") -> None:
        """The declared ranges (also for a direct construction), then the cross-key
        rule: ``model`` is required by, and only by, ``stable_diffusion``."""
        check_values(self, where)
        if self.generator == "stable_diffusion":
            if not self.model:
                raise ValueError(
                    f"{where}.model is required for generator 'stable_diffusion' (a Hugging "
                    "Face id such as stabilityai/stable-diffusion-2-1, or a local folder)"
                )
        elif self.model is not None:
            raise ValueError(f"{where}.model is only used by generator 'stable_diffusion'")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "auxiliary") -> AuxiliarySettings:
        """Build and check, naming a bad or unknown key by its config path."""
        settings = build(cls, data, where)
        settings.check(where)
        return settings

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    #: Settings that never change the images (left out of the output path's hash).
    NOT_HASHED = ("sample_batch_size", "device")
