"""Federated data held as tensors on the training device.

Clients are index sets into one shared training tensor; a batch is a gather by index,
so nothing is copied per client and no DataLoader is ever built.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from feddiff.fl.augment import random_crop, random_hflip
from feddiff.fl.settings import AugmentSettings

if TYPE_CHECKING:
    from feddiff.data.h5 import DatasetArrays


def _to_nchw_uint8(images: np.ndarray, device: torch.device) -> torch.Tensor:
    return (
        torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous().to(device)
    )


@dataclass
class FederatedData:
    """Train/test tensors (uint8 NCHW on ``device``), labels and client index sets."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    clients: list[torch.Tensor]
    mean: torch.Tensor
    std: torch.Tensor
    num_classes: int

    @classmethod
    def from_dataset(
        cls, arrays: DatasetArrays, clients: Sequence[np.ndarray], device: torch.device
    ) -> FederatedData:
        """:meth:`from_arrays` of a prepared dataset (``feddiff.data.h5.load_dataset``)."""
        return cls.from_arrays(
            arrays.x_train,
            arrays.y_train,
            arrays.x_test,
            arrays.y_test,
            clients,
            arrays.num_classes,
            device,
        )

    @classmethod
    def from_arrays(
        cls,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_test: np.ndarray,
        y_test: np.ndarray,
        clients: Sequence[np.ndarray],
        num_classes: int,
        device: torch.device,
    ) -> FederatedData:
        """Move arrays (N, H, W, C) uint8 to ``device``; normalise with train statistics."""
        xtr = _to_nchw_uint8(x_train, device)
        scaled = xtr.float() / 255.0
        mean = scaled.mean(dim=(0, 2, 3))
        std = scaled.std(dim=(0, 2, 3)).clamp_min(1e-3)
        return cls(
            x_train=xtr,
            y_train=torch.as_tensor(y_train, dtype=torch.long, device=device),
            x_test=_to_nchw_uint8(x_test, device),
            y_test=torch.as_tensor(y_test, dtype=torch.long, device=device),
            clients=[torch.as_tensor(c, dtype=torch.long, device=device) for c in clients],
            mean=mean,
            std=std,
            num_classes=num_classes,
        )

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[2])

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def client_size(self, client: int) -> int:
        return int(self.clients[client].numel())

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        x = x_uint8.float() / 255.0
        return (x - self.mean[None, :, None, None]) / self.std[None, :, None, None]

    def train_batch(
        self, idx: torch.Tensor, augment: AugmentSettings, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather, normalise and augment one training batch."""
        x = self.normalize(self.x_train[idx])
        x = random_crop(x, augment.crop_padding, generator)
        if augment.hflip:
            x = random_hflip(x, generator)
        return x, self.y_train[idx]

    def test_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, self.x_test.shape[0], batch_size):
            sl = slice(start, start + batch_size)
            yield self.normalize(self.x_test[sl]), self.y_test[sl]


def epoch_batches(
    indices: torch.Tensor, batch_size: int, generator: torch.Generator
) -> list[torch.Tensor]:
    """Shuffle a client's indices and cut them into batches.

    A trailing batch of a single sample is dropped: batch norm cannot train on it, and
    dropping it (rather than failing) is what ``drop_last`` would do for that case.
    """
    perm = indices[torch.randperm(indices.numel(), device=indices.device, generator=generator)]
    batches = list(perm.split(batch_size))
    if len(batches) > 1 and batches[-1].numel() == 1:
        batches.pop()
    return batches
