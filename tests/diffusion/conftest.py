"""Tiny UNets and toy image data, so every diffusion test runs in seconds on a CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from feddiff.diffusion.settings import (
    DiffusionSettings,
    SchedulerSettings,
    UNetSettings,
)
from feddiff.diffusion.unet import build_scheduler, build_unet
from feddiff.fl.data import FederatedData

TINY_UNET = {
    "block_out_channels": [8, 16],
    "attention": [False, False],
    "norm_num_groups": 4,
    "mid_attention": True,
    "attention_head_dim": 4,
}


def tiny_unet(seed: int = 0, conditional: bool = True, num_classes: int = 4):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    return build_unet(
        UNetSettings(**{**TINY_UNET, "class_conditional": conditional}), 1, 8, num_classes
    )


def tiny_settings(**training: object) -> DiffusionSettings:
    base = {"rounds": 3, "clients_per_round": 2, "local_epochs": 1, "batch_size": 16, "lr": 1e-3}
    return DiffusionSettings.from_dict(
        {
            "unet": TINY_UNET,
            "training": {**base, **training},
            "sampling": {"num_samples": 16, "steps": 4, "batch_size": 16, "grid_per_class": 2},
        }
    )


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    """Tiny models gain nothing from threads, and on a busy machine OpenMP spinning makes
    them 10x slower; the pipeline runs these stages with one thread too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def scheduler():  # type: ignore[no-untyped-def]
    return build_scheduler(SchedulerSettings())


@pytest.fixture
def toy_data() -> FederatedData:
    """4 classes of 8x8 images (class c bright in quadrant c), 4 clients of 20 images."""
    rng = np.random.default_rng(0)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % 4
        x = rng.integers(0, 40, size=(n, 8, 8, 1))
        for i, c in enumerate(y):
            r, q = divmod(int(c), 2)
            x[i, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4, 0] += 200
        return x.astype(np.uint8), y.astype(np.int64)

    x_train, y_train = make(80)
    x_test, y_test = make(40)
    clients = np.array_split(np.arange(80), 4)
    return FederatedData.from_arrays(
        x_train, y_train, x_test, y_test, clients, 4, torch.device("cpu")
    )


@pytest.fixture(scope="session")
def digits_h5(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The prepared 8x8 digits (offline, from scikit-learn), once per session."""
    from feddiff.data.prepare import prepare_dataset

    path = tmp_path_factory.mktemp("digits") / "digits.h5"
    prepare_dataset({"source": "digits", "test_fraction": 0.25, "split_seed": 0}, path)
    return path
