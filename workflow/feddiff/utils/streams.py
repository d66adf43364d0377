"""Seeds derived from coordinates such as ``(seed, round, client)``; numpy only.

Deriving every random stream from its coordinates, instead of drawing from one RNG
that advances through a run, makes a resumed run bit-identical to an uninterrupted
one without saving any RNG state. This sits in the bottom layer, without torch, so
that code read when the DAG is built (the FedDiffuse modes) can use it too.
"""

from __future__ import annotations

import numpy as np


def derived_seed(*coords: int) -> int:
    """A 63-bit seed from integer coordinates (numpy's SeedSequence hashing)."""
    state = np.random.SeedSequence([int(c) for c in coords]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)
