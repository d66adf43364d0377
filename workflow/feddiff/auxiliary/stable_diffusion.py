"""The optional second generator: Stable Diffusion text-to-image, "a photo of a {class}".

Loaded with diffusers' ``StableDiffusionPipeline.from_pretrained`` from a local folder
or a Hugging Face id, through the same resolution the FedDifRC features use (a clear
error naming the key, the place looked in and what to set when it is missing
offline). Images are drawn at the model's resolution and resized to the dataset's
(area interpolation; grayscale datasets get the luma channel).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from feddiff.auxiliary.settings import AuxiliarySettings
from feddiff.features.backbones import resolve_dtype, resolve_model_dir
from feddiff.fl.sampling import derived_seed
from feddiff.utils.seeding import torch_generator

_SD = 0xA9


def to_dataset_images(images: torch.Tensor, size: int, channels: int) -> np.ndarray:
    """float NCHW in [0, 1] -> uint8 NHWC at ``size`` with ``channels`` channels."""
    x = images.float().clamp(0, 1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="area")
    if channels == 1 and x.shape[1] == 3:
        x = 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    elif channels == 3 and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def generate_sd(
    settings: AuxiliarySettings,
    per_class: np.ndarray,
    class_names: Sequence[str],
    size: int,
    channels: int,
    seed: int,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    """``per_class[c]`` images per class from the prompt; uint8 NHWC and labels."""
    from diffusers import StableDiffusionPipeline

    model_dir = resolve_model_dir(str(settings.model), "stable_diffusion", key="auxiliary.model")
    dtype = resolve_dtype(settings.dtype, device)
    pipe = StableDiffusionPipeline.from_pretrained(
        model_dir, torch_dtype=dtype, safety_checker=None, requires_safety_checker=False
    ).to(device)
    pipe.set_progress_bar_config(disable=True)
    resolution = settings.sd_resolution or int(pipe.unet.config.sample_size) * pipe.vae_scale_factor
    images, labels = [], []
    for c, n in enumerate(per_class):
        if n == 0:
            continue
        prompt = settings.prompt_template.replace("{class}", class_names[c].replace("_", " "))
        gen = torch_generator(derived_seed(seed, c, _SD), "cpu")
        for start in range(0, int(n), settings.sample_batch_size):
            k = min(settings.sample_batch_size, int(n) - start)
            out = pipe(
                [prompt] * k,
                num_inference_steps=settings.sd_steps,
                guidance_scale=settings.sd_guidance_scale,
                height=resolution,
                width=resolution,
                generator=gen,
                output_type="pt",
            ).images
            images.append(to_dataset_images(out, size, channels))
            labels.append(np.full(k, c, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)
