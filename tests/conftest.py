"""Shared test helpers: repository paths and the offline CIFAR-10 copy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CIFAR10 = REPO.parent / "shared" / "datasets" / "cifar10"


@pytest.fixture
def cifar10_root() -> Path:
    if not (CIFAR10 / "train").is_dir():
        pytest.skip(
            f"CIFAR-10 ImageFolder copy not found at {CIFAR10} (it sits beside the repo as "
            "../shared)"
        )
    return CIFAR10


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a busy 2-core machine OpenMP spinning
    makes them many times slower; the pipeline runs its stages with one thread too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
