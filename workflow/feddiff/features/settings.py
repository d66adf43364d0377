"""Settings of one diffusion-feature extraction: an entry of the config's ``features`` section.

A frozen dataclass mirrors the schema (a test keeps their defaults in sync), so the
extractor behaves the same whether its settings come from a validated config, the
command line or a test. :meth:`FeatureSettings.identity` is the part that determines
the cached vectors; it is stored in the HDF5 file and compared on every reuse, so a
cache made with other settings (or another model or dataset) is rebuilt, never used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from feddiff.utils.dataclass_config import build_settings

BACKBONES = ("stable_diffusion", "ddpm")
MODES = ("supervised", "self_supervised")
POOLINGS = ("mean", "norm")
DTYPES = ("auto", "float32", "float16", "bfloat16")
#: The reference code's model (FedDifRC, ``model/diffu_feature.py``).
DEFAULT_SD_MODEL = "stabilityai/stable-diffusion-2-1"
#: The reference code's image side for Stable Diffusion (``--diffu_size``).
DEFAULT_SD_IMAGE_SIZE = 224


@dataclass(frozen=True)
class FeatureSettings:
    """How diffusion representations are extracted and reduced.

    ``blocks`` index the UNet's decoder up-blocks (diffusers' ``up_blocks``); the
    paper's "layers 2-4" of Stable Diffusion are indices 1, 2, 3. ``dims`` is the PCA
    width kept per block. ``model`` is a Hugging Face id or a local folder
    (``stable_diffusion``: a diffusers pipeline folder; ``ddpm``: a folder with
    ``unet/`` and ``scheduler/``, e.g. a federated DDPM run's ``model/``). ``pooling``:
    ``mean`` (signed) or the reference's ``norm`` (non-negative), which a post-ReLU
    embedding with no projection head can match; the paper configs use ``norm`` (see
    :func:`feddiff.features.pca.reduce_maps`).
    """

    backbone: str = "stable_diffusion"
    model: str | None = None
    timestep: int = 300
    blocks: tuple[int, ...] = (1, 2, 3)
    dims: tuple[int, ...] = (256, 128, 128)
    pooling: str = "mean"
    mode: str = "supervised"
    prompt_template: str = "a photo of a {class}"
    denoise_prompt: str = ""
    positive_prompt: str = "a photo of a similar object"
    self_supervised_denoise_prompt: str = "a photo of a visual object"
    vocabulary: str | None = None
    num_negatives: int = 10
    image_size: int | None = None
    ensemble: int = 1
    pca_fit_images: int = 2000
    seed: int = 0
    batch_size: int = 16
    unet_batch_size: int = 128
    device: str = "auto"
    dtype: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(int(b) for b in self.blocks))
        object.__setattr__(self, "dims", tuple(int(d) for d in self.dims))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "features") -> FeatureSettings:
        """Build and check, naming unknown keys by their config path."""
        settings = build_settings(cls, data, where)
        settings.check(where)
        return settings

    def check(self, where: str = "features") -> None:
        """Reject values the extractor cannot run with, naming the key."""
        choices = {"backbone": BACKBONES, "mode": MODES, "pooling": POOLINGS, "dtype": DTYPES}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(
                    f"{where}.{key} must be one of {list(allowed)}, got {getattr(self, key)!r}"
                )
        if not self.blocks:
            raise ValueError(f"{where}.blocks must name at least one decoder block")
        if len(set(self.blocks)) != len(self.blocks) or min(self.blocks) < 0:
            raise ValueError(
                f"{where}.blocks must be distinct indices >= 0, got {list(self.blocks)}"
            )
        if len(self.dims) != len(self.blocks):
            raise ValueError(
                f"{where}.dims has {len(self.dims)} entries but blocks has {len(self.blocks)}; give one per block"
            )
        if min(self.dims) < 1:
            raise ValueError(f"{where}.dims must be >= 1, got {list(self.dims)}")
        if self.timestep < 0:
            raise ValueError(f"{where}.timestep must be >= 0, got {self.timestep}")
        for key in ("ensemble", "batch_size", "unet_batch_size", "num_negatives"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{where}.{key} must be >= 1, got {getattr(self, key)}")
        if self.pca_fit_images < 0:
            raise ValueError(f"{where}.pca_fit_images must be >= 0 (0: every training image)")
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"{where}.image_size must be >= 1, got {self.image_size}")
        if "{class}" not in self.prompt_template:
            raise ValueError(
                f"{where}.prompt_template must contain '{{class}}' where the class name goes"
            )
        if self.backbone == "ddpm" and self.mode == "self_supervised":
            raise ValueError(
                f"{where}.mode: self_supervised needs text prompts, i.e. backbone stable_diffusion "
                "(a class-conditional DDPM has no prompt for 'a similar object')"
            )
        if self.backbone == "ddpm" and not self.model:
            raise ValueError(
                f"{where}.model: the ddpm backbone needs a model folder (or `diffusion:` in the config)"
            )

    @property
    def model_ref(self) -> str:
        """The model to load: ``model`` or, for Stable Diffusion, the reference code's."""
        return self.model or DEFAULT_SD_MODEL

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["blocks"] = list(self.blocks)
        out["dims"] = list(self.dims)
        return out

    def identity(self) -> dict[str, Any]:
        """Every setting that changes the vectors (not batch sizes or the device name).

        The model is named here by reference; the extractor adds the model's content
        fingerprint, the resolved image size, dtype and prompts, and the dataset's
        fingerprint before comparing with a cached file.
        """
        out = self.to_dict()
        for key in ("batch_size", "unet_batch_size", "device", "dtype", "model", "image_size"):
            out.pop(key)
        if self.mode == "supervised":
            for key in (
                "positive_prompt",
                "self_supervised_denoise_prompt",
                "vocabulary",
                "num_negatives",
            ):
                out.pop(key)
        else:  # negatives are "prompt_template" filled with vocabulary words
            out.pop("denoise_prompt")
        if self.backbone == "ddpm":  # the class label is the prompt
            for key in ("prompt_template", "denoise_prompt"):
                out.pop(key, None)
        return out
