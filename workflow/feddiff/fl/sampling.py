"""Seeds and client selection derived from (seed, round, client).

Deriving every random stream from its coordinates, instead of drawing from one RNG
that advances through the run, makes a resumed run bit-identical to an uninterrupted
one without saving any RNG state, and makes a client's batches independent of the
order in which clients are simulated.
"""

from __future__ import annotations

import numpy as np
import torch

from feddiff.utils.streams import derived_seed


def sample_clients(seed: int, round: int, num_clients: int, per_round: int) -> list[int]:
    """The sorted clients taking part in ``round`` (uniform, without replacement)."""
    if per_round > num_clients:
        raise ValueError(
            f"training.clients_per_round ({per_round}) exceeds the partition's {num_clients} "
            "clients"
        )
    rng = np.random.default_rng(derived_seed(seed, round, 0x5A))
    return sorted(int(c) for c in rng.choice(num_clients, size=per_round, replace=False))


def client_generator(seed: int, round: int, client: int, device: torch.device) -> torch.Generator:
    """The generator for one client's batch order and augmentation in one round."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derived_seed(seed, round, client, 0xC1))
    return gen
