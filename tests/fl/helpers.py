"""Small settings and models shared by the engine and strategy tests."""

from __future__ import annotations

import torch

from feddiff.fl.data import FederatedData
from feddiff.fl.engine import run_federated
from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategy import Strategy, build_strategy
from feddiff.models import build_model


def small_settings(**kw: object) -> TrainSettings:
    """Three short rounds of two clients with momentum SGD; override any key."""
    base = dict(rounds=3, clients_per_round=2, local_epochs=1, batch_size=16, lr=0.05, momentum=0.9)
    base.update(kw)
    return TrainSettings.from_dict(base)


def small_model(seed: int = 0) -> torch.nn.Module:
    """A quarter-width CNN for the 4-class 8x8 toy data, seeded."""
    torch.manual_seed(seed)
    return build_model("cnn", num_classes=4, in_channels=1, image_size=8, width=0.25)


def make_strategy(**method: object) -> Strategy:
    return build_strategy(method, num_clients=4, num_classes=4)


def run_method(
    data: FederatedData, method: dict, settings: TrainSettings, seed: int, **kw: object
) -> tuple[torch.nn.Module, list[dict]]:
    """A full run of ``method`` on ``data`` from the seeded small model."""
    return run_federated(
        data, small_model(), make_strategy(**method), settings, seed=seed, progress=False, **kw
    )
