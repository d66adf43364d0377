"""Tiny diffusion models saved with diffusers' save_pretrained, and tiny datasets.

Every model is written to disk and loaded back by the extractor through the same
``from_pretrained`` path users take; nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from feddiff.data.h5 import DatasetArrays, save_dataset

TOKENS = ["<|startoftext|>", "<|endoftext|>", "!"]


def toy_arrays(
    n_train: int, n_test: int, classes: int = 4, size: int = 8, channels: int = 1, seed: int = 0
) -> DatasetArrays:
    """Class c is bright in quadrant c (of a 2x2 grid), plus noise: learnable at a glance."""
    rng = np.random.default_rng(seed)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % classes
        x = rng.integers(0, 60, size=(n, size, size, channels))
        h = size // 2
        for i, c in enumerate(y):
            r, q = divmod(int(c) % 4, 2)
            x[i, h * r : h * r + h, h * q : h * q + h] += 150
        return x.astype(np.uint8), y.astype(np.int64)

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog"][:classes]
    return DatasetArrays(x_train, y_train, x_test, y_test, names)


def save_toy(path: Path, **kwargs: int) -> Path:
    save_dataset(toy_arrays(**kwargs), path)
    return path


def save_tiny_ddpm(
    target: Path, num_classes: int, size: int = 8, channels: int = 1, seed: int = 0
) -> Path:
    """A class-conditional UNet2DModel (C + 1 class embeddings) in the federated DDPM's layout."""
    from diffusers import DDPMScheduler, UNet2DModel

    from feddiff.diffusion.io import save_diffusion

    torch.manual_seed(seed)
    unet = UNet2DModel(
        sample_size=size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        attention_head_dim=4,
        num_class_embeds=num_classes + 1,
    )
    save_diffusion(
        target,
        unet,
        DDPMScheduler(num_train_timesteps=1000),
        {"global": unet.state_dict()},
        {"mode": "full"},
    )
    return target


def save_tiny_sd(target: Path, seed: int = 0) -> Path:
    """A miniature Stable Diffusion (VAE, conditional UNet, CLIP text encoder, tokenizer)."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = TOKENS + [f"{c}</w>" for c in letters] + list(letters)
    target.mkdir(parents=True, exist_ok=True)
    (target / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (target / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(
        str(target / "vocab.json"), str(target / "merges.txt"), model_max_length=24
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=2,
            max_position_embeddings=24,
            projection_dim=16,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 8),
        latent_channels=4,
        norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        sample_size=16,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(clip_sample=False),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(target / "model")
    return target / "model"


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_toy(tmp_path_factory.mktemp("data") / "toy.h5", n_train=40, n_test=12)


@pytest.fixture(scope="session")
def toy_rgb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_toy(
        tmp_path_factory.mktemp("data") / "toy_rgb.h5", n_train=24, n_test=8, channels=3, size=16
    )


@pytest.fixture(scope="session")
def ddpm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_ddpm(tmp_path_factory.mktemp("ddpm") / "model", num_classes=4)


@pytest.fixture(scope="session")
def sd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sd(tmp_path_factory.mktemp("sd"))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """These models are tiny: one torch thread avoids OpenMP oversubscription on a busy
    machine (measured: a test 8x slower with two threads on two loaded cores), and
    results that tests compare bit for bit are then computed alike."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    with one_thread():
        yield
