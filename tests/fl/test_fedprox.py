"""FedProx: mu = 0 is FedAvg, the proximal gradient is mu (w - w_t), and it limits drift."""

import copy
import math

import pytest
import torch
from torch import nn

import feddiff.fl.strategies.fedprox  # noqa: F401  (registers "fedprox")
from feddiff.fl.data import FederatedData
from feddiff.fl.engine import train_client
from feddiff.fl.strategy import LocalContext
from tests.fl.helpers import make_strategy, run_method, small_model, small_settings


def test_mu_zero_gives_fedavg_weights(toy_data: FederatedData) -> None:
    settings = small_settings(rounds=3)
    prox, _ = run_method(toy_data, {"strategy": "fedprox", "mu": 0.0}, settings, seed=1)
    avg, _ = run_method(toy_data, {"strategy": "fedavg"}, settings, seed=1)
    for key, value in avg.state_dict().items():
        assert torch.allclose(prox.state_dict()[key].double(), value.double(), rtol=0, atol=1e-7), (
            key
        )


def test_proximal_gradient_is_mu_times_distance_to_global() -> None:
    global_model = nn.Linear(2, 1)
    local = copy.deepcopy(global_model)
    with torch.no_grad():
        global_model.weight.copy_(torch.tensor([[0.0, 4.0]]))
        global_model.bias.fill_(1.5)
        local.weight.copy_(torch.tensor([[1.0, 2.0]]))
        local.bias.fill_(0.5)
    mu = 0.3
    strategy = make_strategy(strategy="fedprox", mu=mu)
    ctx = LocalContext(
        client_id=0,
        round=1,
        model=local,
        global_model=global_model,
        num_samples=1,
        settings=small_settings(),
    )
    strategy.configure_client(ctx)
    # Logits that do not depend on the weights: the whole gradient is the proximal term's.
    logits, y = torch.tensor([[0.2, -0.1]]), torch.tensor([1])
    loss = strategy.loss(ctx, torch.zeros(1, 2), y, torch.zeros(1, 2), logits)
    loss.backward()
    ce = torch.nn.functional.cross_entropy(logits, y)
    # (mu/2) * ((1-0)^2 + (2-4)^2 + (0.5-1.5)^2) = 0.15 * 6
    assert math.isclose(float(loss.detach() - ce), 0.9, rel_tol=1e-6)
    # mu * (w - w_t), by hand
    assert torch.allclose(local.weight.grad, torch.tensor([[0.3, -0.6]]))
    assert torch.allclose(local.bias.grad, torch.tensor([-0.3]))
    assert global_model.weight.grad is None  # the anchor is detached


def test_proximal_term_keeps_local_model_nearer_the_global(toy_data: FederatedData) -> None:
    settings = small_settings(local_epochs=3, momentum=0.0, lr=0.1)
    global_model = small_model()

    def drift(mu: float) -> float:
        local = copy.deepcopy(global_model)
        update, _, _ = train_client(
            make_strategy(strategy="fedprox", mu=mu),
            local,
            global_model,
            toy_data,
            client=0,
            round=1,
            seed=3,
            settings=settings,
        )
        params = global_model.named_parameters()
        return float(sum(((update.weights[n] - p.detach()) ** 2).sum() for n, p in params)) ** 0.5

    free, held = drift(0.0), drift(1.0)
    assert held < 0.95 * free


def test_fedprox_learns_on_toy_data(toy_data: FederatedData) -> None:
    _, rows = run_method(toy_data, {"strategy": "fedprox"}, small_settings(rounds=4), seed=3)
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["test_loss"]) for r in rows)
    assert rows[-1]["test_acc"] > 0.5  # chance is 0.25


def test_negative_mu_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="method.mu"):
        make_strategy(strategy="fedprox", mu=-0.1)
