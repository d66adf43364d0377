"""The down/mid/up split covers every UNet tensor exactly once."""

import pytest
import torch

from feddiff.diffusion.parts import PARTS, part_of, payload_size, split_names
from feddiff.diffusion.settings import UNetSettings
from feddiff.diffusion.unet import build_unet

from .conftest import TINY_UNET, tiny_unet


@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("attention", [[False, False], [True, True]])
def test_parts_partition_the_unet(conditional: bool, attention: list[bool]) -> None:
    unet = build_unet(
        UNetSettings(**{**TINY_UNET, "attention": attention, "class_conditional": conditional}),
        1,
        8,
        4,
    )
    parts = split_names(unet)
    keys = set(unet.state_dict())
    assert set(parts) == set(PARTS)
    assert all(parts[p] for p in PARTS)  # no part is empty
    for a in PARTS:
        for b in PARTS:
            if a < b:
                assert not parts[a] & parts[b], (a, b)
    assert frozenset().union(*parts.values()) == keys
    named = {n for n, _ in unet.named_parameters()}
    assert named <= keys  # every parameter is in some part


def test_parts_follow_the_spec() -> None:
    parts = split_names(tiny_unet())
    heads = {p: {k.split(".")[0] for k in names} for p, names in parts.items()}
    assert heads["down"] == {"conv_in", "time_embedding", "class_embedding", "down_blocks"}
    assert heads["mid"] == {"mid_block"}
    assert heads["up"] == {"up_blocks", "conv_norm_out", "conv_out"}


def test_unknown_module_is_an_error() -> None:
    with pytest.raises(ValueError, match="belongs to no part"):
        part_of("brand_new_block.weight")


def test_payload_size_is_dtype_aware() -> None:
    state = {
        "a": torch.zeros(3, dtype=torch.float32),
        "b": torch.zeros(2, dtype=torch.float16),
        "n": torch.zeros(5, dtype=torch.long),
    }
    assert payload_size(state, state) == (5, 3 * 4 + 2 * 2)
    unet = tiny_unet()
    sd, parts = unet.state_dict(), split_names(unet)
    total = sum(payload_size(sd, parts[p])[0] for p in PARTS)
    assert total == sum(p.numel() for p in unet.parameters())
