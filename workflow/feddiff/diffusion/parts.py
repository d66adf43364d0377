"""The three disjoint parts of a UNet that FedDiffuse shares or keeps private.

down = input conv, time (and class) embedding, down blocks; mid = mid block;
up = up blocks, output norm and conv. Parts are assigned by top-level module name,
and an unknown top-level module is an error rather than silently left out: a newer
diffusers that adds a module must be placed in a part on purpose, or its parameters
would never be shared (nor counted).

No torch import: the part names are read when the DAG is built (the modes' checks);
the functions below take tensors and modules by duck typing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

PARTS = ("down", "mid", "up")
PREFIXES: dict[str, tuple[str, ...]] = {
    "down": (
        "conv_in",
        "time_proj",
        "time_embedding",
        "class_embedding",
        "add_embedding",
        "down_blocks",
    ),
    "mid": ("mid_block",),
    "up": ("up_blocks", "conv_norm_out", "conv_act", "conv_out"),
}
_PART_OF = {prefix: part for part, prefixes in PREFIXES.items() for prefix in prefixes}


def part_of(name: str) -> str:
    """The part a state-dict key belongs to."""
    head = name.split(".", 1)[0]
    if head not in _PART_OF:
        raise ValueError(
            f"UNet module {head!r} (from {name!r}) belongs to no part; add it to PREFIXES"
        )
    return _PART_OF[head]


def split_names(model: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, frozenset[str]]:
    """Part -> the state-dict keys (parameters and buffers) in it."""
    keys = model.keys() if isinstance(model, Mapping) else model.state_dict().keys()
    out: dict[str, set[str]] = {p: set() for p in PARTS}
    for key in keys:
        out[part_of(key)].add(key)
    return {p: frozenset(v) for p, v in out.items()}


def names_of(parts_map: Mapping[str, frozenset[str]], parts: Iterable[str]) -> frozenset[str]:
    """Union of the keys of ``parts``."""
    return frozenset().union(*(parts_map[p] for p in parts))


def payload_size(state: Mapping[str, torch.Tensor], names: Iterable[str]) -> tuple[int, int]:
    """(floating values, bytes) of sending ``names`` of ``state``, dtype-aware.

    Integer bookkeeping buffers are not counted, as in the classifier runs.
    """
    params = nbytes = 0
    for name in names:
        t = state[name]
        if t.is_floating_point():
            params += t.numel()
            nbytes += t.numel() * t.element_size()
    return params, nbytes
