"""Loading a diffusion backbone and running it on images under a set of conditions.

Two backbones share one interface (:class:`Backbone`):

* ``stable_diffusion``: a diffusers Stable Diffusion folder (``vae/``, ``unet/``,
  ``text_encoder/``, ``tokenizer/``, ``scheduler/``), loaded component by component
  with diffusers'/transformers' own ``from_pretrained``. Images are VAE-encoded (the
  posterior mean, times the VAE's scaling factor), conditions are CLIP embeddings of
  text prompts.
* ``ddpm``: a class-conditional ``UNet2DModel`` (``num_class_embeds = C + 1``, the last
  index the null class) with its ``DDPMScheduler``, as the pipeline's federated DDPM
  saves them; images stay in pixel space, conditions are class labels.

A model reference is a local folder or a Hugging Face id. An id is looked up in the
local Hugging Face cache first; the network is tried only when ``HF_HUB_OFFLINE`` is
not set, so an offline run fails at once with an error naming the config key and the
alternatives instead of waiting on connection timeouts.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from feddiff.features.prompts import Conditions
from feddiff.features.settings import DEFAULT_SD_IMAGE_SIZE

SD_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
DDPM_PARTS = ("unet", "scheduler")
_DOWNLOAD_PATTERNS = ["model_index.json"] + [
    f"{part}/{pattern}" for part in SD_PARTS for pattern in ("*.json", "*.txt", "*.safetensors")
]


class ModelNotFoundError(FileNotFoundError):
    """The configured diffusion model is neither a local folder nor obtainable."""


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` as huggingface_hub reads it, but at call time (not import time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _alternatives(backbone: str) -> str:
    if backbone == "ddpm":
        return (
            "give a folder with unet/ and scheduler/ (e.g. a federated DDPM run's model/), "
            "or `diffusion:` to use the pipeline's own federated DDPM"
        )
    return (
        "give a local diffusers Stable Diffusion folder (e.g. one written by "
        "StableDiffusionPipeline.save_pretrained), download the model into the Hugging Face "
        "cache while online, or use `backbone: ddpm` with the pipeline's own federated DDPM"
    )


def resolve_model_dir(ref: str, backbone: str, key: str = "features.model") -> Path:
    """The local folder holding the model ``ref``; raises :class:`ModelNotFoundError`."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    looks_like_path = path.is_absolute() or ref.startswith((".", "~")) or ref.count("/") != 1
    if backbone == "ddpm" or looks_like_path:
        raise ModelNotFoundError(f"{key}: {ref!r} is not a folder; {_alternatives(backbone)}")
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(ref, local_files_only=True, allow_patterns=_DOWNLOAD_PATTERNS)
        )
    except Exception as exc:  # noqa: BLE001 - every failure means "not in the cache"
        cached_error = exc
    if hub_offline():
        raise ModelNotFoundError(
            f"{key}: {ref!r} is not a local folder nor in the Hugging Face cache, and "
            f"HF_HUB_OFFLINE is set ({type(cached_error).__name__}); {_alternatives(backbone)}"
        )
    try:
        return Path(snapshot_download(ref, allow_patterns=_DOWNLOAD_PATTERNS, etag_timeout=10))
    except Exception as exc:
        raise ModelNotFoundError(
            f"{key}: could not load {ref!r} from the Hugging Face Hub ({type(exc).__name__}: "
            f"{exc}); {_alternatives(backbone)}"
        ) from exc


