"""A toy dataset split two classes per client, and tiny generation settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from feddiff.partition.io import save_partition
from tests.features.conftest import save_toy

TINY_UNET = {
    "block_out_channels": [8, 16],
    "attention": [False, False],
    "norm_num_groups": 4,
    "mid_attention": True,
    "attention_head_dim": 4,
    "layers_per_block": 1,
    "class_conditional": True,
}


def tiny_generation(**aux: object) -> dict:
    """Settings of the generate-auxiliary stage: one short epoch, 4 sampling steps."""
    base = {
        "generator": "local_ddpm",
        "size": 40,
        "local_epochs": 1,
        "batch_size": 16,
        "lr": 1e-3,
        "sampler": "ddim",
        "steps": 4,
        "device": "cpu",
    }
    return {
        "auxiliary": {**base, **aux},
        "unet": TINY_UNET,
        "scheduler": {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02},
        "seed": 0,
    }


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here with one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """4 classes, 80 train images; client k holds classes k and (k+1) % 4, unequally."""
    root = tmp_path_factory.mktemp("aux_toy")
    data = save_toy(root / "toy.h5", n_train=80, n_test=20)
    labels = np.arange(80) % 4
    by_class = [np.flatnonzero(labels == c) for c in range(4)]
    clients = [
        np.concatenate([by_class[k][: 5 + 5 * (k % 2)], by_class[(k + 1) % 4][10:20]])
        for k in range(4)
    ]
    part = root / "partition.npz"
    save_partition(part, clients, {"setting": {"scheme": "custom"}})
    return data, part
