"""Decoder-block capture: identical to a plain diffusers forward, and really stopped early."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from feddiff.features.blocks import BlockCapture


def plain_forward_outputs(
    unet: torch.nn.Module, *args: object, **kwargs: object
) -> tuple[dict[int, torch.Tensor], object]:
    """Every up-block's output from an ordinary, complete ``unet(...)`` call."""
    outs: dict[int, torch.Tensor] = {}
    handles = [
        block.register_forward_hook(
            lambda m, a, o, i=i: outs.__setitem__(i, (o[0] if isinstance(o, tuple) else o).clone())
        )
        for i, block in enumerate(unet.up_blocks)
    ]
    try:
        with torch.no_grad():
            result = unet(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return outs, result


def _ddpm(ddpm_dir: Path) -> tuple[torch.nn.Module, tuple, dict]:
    from diffusers import UNet2DModel

    unet = UNet2DModel.from_pretrained(ddpm_dir, subfolder="unet").eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 1, 8, 8, generator=gen)
    return unet, (x, torch.full((6,), 300)), {"class_labels": torch.tensor([0, 1, 2, 3, 4, 4])}


def _sd(sd_dir: Path) -> tuple[torch.nn.Module, tuple, dict]:
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(sd_dir, subfolder="unet").eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 8, 8, generator=gen)
    ctx = torch.randn(3, 24, 16, generator=gen)
    return unet, (x, torch.full((3,), 300)), {"encoder_hidden_states": ctx}


@pytest.mark.parametrize("backbone", ["ddpm", "sd"])
@pytest.mark.parametrize("blocks", [(0,), (1,), (0, 1)])
def test_capture_equals_plain_forward(
    backbone: str, blocks: tuple[int, ...], ddpm_dir: Path, sd_dir: Path
) -> None:
    unet, args, kwargs = _ddpm(ddpm_dir) if backbone == "ddpm" else _sd(sd_dir)
    reference, _ = plain_forward_outputs(unet, *args, **kwargs)
    with BlockCapture(unet, blocks) as early:
        got = early(*args, **kwargs)
    with BlockCapture(unet, blocks, stop_early=False) as full:
        got_full = full(*args, **kwargs)
    assert list(got) == list(blocks)
    for b in blocks:
        assert torch.equal(got[b], reference[b])
        assert torch.equal(got_full[b], reference[b])


@pytest.mark.parametrize("backbone", ["ddpm", "sd"])
def test_forward_stops_after_the_last_requested_block(
    backbone: str, ddpm_dir: Path, sd_dir: Path
) -> None:
    unet, args, kwargs = _ddpm(ddpm_dir) if backbone == "ddpm" else _sd(sd_dir)
    ran: list[str] = []
    hooks = [
        unet.up_blocks[1].register_forward_hook(lambda *a: ran.append("up1")),
        unet.conv_out.register_forward_hook(lambda *a: ran.append("conv_out")),
    ]
    with BlockCapture(unet, [0]) as capture:
        capture(*args, **kwargs)
    assert ran == []  # neither the next block nor the output conv ran
    with BlockCapture(unet, [1]) as capture:
        capture(*args, **kwargs)
    assert ran == ["up1"]
    with BlockCapture(unet, [1], stop_early=False) as capture:
        capture(*args, **kwargs)
    assert ran == ["up1", "up1", "conv_out"]
    for h in hooks:
        h.remove()
    # hooks are removed on exit: a later plain forward runs to the end and returns a sample
    _, result = plain_forward_outputs(unet, *args, **kwargs)
    assert result.sample.shape == args[0].shape


def test_unknown_block_names_the_key(ddpm_dir: Path) -> None:
    unet, _, _ = _ddpm(ddpm_dir)
    with pytest.raises(ValueError, match=r"features\.x\.blocks.*2 up-blocks"):
        BlockCapture(unet, [2], where="features.x.blocks")
