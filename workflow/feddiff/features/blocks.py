"""Outputs of a UNet's decoder blocks, with the forward pass stopped after the last one needed.

Forward hooks on ``unet.up_blocks[i]`` record each requested block's output, and the
hook of the deepest requested block raises a private exception that ends the forward
pass there: the remaining up-blocks, the output norm and convolution never run (for
Stable Diffusion's "layers 2-4" only ``conv_out`` is saved; for shallower choices,
whole blocks). Since the recorded tensors come out of diffusers' own ``forward``,
they are exactly those of a plain forward; no UNet code is re-implemented here, so a
new diffusers release cannot make the two drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import torch
from torch import nn


class _StopForward(Exception):
    """Raised by the deepest hook to end the UNet forward pass early (never escapes)."""


def _first_tensor(output: Any) -> torch.Tensor:
    """An up-block returns a tensor, or a tuple led by it (skip blocks add a skip sample)."""
    return output[0] if isinstance(output, (tuple, list)) else output


class BlockCapture:
    """Run a UNet and return ``{block index: output}`` for the requested decoder blocks.

    Use as a context manager (the hooks are removed on exit) or call :meth:`close`.
    ``stop_early=False`` lets the forward pass finish, for comparisons.
    """

    def __init__(
        self,
        unet: nn.Module,
        blocks: Sequence[int],
        stop_early: bool = True,
        where: str = "features.blocks",
    ) -> None:
        num = len(unet.up_blocks)
        bad = [b for b in blocks if not 0 <= b < num]
        if bad:
            raise ValueError(
                f"{where}: decoder block(s) {bad} do not exist; this UNet has {num} up-blocks "
                f"(indices 0..{num - 1})"
            )
        self.unet = unet
        self.blocks = tuple(int(b) for b in blocks)
        self.last = max(self.blocks)
        self.stop_early = stop_early
        self._outputs: dict[int, torch.Tensor] = {}
        self._handles = [
            unet.up_blocks[b].register_forward_hook(self._hook(b)) for b in sorted(set(self.blocks))
        ]

    def _hook(self, index: int) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            self._outputs[index] = _first_tensor(output)
            if self.stop_early and index == self.last:
                raise _StopForward

        return hook

    @torch.no_grad()
    def __call__(self, *args: Any, **kwargs: Any) -> dict[int, torch.Tensor]:
        """``unet(*args, **kwargs)`` up to the last requested block; its block outputs."""
        self._outputs = {}
        try:
            self.unet(*args, **kwargs)
        except _StopForward:
            pass
        missing = [b for b in self.blocks if b not in self._outputs]
        if missing:  # a diffusers change that skips blocks must not go unnoticed
            raise RuntimeError(f"UNet forward did not run decoder block(s) {missing}")
        out, self._outputs = self._outputs, {}
        return {b: out[b] for b in self.blocks}

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
