"""The DDPM objective learns, label dropout drops, scaling round-trips, samplers run."""

from typing import Any

import numpy as np
import pytest
import torch

from feddiff.diffusion.ddpm import (
    ddpm_loss,
    drop_labels,
    to_model_range,
    to_uint8,
    train_local,
)
from feddiff.diffusion.sampling import fid_labels, generate, grid_indices
from feddiff.diffusion.settings import UNetSettings
from feddiff.diffusion.unet import build_unet, null_class
from feddiff.fl.data import FederatedData

from .conftest import tiny_unet


def _fixed_loss(unet: Any, scheduler: Any, data: FederatedData) -> float:
    """Loss on fixed noise and timesteps, so before/after compare like with like."""
    gen = torch.Generator().manual_seed(123)
    with torch.no_grad():
        unet.eval()
        return float(ddpm_loss(unet, scheduler, to_model_range(data.x_train), data.y_train, gen))


def test_loss_falls_on_a_tiny_set(toy_data: FederatedData, scheduler: Any) -> None:
    unet = tiny_unet()
    before = _fixed_loss(unet, scheduler, toy_data)
    gen = torch.Generator().manual_seed(0)
    loss_sum, steps = train_local(
        unet,
        scheduler,
        toy_data.x_train,
        toy_data.y_train,
        torch.arange(80),
        epochs=40,
        batch_size=20,
        lr=3e-3,
        label_dropout=0.1,
        num_classes=4,
        generator=gen,
    )
    after = _fixed_loss(unet, scheduler, toy_data)
    assert steps == 160 and torch.isfinite(loss_sum)
    assert after < 0.5 * before, (before, after)


def test_scaling_round_trips() -> None:
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    y = to_model_range(x)
    assert y.min() == -1 and y.max() == 1
    assert torch.equal(to_uint8(y), x)


def test_label_dropout_rate() -> None:
    labels = torch.zeros(20000, dtype=torch.long)
    out = drop_labels(labels, 0.1, 4, torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) == {0, 4}
    assert abs((out == 4).float().mean().item() - 0.1) < 0.01
    assert torch.equal(drop_labels(labels, 0.0, 4, torch.Generator()), labels)


def test_unet_rejects_sizes_it_cannot_halve() -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        build_unet(
            UNetSettings(block_out_channels=(8, 8, 8), attention=(False,) * 3, norm_num_groups=4),
            1,
            6,
            4,
        )
    assert tiny_unet().config.num_class_embeds == 5 and null_class(4) == 4


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samplers_are_seeded_and_in_range(scheduler: Any, sampler: str) -> None:
    unet = tiny_unet()
    labels = torch.as_tensor(fid_labels(np.arange(40) % 4, 6))
    kw = {"sampler": sampler, "steps": 3, "null_label": 4, "batch_size": 4}
    a = generate(
        unet, dict(scheduler.config), labels, 6, generator=torch.Generator().manual_seed(1), **kw
    )
    b = generate(
        unet, dict(scheduler.config), labels, 6, generator=torch.Generator().manual_seed(1), **kw
    )
    assert a.dtype == torch.uint8 and a.shape == (6, 1, 8, 8) and torch.equal(a, b)
    g = generate(
        unet,
        dict(scheduler.config),
        labels,
        6,
        generator=torch.Generator().manual_seed(1),
        guidance_scale=2.0,
        **kw,
    )
    assert g.shape == a.shape
    uncond = tiny_unet(conditional=False)
    assert (
        generate(
            uncond, dict(scheduler.config), None, 3, generator=torch.Generator(), steps=2
        ).shape[0]
        == 3
    )


def test_fid_labels_follow_the_test_split() -> None:
    ref = np.array([0] * 50 + [1] * 30 + [2] * 20)
    labels = fid_labels(ref, 10)
    assert labels.tolist() == [0] * 5 + [1] * 3 + [2] * 2
    rows = grid_indices(labels, 10, 2, 3)
    assert rows == [[0, 1], [5, 6], [8, 9]]
