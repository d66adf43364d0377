"""FedAvgM: beta = 0 is FedAvg, the velocity arithmetic by hand, and exact resume."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import feddiff.fl.strategies.fedavgm  # noqa: F401  (registers "fedavgm")
from feddiff.fl.data import FederatedData
from feddiff.fl.strategy import ClientUpdate
from tests.fl.helpers import make_strategy, run_method, small_settings


def test_zero_momentum_gives_fedavg_weights(toy_data: FederatedData) -> None:
    settings = small_settings(rounds=3)
    m, _ = run_method(toy_data, {"strategy": "fedavgm", "server_momentum": 0.0}, settings, seed=1)
    avg, _ = run_method(toy_data, {"strategy": "fedavg"}, settings, seed=1)
    for key, value in avg.state_dict().items():
        assert torch.allclose(m.state_dict()[key].double(), value.double(), rtol=0, atol=1e-6), key


def _bn_model() -> nn.Module:
    """Linear + batch norm: parameters (momentum) and float/int buffers (averaged)."""
    model = nn.Sequential(nn.Linear(1, 1), nn.BatchNorm1d(1))
    _fill(model.state_dict(), 1.0, 0)
    return model


def _fill(state: dict[str, torch.Tensor], value: float, count: int) -> dict[str, torch.Tensor]:
    for key, t in state.items():
        t.fill_(value if t.is_floating_point() else count)
    return state


def _updates(model: nn.Module, clients: list[tuple[int, float, int]]) -> list[ClientUpdate]:
    """One update per (num_samples, value of every float tensor, num_batches_tracked)."""
    out = []
    for i, (n, value, count) in enumerate(clients):
        weights = _fill({k: v.clone() for k, v in model.state_dict().items()}, value, count)
        out.append(
            ClientUpdate(client_id=i, num_samples=n, num_steps=1, weights=weights, params_up=0)
        )
    return out


def _check(model: nn.Module, param: float, buffer: float, count: int) -> None:
    params = {n for n, _ in model.named_parameters()}
    for key, t in model.state_dict().items():
        expected = param if key in params else buffer if t.is_floating_point() else count
        want = torch.full_like(t, expected, dtype=torch.float64)
        assert torch.allclose(t.double(), want), (key, t, expected)


def test_momentum_arithmetic_over_two_rounds_by_hand() -> None:
    model = _bn_model()
    strategy = make_strategy(strategy="fedavgm", server_momentum=0.5, server_lr=0.5)
    strategy.setup(model)
    # Round 1: average (1*0.2 + 3*0.6)/4 = 0.5; delta = 1 - 0.5 = 0.5; v = 0.5;
    # w = 1 - 0.5*0.5 = 0.75. Buffers: plain average 0.5; num_batches_tracked from the
    # heaviest client (7).
    strategy.aggregate(model, _updates(model, [(1, 0.2, 5), (3, 0.6, 7)]), round=1)
    _check(model, param=0.75, buffer=0.5, count=7)
    v1 = strategy.state_dict()["server_momentum"]
    assert set(v1) == {n for n, _ in model.named_parameters()}  # no momentum on buffers
    assert all(torch.allclose(v, torch.full_like(v, 0.5)) for v in v1.values())
    # Round 2: average (0.1 + 0.5)/2 = 0.3; delta = 0.75 - 0.3 = 0.45;
    # v = 0.5*0.5 + 0.45 = 0.7; w = 0.75 - 0.5*0.7 = 0.4. Buffers 0.3.
    strategy.aggregate(model, _updates(model, [(2, 0.1, 9), (2, 0.5, 4)]), round=2)
    _check(model, param=0.4, buffer=0.3, count=9)
    v2 = strategy.state_dict()["server_momentum"]
    assert all(torch.allclose(v, torch.full_like(v, 0.7)) for v in v2.values())


def test_state_dict_round_trip_continues_the_velocity() -> None:
    model_a = _bn_model()
    a = make_strategy(strategy="fedavgm", server_momentum=0.5, server_lr=0.5)
    a.setup(model_a)
    a.aggregate(model_a, _updates(model_a, [(1, 0.2, 5), (3, 0.6, 7)]), round=1)
    saved = a.state_dict()
    model_b = _bn_model()
    model_b.load_state_dict(model_a.state_dict())
    b = make_strategy(strategy="fedavgm", server_momentum=0.5, server_lr=0.5)
    b.setup(model_b)
    b.load_state_dict(saved)
    a.aggregate(model_a, _updates(model_a, [(2, 0.1, 9), (2, 0.5, 4)]), round=2)
    b.aggregate(model_b, _updates(model_b, [(2, 0.1, 9), (2, 0.5, 4)]), round=2)
    _check(model_b, param=0.4, buffer=0.3, count=9)  # not 0.525, which v = 0 would give
    for key, value in model_a.state_dict().items():
        assert torch.equal(model_b.state_dict()[key], value), key


def test_resume_after_interruption_equals_uninterrupted_run(
    toy_data: FederatedData, tmp_path: Path
) -> None:
    settings, method = small_settings(rounds=4), {"strategy": "fedavgm"}
    ckpt = tmp_path / "checkpoint.pt"

    def interrupt(rnd: int, row: dict) -> None:
        if rnd == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_method(
            toy_data,
            method,
            settings,
            seed=5,
            checkpoint_path=ckpt,
            fingerprint="f",
            on_round_end=interrupt,
        )
    resumed: list[int] = []
    model_r, rows_r = run_method(
        toy_data,
        method,
        settings,
        seed=5,
        checkpoint_path=ckpt,
        fingerprint="f",
        on_round_end=lambda r, _: resumed.append(r),
    )
    assert resumed == [3, 4]  # it really resumed
    model_u, rows_u = run_method(toy_data, method, settings, seed=5)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(rows_r) == strip(rows_u)
    for key, value in model_u.state_dict().items():
        assert torch.equal(model_r.state_dict()[key], value), key


def test_fedavgm_learns_on_toy_data(toy_data: FederatedData) -> None:
    # Heavy-ball momentum overshoots before it settles: give it a few more rounds.
    _, rows = run_method(toy_data, {"strategy": "fedavgm"}, small_settings(rounds=6), seed=3)
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["test_loss"]) for r in rows)
    assert rows[-1]["test_acc"] > 0.5  # chance is 0.25


@pytest.mark.parametrize(
    ("key", "value"), [("server_momentum", 1.0), ("server_momentum", -0.1), ("server_lr", 0.0)]
)
def test_bad_hyperparameters_are_rejected_by_name(key: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"method.{key}"):
        make_strategy(strategy="fedavgm", **{key: value})
