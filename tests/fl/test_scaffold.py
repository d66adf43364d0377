"""SCAFFOLD: option II, the server control variate, no-drift = FedAvg, traffic, resume."""

import copy
import math
from pathlib import Path

import pytest
import torch

from feddiff.fl.data import FederatedData
from feddiff.fl.engine import run_federated, train_client
from feddiff.fl.strategies.scaffold import Scaffold
from feddiff.fl.strategy import LocalContext, build_strategy
from tests.fl.helpers import small_model, small_settings


def _scaffold(num_clients: int = 4, **params: object) -> Scaffold:
    return build_strategy(
        {"strategy": "scaffold", **params}, num_clients=num_clients, num_classes=4
    )


def test_client_control_variate_follows_option_ii(toy_data: FederatedData) -> None:
    settings = small_settings(local_epochs=2)
    strategy = _scaffold()
    global_model = small_model()
    strategy.setup(global_model)
    gen = torch.Generator().manual_seed(1)
    strategy.c = {k: torch.randn(v.shape, generator=gen) * 0.1 for k, v in strategy.c.items()}
    c_old = {k: torch.randn(v.shape, generator=gen) * 0.1 for k, v in strategy.c.items()}
    strategy.client_states[2] = {"c": copy.deepcopy(c_old)}
    x = {k: v.detach().clone() for k, v in global_model.named_parameters()}

    update, _, steps = train_client(
        strategy,
        copy.deepcopy(global_model),
        global_model,
        toy_data,
        client=2,
        round=1,
        seed=0,
        settings=settings,
    )
    assert steps == 4  # 30 samples, batches of 16, two epochs
    c_new = strategy.client_states[2]["c"]
    # Effective plain-SGD steps of 4 heavy-ball steps with rho = 0.9:
    # sum_t (1 - 0.9^t) / 0.1 for t = 1..4 = 1 + 1.9 + 2.71 + 3.439 = 9.049
    effective = 9.049
    for k in x:
        expected = c_old[k] - strategy.c[k] + (x[k] - update.weights[k]) / (effective * settings.lr)
        assert torch.allclose(c_new[k], expected, atol=1e-5), k
        assert torch.allclose(update.extras["delta_c"][k], c_new[k] - c_old[k], atol=1e-6), k


def test_correction_c_minus_ci_is_added_to_the_gradient() -> None:
    strategy = _scaffold()
    model = small_model()
    strategy.setup(model)
    strategy.c = {k: torch.full_like(v, 3.0) for k, v in strategy.c.items()}
    strategy.client_states[0] = {"c": {k: torch.full_like(v, 1.0) for k, v in strategy.c.items()}}
    ctx = LocalContext(
        client_id=0,
        round=1,
        model=model,
        global_model=model,
        num_samples=1,
        settings=small_settings(),
    )
    strategy.configure_client(ctx)
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    strategy.before_step(ctx)
    for name, p in model.named_parameters():
        assert torch.equal(p.grad, torch.full_like(p, 2.5)), name


def test_server_control_variate_is_the_clients_mean_under_full_participation(
    toy_data: FederatedData,
) -> None:
    strategy = _scaffold()
    run_federated(
        toy_data,
        small_model(),
        strategy,
        small_settings(rounds=2, clients_per_round=4),
        seed=1,
        progress=False,
    )
    assert sorted(strategy.client_states) == [0, 1, 2, 3]
    for k, c in strategy.c.items():
        mean = torch.stack([strategy.client_states[i]["c"][k] for i in range(4)]).mean(0)
        assert torch.allclose(c, mean, atol=1e-5), k
    assert any(c.abs().max() > 1e-3 for c in strategy.c.values())  # not trivially zero


def test_without_client_drift_scaffold_is_fedavg(toy_data: FederatedData) -> None:
    # Every client holds the same 30 samples and takes full-batch steps, so all clients
    # compute the same update; then c = c_i for all i and the correction vanishes.
    same = torch.arange(30)
    data = FederatedData(**{**toy_data.__dict__, "clients": [same] * 4})
    settings = small_settings(rounds=3, clients_per_round=4, local_epochs=2, batch_size=30)
    init = small_model()
    fedavg = build_strategy({"strategy": "fedavg"}, num_clients=4, num_classes=4)
    avg_model, _ = run_federated(
        data, copy.deepcopy(init), fedavg, settings, seed=4, progress=False
    )
    strategy = _scaffold()
    scaffold_model, _ = run_federated(
        data, copy.deepcopy(init), strategy, settings, seed=4, progress=False
    )
    assert any(c.abs().max() > 1e-3 for c in strategy.c.values())  # control variates are live
    for key, value in avg_model.state_dict().items():
        assert torch.allclose(scaffold_model.state_dict()[key].float(), value.float(), atol=1e-5), (
            key
        )


def test_scaffold_learns_and_sends_control_variates(toy_data: FederatedData) -> None:
    model, rows = run_federated(
        toy_data, small_model(), _scaffold(), small_settings(rounds=5), seed=3, progress=False
    )
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["test_loss"]) for r in rows)
    assert rows[-1]["test_acc"] > 0.5  # 4 classes: chance is 0.25
    state = sum(v.numel() for v in model.state_dict().values() if v.is_floating_point())
    params = sum(p.numel() for p in model.parameters())
    assert state > params  # batch-norm buffers carry no control variate
    assert rows[0]["params_up"] == rows[0]["params_down"] == 2 * (state + params)


def test_global_lr_scales_the_server_step(toy_data: FederatedData) -> None:
    settings = small_settings(rounds=1)
    init = small_model()
    full, _ = run_federated(
        toy_data, copy.deepcopy(init), _scaffold(), settings, seed=6, progress=False
    )
    half, _ = run_federated(
        toy_data, copy.deepcopy(init), _scaffold(global_lr=0.5), settings, seed=6, progress=False
    )
    for name, p0 in init.named_parameters():
        expected = p0 + 0.5 * (dict(full.named_parameters())[name] - p0)
        assert torch.allclose(dict(half.named_parameters())[name], expected, atol=1e-6), name
    with pytest.raises(ValueError, match="global_lr"):
        _scaffold(global_lr=0.0)


def test_resume_after_interruption_equals_uninterrupted(
    toy_data: FederatedData, tmp_path: Path
) -> None:
    settings = small_settings(rounds=4)
    ckpt = tmp_path / "checkpoint.pt"

    def interrupt(rnd: int, row: dict) -> None:
        if rnd == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_federated(
            toy_data,
            small_model(),
            _scaffold(),
            settings,
            seed=5,
            checkpoint_path=ckpt,
            fingerprint="f",
            on_round_end=interrupt,
            progress=False,
        )
    resumed_rounds: list[int] = []
    resumed = _scaffold()
    model_r, rows_r = run_federated(
        toy_data,
        small_model(),
        resumed,
        settings,
        seed=5,
        checkpoint_path=ckpt,
        fingerprint="f",
        on_round_end=lambda r, _: resumed_rounds.append(r),
        progress=False,
    )
    assert resumed_rounds == [3, 4]
    straight = _scaffold()
    model_u, rows_u = run_federated(
        toy_data, small_model(), straight, settings, seed=5, progress=False
    )
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(rows_r) == strip(rows_u)
    for key, value in model_u.state_dict().items():
        assert torch.equal(model_r.state_dict()[key], value), key
    for key, value in straight.c.items():
        assert torch.equal(resumed.c[key], value), key
    assert sorted(resumed.client_states) == sorted(straight.client_states)
