"""Settings of one diffusion-feature extraction: an entry of the config's ``features`` section.

A frozen dataclass declares every key once (:mod:`feddiff.schema`; the config schema's
``features_entry`` is generated from it), so the extractor behaves the same whether its
settings come from a validated config, the command line or a test.
:meth:`FeatureSettings.identity` is the part that determines the cached vectors; it is
stored in the HDF5 file and compared on every reuse, so a cache made with other settings
(or another model or dataset) is rebuilt, never used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from feddiff.fl.settings import DEVICE_PATTERN
from feddiff.schema import build, check_values, setting

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

    backbone: str = setting("stable_diffusion", enum=BACKBONES)
    model: str | None = setting(
        None,
        min_length=1,
        fill=False,
        description=(
            "stable_diffusion: a Hugging Face id (default stabilityai/stable-diffusion-2-1) or "
            "a local diffusers folder; ddpm: a folder with unet/ and scheduler/. Offline "
            "(HF_HUB_OFFLINE=1) an id must already be in the Hugging Face cache."
        ),
    )
    timestep: int = setting(300, minimum=0, description="noise level t the UNet sees")
    blocks: tuple[int, ...] = setting(
        (1, 2, 3),
        min_items=1,
        unique_items=True,
        items={"minimum": 0},
        description="decoder up-block indices (Stable Diffusion's layers 2-4 are 1, 2, 3)",
    )
    dims: tuple[int, ...] = setting(
        (256, 128, 128), min_items=1, items={"minimum": 1}, description="PCA width per block"
    )
    pooling: str = setting(
        "mean",
        enum=POOLINGS,
        description=(
            "mean: global average pooling; norm: the reference code's L2 norm over positions"
        ),
    )
    mode: str = setting("supervised", enum=MODES)
    prompt_template: str = setting("a photo of a {class}", pattern="[{]class[}]")
    denoise_prompt: str = setting(
        "", description="the denoising representation's prompt (the reference's null prompt)"
    )
    positive_prompt: str = "a photo of a similar object"
    self_supervised_denoise_prompt: str = "a photo of a visual object"
    vocabulary: str | None = setting(
        None,
        fill=False,
        description=(
            "self-supervised negatives: a word list (default: the package's vocabulary.txt)"
        ),
    )
    num_negatives: int = setting(10, minimum=1)
    image_size: int | None = setting(
        None,
        minimum=1,
        fill=False,
        description=(
            "side the images are resized to (default: the DDPM's sample size; 224 for "
            "Stable Diffusion)"
        ),
    )
    ensemble: int = setting(1, minimum=1, description="noise draws averaged per image")
    pca_fit_images: int = setting(
        2000, minimum=0, description="training images the PCA is fitted on (0: all)"
    )
    seed: int = setting(0, minimum=0)
    batch_size: int = setting(16, minimum=1, description="images per step")
    unet_batch_size: int = setting(
        128, minimum=1, description="UNet rows (image x condition x draw) per call"
    )
    device: str = setting("auto", pattern=DEVICE_PATTERN)
    dtype: str = setting("auto", enum=DTYPES, description="auto: float16 on CUDA, float32 on CPU")

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(int(b) for b in self.blocks))
        object.__setattr__(self, "dims", tuple(int(d) for d in self.dims))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "features") -> FeatureSettings:
        """Build and check, naming a bad or unknown key by its config path."""
        settings = build(cls, data, where)
        settings.check(where)
        return settings

    def check(self, where: str = "features") -> None:
        """The declared ranges (also for a direct construction), then what they cannot
        say: one PCA width per block, and backbone-specific needs."""
        check_values(self, where)
        if len(self.dims) != len(self.blocks):
            raise ValueError(
                f"{where}.dims has {len(self.dims)} entries but blocks has {len(self.blocks)}; "
                "give one per block"
            )
        if self.backbone == "ddpm" and self.mode == "self_supervised":
            raise ValueError(
                f"{where}.mode: self_supervised needs text prompts, i.e. backbone stable_diffusion "
                "(a class-conditional DDPM has no prompt for 'a similar object')"
            )
        if self.backbone == "ddpm" and not self.model:
            raise ValueError(
                f"{where}.model: the ddpm backbone needs a model folder "
                "(or `diffusion:` in the config)"
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
