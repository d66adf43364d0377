"""The DDPM's local Adam takes torch's multi-tensor path; on a CPU that must not change a bit.

``train_local`` asks for ``foreach=True`` (CUDA's default) for speed on CPUs too. This
trains the same tiny UNet on the same batches with torch's per-tensor Adam (the CPU
default, which earlier results were made with) and compares every weight exactly: a
change of the update's arithmetic (another formula, order, or a torch whose foreach path
rounds differently) fails here rather than silently moving the pipeline's results.
"""

from __future__ import annotations

import copy

import pytest
import torch

from feddiff.diffusion import ddpm
from feddiff.fl.data import FederatedData

from .conftest import tiny_unet


def _train(data: FederatedData, scheduler) -> torch.nn.Module:  # type: ignore[no-untyped-def]
    unet = copy.deepcopy(tiny_unet(seed=3))
    ddpm.train_local(
        unet,
        scheduler,
        data.x_train,
        data.y_train,
        data.clients[1],
        epochs=3,
        batch_size=8,
        lr=3e-3,
        label_dropout=0.1,
        num_classes=4,
        generator=torch.Generator().manual_seed(5),
    )
    return unet


def test_multi_tensor_adam_gives_the_per_tensor_results_bit_for_bit(
    toy_data: FederatedData,
    scheduler,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    built: list[dict] = []
    adam = torch.optim.Adam

    def recording(params, **kwargs):  # type: ignore[no-untyped-def]
        built.append(kwargs)
        return adam(params, **kwargs)

    monkeypatch.setattr(ddpm.torch.optim, "Adam", recording)
    fast = _train(toy_data, scheduler)
    assert built == [{"lr": 3e-3, "foreach": True}]
    monkeypatch.setattr(ddpm.torch.optim, "Adam", lambda params, **kw: adam(params, lr=kw["lr"]))
    reference = _train(toy_data, scheduler)  # torch's CPU default: per tensor
    for (name, a), (_, b) in zip(fast.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), name
    assert any(
        not torch.equal(a, b)
        for a, b in zip(fast.state_dict().values(), tiny_unet(seed=3).state_dict().values())
    )  # it trained
