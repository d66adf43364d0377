"""Exceptions raised in one layer and caught in another, kept at the bottom layer.

This module imports nothing, so any module may import it without pulling in torch or
creating a cycle: the DDPM objective (``feddiff.diffusion.ddpm``) raises the same
:class:`NonFiniteLossError` as the classifier engine (``feddiff.fl.engine``) without
importing the engine, which imports the strategies.
"""

from __future__ import annotations


class NonFiniteLossError(RuntimeError):
    """A client's local loss (classifier or DDPM) became NaN or infinite."""
