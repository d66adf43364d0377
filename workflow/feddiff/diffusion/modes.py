"""The four FedDiffuse sharing modes (de Goede et al., 2024) behind one small interface.

A mode answers two questions per round: which parts each participating client
uploads, and which parts the server sends a client. Everything else (local training,
part-wise averaging, private storage, accounting) is the same loop for all modes, so
a mode is a few lines and adding one touches nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from feddiff.diffusion.parts import PARTS
from feddiff.utils.streams import derived_seed

ALL = frozenset(PARTS)


class Mode:
    """Base: every client uploads every shared part; parts not shared stay private."""

    name: ClassVar[str]
    shared: ClassVar[frozenset[str]] = ALL

    @property
    def private(self) -> frozenset[str]:
        """Parts each client keeps for itself across rounds (never sent up)."""
        return ALL - self.shared

    def uploads(self, clients: Sequence[int], seed: int, round: int) -> dict[int, frozenset[str]]:
        return {int(c): self.shared for c in clients}

    def downloads(self, first_time: bool) -> frozenset[str]:
        """A client's first round receives the whole model; later only the shared parts."""
        return ALL if first_time else self.shared


class Full(Mode):
    """FedAvg of the whole UNet."""

    name = "full"


class USplit(Mode):
    """Clients in random pairs split the upload: one sends up, the other down, mid to one."""

    name = "usplit"

    def uploads(self, clients: Sequence[int], seed: int, round: int) -> dict[int, frozenset[str]]:
        rng = np.random.default_rng(derived_seed(seed, round, 0x5B))
        return usplit_assignment(clients, rng)


class UDec(Mode):
    """Only the decoder (up part) is shared; down and mid stay with each client."""

    name = "udec"
    shared = frozenset({"up"})


class ULatDec(Mode):
    """Latent and decoder (mid and up) are shared; the down part stays private."""

    name = "ulatdec"
    shared = frozenset({"mid", "up"})


MODE_CLASSES: dict[str, type[Mode]] = {cls.name: cls for cls in (Full, USplit, UDec, ULatDec)}


def build_mode(name: str) -> Mode:
    if name not in MODE_CLASSES:
        raise ValueError(f"unknown FedDiffuse mode {name!r}; choose one of {sorted(MODE_CLASSES)}")
    return MODE_CLASSES[name]()


def usplit_assignment(
    clients: Sequence[int], rng: np.random.Generator
) -> dict[int, frozenset[str]]:
    """USPLIT's upload plan for one round.

    Clients are shuffled and paired; in a pair one uploads ``up`` and the other
    ``down`` (a fair coin decides who), and ``mid`` goes to one of the two (a second
    coin). With an odd count the last client uploads ``mid`` plus ``up`` or ``down``
    at random, so in that round the other of the two has no uploader.
    """
    order = [int(c) for c in rng.permutation(np.asarray(clients, dtype=np.int64))]
    plan: dict[int, frozenset[str]] = {}
    for i in range(0, len(order) - 1, 2):
        a, b = order[i], order[i + 1]
        a_up, a_mid = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
        plan[a] = frozenset({"up" if a_up else "down"} | ({"mid"} if a_mid else set()))
        plan[b] = frozenset({"down" if a_up else "up"} | (set() if a_mid else {"mid"}))
    if len(order) % 2:
        plan[order[-1]] = frozenset({"mid", "up" if rng.random() < 0.5 else "down"})
    return plan
