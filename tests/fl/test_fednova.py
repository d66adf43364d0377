"""FedNova: the normaliser a_i, FedAvg for equal step counts, the normalised average by hand."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import feddiff.fl.strategies.fednova  # noqa: F401  (registers "fednova")
from feddiff.fl.data import FederatedData
from feddiff.fl.strategies.fednova import normaliser
from feddiff.fl.strategy import LocalContext
from tests.fl.helpers import make_strategy, run_method, small_settings


@pytest.fixture
def unequal_data(toy_data: FederatedData) -> FederatedData:
    """The toy data with clients of 10, 20, 40, 50 samples: 1, 2, 3, 4 steps of batch 16."""
    clients = [torch.as_tensor(c) for c in np.split(np.arange(120), [10, 30, 70])]
    return FederatedData(**{**toy_data.__dict__, "clients": clients})


def test_normaliser_by_hand() -> None:
    assert normaliser(7, 0.0) == 7.0  # plain SGD: a_i = tau_i
    assert normaliser(1, 0.9) == pytest.approx(1.0)  # one step is one step
    # rho = 0.9, tau = 3: step weights 1, 1.9, 2.71 -> 5.61 = (3 - 0.9 * 0.271 / 0.1) / 0.1
    assert normaliser(3, 0.9) == pytest.approx(5.61)


def test_normaliser_is_torch_sgd_displacement_for_a_constant_gradient() -> None:
    lr, rho, tau = 0.1, 0.9, 5
    g = torch.tensor([1.0, -2.0])
    w = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([w], lr=lr, momentum=rho)  # what the engine builds
    for _ in range(tau):
        opt.zero_grad()
        (g * w).sum().backward()
        opt.step()
    assert torch.allclose(w.detach(), -lr * normaliser(tau, rho) * g)


def test_equal_step_counts_give_fedavg_weights(toy_data: FederatedData) -> None:
    assert len({c.numel() for c in toy_data.clients}) == 1  # every client takes 2 steps
    settings = small_settings(rounds=3)
    nova, _ = run_method(toy_data, {"strategy": "fednova"}, settings, seed=1)
    avg, _ = run_method(toy_data, {"strategy": "fedavg"}, settings, seed=1)
    for key, value in avg.state_dict().items():
        assert torch.allclose(nova.state_dict()[key].double(), value.double(), rtol=0, atol=1e-6), (
            key
        )


def test_unequal_steps_give_the_normalised_average_by_hand() -> None:
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 1.0]]))
        model.bias.fill_(0.0)
    strategy = make_strategy(strategy="fednova")
    settings = small_settings(momentum=0.0)
    updates = []
    clients = [(3, 1, [0.0, 1.0], 0.5), (1, 4, [1.0, -3.0], 2.0)]  # n, steps, weight, bias
    for cid, (n, steps, weight, bias) in enumerate(clients):
        local = nn.Linear(2, 1)
        with torch.no_grad():
            local.weight.copy_(torch.tensor([weight]))
            local.bias.fill_(bias)
        ctx = LocalContext(
            client_id=cid,
            round=1,
            model=local,
            global_model=model,
            num_samples=n,
            settings=settings,
            num_steps=steps,
        )
        updates.append(strategy.finish_client(ctx))
    strategy.aggregate(model, updates, round=1)
    # p = (0.75, 0.25), a = (1, 4), tau_eff = 0.75 + 1 = 1.75
    # d_1 = ([1, 0], -0.5), d_2 = ([0, 4], -2) / 4 = ([0, 1], -0.5)
    # sum p d = ([0.75, 0.25], -0.5) -> w = [1, 1] - 1.75 [0.75, 0.25] = [-0.3125, 0.5625]
    #                                  b = 0 + 1.75 * 0.5 = 0.875
    assert torch.allclose(model.weight, torch.tensor([[-0.3125, 0.5625]]))
    assert torch.allclose(model.bias, torch.tensor([0.875]))
    # FedAvg would give 0.75 [0, 1] + 0.25 [1, -3] = [0.25, 0]
    assert not torch.allclose(model.weight, torch.tensor([[0.25, 0.0]]))


def test_unequal_steps_differ_from_fedavg_and_learn(unequal_data: FederatedData) -> None:
    settings = small_settings(rounds=4, clients_per_round=4)
    nova, rows = run_method(unequal_data, {"strategy": "fednova"}, settings, seed=3)
    avg, _ = run_method(unequal_data, {"strategy": "fedavg"}, settings, seed=3)
    gap = max(
        float((nova.state_dict()[k] - v).abs().max())
        for k, v in avg.state_dict().items()
        if v.is_floating_point()
    )
    assert gap > 1e-3
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["test_loss"]) for r in rows)
    assert rows[-1]["test_acc"] > 0.5  # chance is 0.25


def test_global_momentum_resumes_exactly(unequal_data: FederatedData, tmp_path: Path) -> None:
    settings, method = small_settings(rounds=4), {"strategy": "fednova", "gmf": 0.5}
    ckpt = tmp_path / "checkpoint.pt"

    def interrupt(rnd: int, row: dict) -> None:
        if rnd == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_method(
            unequal_data,
            method,
            settings,
            seed=5,
            checkpoint_path=ckpt,
            fingerprint="f",
            on_round_end=interrupt,
        )
    assert torch.load(ckpt, weights_only=False)["strategy"]["server_momentum"]  # gmf keeps a buffer
    resumed: list[int] = []
    model_r, _ = run_method(
        unequal_data,
        method,
        settings,
        seed=5,
        checkpoint_path=ckpt,
        fingerprint="f",
        on_round_end=lambda r, _: resumed.append(r),
    )
    assert resumed == [3, 4]
    model_u, _ = run_method(unequal_data, method, settings, seed=5)
    for key, value in model_u.state_dict().items():
        assert torch.equal(model_r.state_dict()[key], value), key


def test_bad_gmf_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="method.gmf"):
        make_strategy(strategy="fednova", gmf=1.0)