def _file_digest(path: Path) -> str:
    """sha256 of a file; a Hugging Face cache blob is already named by its sha256."""
    real = path.resolve()
    if path.is_symlink() and real.parent.name == "blobs" and len(real.name) == 64:
        return real.name
    h = hashlib.sha256()
    with open(real, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_fingerprint(model_dir: Path, parts: Sequence[str]) -> str:
    """Content hash of the model's parts, so a retrained or replaced model invalidates caches."""
    h = hashlib.sha256(b"feddiff-model-v1\0")
    for part in parts:
        folder = model_dir / part
        if not folder.is_dir():
            raise ModelNotFoundError(f"{model_dir} has no {part}/ folder; expected {list(parts)}")
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            h.update(f"{file.relative_to(model_dir).as_posix()}:{_file_digest(file)}\n".encode())
    return h.hexdigest()


def ddpm_model_dir(model_dir: Path) -> Path:
    """A federated DDPM run's ``model/`` lists its models in model.json; use the global one."""
    info = model_dir / "model.json"
    if info.is_file():
        doc = json.loads(info.read_text())
        models = doc.get("models", {})
        if "global" not in models:
            raise ValueError(
                f"{model_dir}: this DDPM run keeps per-client models ({sorted(models)[:3]}...); "
                "features need one shared model: use a run of mode full or usplit"
            )
        if Path(models["global"]).parent != Path("."):
            raise ValueError(f"{model_dir}: unexpected model layout {models['global']!r}")
    return model_dir


def preprocess(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1], resized to ``size`` and to ``channels`` channels."""
    x = images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if x.shape[1] == 1 and channels == 3:
        x = x.repeat(1, 3, 1, 1)
    if x.shape[1] != channels:
        raise ValueError(
            f"images have {x.shape[1]} channels but the diffusion model takes {channels}"
        )
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    return x


class Backbone(ABC):
    """A UNet, its noise schedule, an image encoder and a condition encoder (the interface
    every backbone implements; see the two below)."""

    unet: nn.Module
    scheduler: Any
    device: torch.device
    dtype: torch.dtype
    image_size: int

    @abstractmethod
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC images -> the clean UNet input (latents or pixels), on the device."""
        raise NotImplementedError

    @abstractmethod
    def set_conditions(self, conditions: Conditions) -> None:
        """Prepare the condition inputs (embeddings or labels), once per extraction."""
        raise NotImplementedError

    @abstractmethod
    def unet_kwargs(self, cond_rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Keyword arguments of the UNet call for rows with condition indices ``cond_rows``."""
        raise NotImplementedError

    @property
    def num_train_timesteps(self) -> int:
        return int(self.scheduler.config.num_train_timesteps)

    def add_noise(self, clean: torch.Tensor, noise: torch.Tensor, timestep: int) -> torch.Tensor:
        t = torch.full((clean.shape[0],), timestep, dtype=torch.long, device=clean.device)
        return self.scheduler.add_noise(clean, noise.to(clean.device, clean.dtype), t)


class StableDiffusionBackbone(Backbone):
    """Stable Diffusion through diffusers; text prompts are the conditions."""

    def __init__(
        self, model_dir: Path, device: torch.device, dtype: torch.dtype, image_size: int | None
    ) -> None:
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        self.device, self.dtype = device, dtype
        self.vae = (
            AutoencoderKL.from_pretrained(model_dir, subfolder="vae", torch_dtype=dtype)
            .to(device)
            .eval()
        )
        self.unet = UNet2DConditionModel.from_pretrained(
            model_dir, subfolder="unet", torch_dtype=dtype
        )
        self.unet.to(device).eval()
        self.tokenizer = CLIPTokenizer.from_pretrained(model_dir, subfolder="tokenizer")
        self.text_encoder = CLIPTextModel.from_pretrained(
            model_dir, subfolder="text_encoder", torch_dtype=dtype
        )
        self.text_encoder.to(device).eval()
        # The reference code's scheduler; add_noise is the same for every DDPM-family one.
        self.scheduler = DDIMScheduler.from_pretrained(model_dir, subfolder="scheduler")
        self.image_size = int(image_size or default_image_size("stable_diffusion", model_dir))
        self._embeds: torch.Tensor | None = None

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        x = preprocess(images, self.image_size, int(self.vae.config.in_channels))
        latents = self.vae.encode(x.to(self.device, self.dtype)).latent_dist.mean
        return latents * self.vae.config.scaling_factor

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """CLIP last hidden states, as StableDiffusionPipeline.encode_prompt computes them."""
        tokens = self.tokenizer(
            list(prompts),
            padding="max_length",
            truncation=True,
            max_length=self.tokenizer.model_max_length,
            return_tensors="pt",
        )
        mask = None
        if getattr(self.text_encoder.config, "use_attention_mask", False):
            mask = tokens.attention_mask.to(self.device)
        return self.text_encoder(tokens.input_ids.to(self.device), attention_mask=mask)[0].to(
            self.dtype
        )

    def set_conditions(self, conditions: Conditions) -> None:
        self._embeds = self.encode_prompts([str(c) for c in conditions.all])

    def unet_kwargs(self, cond_rows: torch.Tensor) -> dict[str, torch.Tensor]:
        assert self._embeds is not None, "set_conditions first"
        return {"encoder_hidden_states": self._embeds[cond_rows.to(self._embeds.device)]}


class DDPMBackbone(Backbone):
    """A class-conditional pixel-space UNet2DModel; class labels are the conditions."""

    def __init__(
        self,
        model_dir: Path,
        device: torch.device,
        dtype: torch.dtype,
        image_size: int | None,
        num_classes: int,
        key: str = "features.model",
    ) -> None:
        from diffusers import DDPMScheduler, UNet2DModel

        self.device, self.dtype = device, dtype
        self.unet = (
            UNet2DModel.from_pretrained(model_dir, subfolder="unet", torch_dtype=dtype)
            .to(device)
            .eval()
        )
        self.scheduler = DDPMScheduler.from_pretrained(model_dir, subfolder="scheduler")
        embeds = self.unet.config.num_class_embeds
        if embeds != num_classes + 1:
            raise ValueError(
                f"{key}: the DDPM at {model_dir} has num_class_embeds={embeds}, but the dataset "
                f"has {num_classes} classes; the ddpm backbone needs a class-conditional model "
                f"with {num_classes + 1} class embeddings (the last one the null class)"
            )
        self.image_size = int(image_size or default_image_size("ddpm", model_dir))
        self._labels: torch.Tensor | None = None

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        x = preprocess(images, self.image_size, int(self.unet.config.in_channels))
        return x.to(self.device, self.dtype)

    def set_conditions(self, conditions: Conditions) -> None:
        self._labels = torch.tensor(
            [int(c) for c in conditions.all], dtype=torch.long, device=self.device
        )

    def unet_kwargs(self, cond_rows: torch.Tensor) -> dict[str, torch.Tensor]:
        assert self._labels is not None, "set_conditions first"
        return {"class_labels": self._labels[cond_rows.to(self.device)]}


def default_image_size(backbone: str, model_dir: Path) -> int:
    """``ddpm``: the UNet's own ``sample_size``; Stable Diffusion: the reference's 224."""
    if backbone == "stable_diffusion":
        return DEFAULT_SD_IMAGE_SIZE
    config = json.loads((model_dir / "unet" / "config.json").read_text())
    size = config.get("sample_size")
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: half precision on CUDA, float32 elsewhere (CPU half is slow and inexact)."""
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def load_backbone(
    backbone: str,
    model_dir: Path,
    device: torch.device,
    dtype: torch.dtype,
    image_size: int | None,
    num_classes: int,
    key: str = "features.model",
) -> Backbone:
    if backbone == "ddpm":
        return DDPMBackbone(model_dir, device, dtype, image_size, num_classes, key)
    return StableDiffusionBackbone(model_dir, device, dtype, image_size)
