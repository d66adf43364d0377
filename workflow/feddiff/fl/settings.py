"""Training settings of a federated run (the ``training`` block of the config)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from feddiff.schema import build, setting

DEVICE_PATTERN = "^(auto|cpu|cuda(:[0-9]+)?|mps)$"
"""A torch device name: ``auto`` picks CUDA, then MPS, then the CPU."""
MODELS = ("cnn", "resnet10")
"""Classifier names (the keys of :data:`feddiff.models.MODELS`, which needs torch)."""


@dataclass(frozen=True)
class AugmentSettings:
    """Tensor-op augmentation: random crop after zero padding, horizontal flip."""

    crop_padding: int = setting(0, minimum=0)
    hflip: bool = False


@dataclass(frozen=True)
class TrainSettings:
    """Everything the engine needs besides data, partition and strategy.

    A fresh SGD optimizer is built for every client in every round, as in FedAvg's
    reference implementations, so no optimizer state crosses rounds. Keys, types and
    ranges are declared here once (:mod:`feddiff.schema`); the config schema's
    ``training`` block is generated from them.
    """

    model: str = setting("cnn", enum=MODELS)
    width: float = setting(1.0, exclusive_minimum=0)
    rounds: int = setting(20, minimum=1)
    clients_per_round: int = setting(5, minimum=1)
    local_epochs: int = setting(1, minimum=1)
    batch_size: int = setting(32, minimum=2)
    lr: float = setting(0.05, exclusive_minimum=0)
    momentum: float = setting(0.9, minimum=0, exclusive_maximum=1)
    weight_decay: float = setting(1e-5, minimum=0)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    eval_batch_size: int = setting(1024, minimum=1)
    device: str = setting("auto", pattern=DEVICE_PATTERN)
    checkpoint_every: int = setting(1, minimum=1)
    # Speed (feddiff.fl.vectorized): ``vectorize`` trains a round's clients together
    # (``auto``: on CUDA when the strategy and model allow; ``on``: required; ``off``:
    # one at a time), at most ``vectorize_chunk`` clients at once (0: all). ``bf16`` (autocast),
    # ``channels_last`` and ``compile`` (torch.compile) act on CUDA only.
    vectorize: str = setting(
        "auto",
        enum=("auto", "on", "off", True, False),
        description=(
            "train a round's clients together (vmap); auto = on CUDA when the strategy allows; "
            "YAML's bare on/off read as true/false"
        ),
    )
    vectorize_chunk: int = setting(
        0, minimum=0, description="clients trained at once by the vectorised path; 0 = all"
    )
    bf16: bool = setting(False, description="bf16 autocast (CUDA only)")
    channels_last: bool = setting(False, description="channels-last memory format (CUDA only)")
    compile: bool = setting(False, description="torch.compile the training step (CUDA only)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "training") -> TrainSettings:
        """Build from a ``training`` block, checking every key against its declaration."""
        settings = build(cls, data, where)
        if isinstance(settings.vectorize, bool):  # YAML 1.1 reads bare on/off as booleans
            settings = replace(settings, vectorize="on" if settings.vectorize else "off")
        return settings

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
