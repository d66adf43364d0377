"""Models are diffusers folders: save_pretrained / from_pretrained round trip."""

from pathlib import Path
from typing import Any

import torch
from diffusers import DDPMScheduler, UNet2DModel

from feddiff.diffusion.io import load_diffusion, save_diffusion

from .conftest import tiny_unet


def test_save_pretrained_round_trip(tmp_path: Path, scheduler: Any) -> None:
    a, b = tiny_unet(0), tiny_unet(1)
    save_diffusion(
        tmp_path / "model",
        tiny_unet(2),
        scheduler,
        {"client0": a.state_dict(), "client1": b.state_dict()},
        {"mode": "udec"},
    )
    loaded = UNet2DModel.from_pretrained(tmp_path / "model" / "clients" / "client1" / "unet")
    sched = DDPMScheduler.from_pretrained(tmp_path / "model" / "scheduler")
    assert sched.config.num_train_timesteps == 1000 and sched.config.beta_schedule == "linear"
    assert sched.config.prediction_type == "epsilon"
    x, t, y = torch.randn(2, 1, 8, 8), torch.tensor([3, 900]), torch.tensor([0, 4])
    with torch.no_grad():
        assert torch.equal(
            loaded(x, t, class_labels=y).sample, b.eval()(x, t, class_labels=y).sample
        )
    unet0, _ = load_diffusion(tmp_path / "model", "client0")
    assert all(torch.equal(unet0.state_dict()[k], v) for k, v in a.state_dict().items())


def test_global_layout_and_rewrite(tmp_path: Path, scheduler: Any) -> None:
    model = tmp_path / "model"
    save_diffusion(
        model, tiny_unet(), scheduler, {"global": tiny_unet(0).state_dict()}, {"mode": "full"}
    )
    save_diffusion(
        model, tiny_unet(), scheduler, {"global": tiny_unet(5).state_dict()}, {"mode": "full"}
    )
    assert (model / "unet" / "config.json").is_file() and (model / "scheduler").is_dir()
    unet, _ = load_diffusion(model)
    assert torch.equal(unet.conv_in.weight, tiny_unet(5).conv_in.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary left behind
