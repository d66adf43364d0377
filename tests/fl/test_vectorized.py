"""Clients trained together (feddiff.fl.vectorized) against the sequential reference path."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from feddiff.fl.aggregation import weighted_average
from feddiff.fl.data import FederatedData, epoch_batches
from feddiff.fl.engine import NonFiniteLossError, run_federated, train_client
from feddiff.fl.sampling import client_generator, sample_clients
from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategies.fedavg import FedAvg
from feddiff.fl.strategy import NoParams, build_strategy
from feddiff.fl.vectorized import (
    FunctionalBatchNorm,
    VectorizedTrainer,
    _StepScratch,
    batch_sizes,
    sgd_step_,
    sgd_update,
    strategy_fallback_reason,
    use_vectorized,
)
from feddiff.models import build_model

# Client sizes with batch 16: 5 (one partial batch), 20 (16 + 4), 47 (16+16+15) and
# 128 (8 full batches): uneven step counts and partial last batches in every epoch.
SIZES = (5, 20, 47, 128)
ATOL = 2e-5


@pytest.fixture(scope="module")
def uneven_data() -> FederatedData:
    rng = np.random.default_rng(1)
    n = sum(SIZES)

    def make(m: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 4, size=m)
        x = rng.integers(0, 60, size=(m, 8, 8, 1))
        for i, c in enumerate(y):
            r, q = divmod(int(c), 2)
            x[i, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4, 0] += 150
        return x.astype(np.uint8), y.astype(np.int64)

    x_train, y_train = make(n)
    x_test, y_test = make(64)
    cuts = np.cumsum((0,) + SIZES)
    clients = [np.arange(cuts[i], cuts[i + 1]) for i in range(len(SIZES))]
    return FederatedData.from_arrays(
        x_train, y_train, x_test, y_test, clients, num_classes=4, device=torch.device("cpu")
    )


def _settings(**kw: Any) -> TrainSettings:
    base: dict[str, Any] = dict(
        rounds=2,
        clients_per_round=4,
        local_epochs=1,
        batch_size=16,
        lr=0.05,
        momentum=0.9,
        weight_decay=1e-3,
        augment={"crop_padding": 1, "hflip": True},
    )
    base.update(kw)
    return TrainSettings.from_dict(base)


def _model(name: str = "cnn", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    width = 0.25 if name == "cnn" else 0.0625
    return build_model(name, num_classes=4, in_channels=1, image_size=8, width=width)


def _strategy(method: dict[str, Any]) -> Any:
    return build_strategy(method, num_clients=len(SIZES), num_classes=4)


def _strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _assert_states_close(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = ATOL
) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(a[key], b[key], atol=atol, rtol=1e-4, msg=key)
        else:
            assert torch.equal(a[key], b[key]), key


# ---- per client: every client's upload, BN buffers included ----------------------------
@pytest.mark.parametrize("compact", [True, False], ids=["compact", "padded"])
@pytest.mark.parametrize(
    "method",
    [{"strategy": "fedavg"}, {"strategy": "fedprox", "mu": 0.1}],
    ids=["fedavg", "fedprox"],
)
def test_each_client_matches_its_sequential_training(
    uneven_data: FederatedData, method: dict[str, Any], compact: bool
) -> None:
    settings = _settings(local_epochs=2)  # momentum carries across the epoch boundary
    global_model = _model()
    clients = list(range(len(SIZES)))
    strategy = _strategy(method)
    trainer = VectorizedTrainer(
        global_model, strategy, settings, uneven_data.device, compact=compact
    )
    updates, losses, steps = trainer.train_round(
        global_model, uneven_data, clients, round=3, seed=11
    )
    local = copy.deepcopy(global_model)
    for k, client in enumerate(clients):
        ref, ref_loss, ref_steps = train_client(
            strategy, local, global_model, uneven_data, client, 3, 11, settings
        )
        assert updates[k].client_id == client and updates[k].num_samples == ref.num_samples
        assert steps[k] == ref_steps == updates[k].num_steps
        # running_mean/var from the client's own batches; num_batches_tracked exact
        _assert_states_close(updates[k].weights, ref.weights)
        torch.testing.assert_close(losses[k], ref_loss, atol=1e-5, rtol=1e-5)


def test_partial_batch_loss_and_batch_norm_match_the_smaller_batch() -> None:
    """A padded batch with a mask gives the unpadded smaller batch's BN output and stats."""
    torch.manual_seed(0)
    for momentum in (0.1, None):
        bn = torch.nn.BatchNorm2d(3, momentum=momentum)
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
        scratch = _StepScratch()
        fbn = FunctionalBatchNorm(copy.deepcopy(bn), "", scratch)
        x = torch.randn(4, 3, 5, 5)
        padded = torch.cat([x, 7.0 * torch.ones(2, 3, 5, 5)])
        scratch.mask = torch.tensor([True] * 4 + [False] * 2)
        out = fbn(padded)[:4]
        ref = bn(x)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(scratch.updates["running_mean"], bn.running_mean)
        torch.testing.assert_close(scratch.updates["running_var"], bn.running_var)
        assert torch.equal(scratch.updates["num_batches_tracked"], bn.num_batches_tracked)


# ---- masking ---------------------------------------------------------------------------
def test_padded_steps_leave_a_finished_clients_state_unchanged() -> None:
    torch.manual_seed(0)
    params = [torch.randn(3, 4, 2), torch.randn(3, 5)]
    grads = [torch.randn_like(p) for p in params]
    momenta = [torch.randn_like(p) for p in params]
    buffers = {
        "bn.running_mean": torch.randn(3, 4),
        "bn.num_batches_tracked": torch.tensor([2, 2, 1]),
    }
    new_buffers = {
        "bn.running_mean": torch.randn(3, 4),
        "bn.num_batches_tracked": torch.tensor([3, 3, 2]),
    }
    before = (
        [p.clone() for p in params],
        [m.clone() for m in momenta],
        {k: v.clone() for k, v in buffers.items()},
    )
    active = torch.tensor([True, False, True]).reshape(3, 1, 1, 1, 1)
    hyper = dict(lr=0.1, momentum=0.9, weight_decay=1e-2)
    VectorizedTrainer._masked_update(
        params, grads, momenta, buffers, new_buffers, active, first=False, hyper=hyper
    )
    for i, p in enumerate(params):
        assert torch.equal(p[1], before[0][i][1])  # the padded client: bitwise unchanged
        assert torch.equal(momenta[i][1], before[1][i][1])
        expect_p, expect_m = sgd_update(
            before[0][i][0], grads[i][0], before[1][i][0], first=False, **hyper
        )
        assert torch.equal(p[0], expect_p) and torch.equal(momenta[i][0], expect_m)
    for key in buffers:
        assert torch.equal(buffers[key][1], before[2][key][1])
        assert torch.equal(buffers[key][0], new_buffers[key][0])


def test_functional_sgd_is_torch_optim_sgd() -> None:
    torch.manual_seed(0)
    for momentum, wd in ((0.9, 1e-2), (0.0, 1e-2), (0.9, 0.0), (0.0, 0.0)):
        ref = [torch.randn(4, 3), torch.randn(5)]
        ours = [p.clone()[None] for p in ref]  # a stack of one client
        ref = [torch.nn.Parameter(p) for p in ref]
        opt = torch.optim.SGD(ref, lr=0.05, momentum=momentum, weight_decay=wd)
        bufs = [torch.zeros_like(p) for p in ours] if momentum else []
        for step in range(4):
            grads = [torch.randn_like(p) for p in ref]
            for p, g in zip(ref, grads):
                p.grad = g.clone()
            opt.step()
            sgd_step_(
                ours,
                [g.clone()[None] for g in grads],
                bufs,
                lr=0.05,
                momentum=momentum,
                weight_decay=wd,
                first=step == 0,
            )
            for p, q in zip(ref, ours):
                assert torch.equal(p.detach(), q[0]), (momentum, wd, step)


def test_batch_sizes_follow_epoch_batches() -> None:
    gen = torch.Generator().manual_seed(0)
    for n in (2, 5, 16, 17, 20, 31, 32, 33, 47, 128):
        expected = [int(b.numel()) for b in epoch_batches(torch.arange(n), 16, gen)]
        assert batch_sizes(n, 16) == expected, n


# ---- whole runs ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "method",
    [
        {"strategy": "fedavg"},
        {"strategy": "fedprox", "mu": 0.1},
        {"strategy": "fednova"},
        {"strategy": "fedavgm"},
    ],
    ids=["fedavg", "fedprox", "fednova", "fedavgm"],
)
def test_vectorised_run_matches_sequential_run(
    uneven_data: FederatedData, method: dict[str, Any]
) -> None:
    settings = _settings(clients_per_round=3)  # sampled clients change from round to round
    seq_model, seq_rows = run_federated(
        uneven_data,
        _model(),
        _strategy(method),
        _settings(clients_per_round=3, vectorize="off"),
        seed=2,
        progress=False,
    )
    vec_model, vec_rows = run_federated(
        uneven_data,
        _model(),
        _strategy(method),
        TrainSettings.from_dict({**settings.to_dict(), "vectorize": "on"}),
        seed=2,
        progress=False,
    )
    _assert_states_close(vec_model.state_dict(), seq_model.state_dict())
    for a, b in zip(_strip(vec_rows), _strip(seq_rows), strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key


def test_resnet_with_shortcut_batch_norm(uneven_data: FederatedData) -> None:
    settings = _settings(rounds=1, local_epochs=1, augment={})
    seq_model, _ = run_federated(
        uneven_data,
        _model("resnet10"),
        _strategy({"strategy": "fedavg"}),
        TrainSettings.from_dict({**settings.to_dict(), "vectorize": "off"}),
        seed=0,
        progress=False,
    )
    vec_model, _ = run_federated(
        uneven_data,
        _model("resnet10"),
        _strategy({"strategy": "fedavg"}),
        TrainSettings.from_dict({**settings.to_dict(), "vectorize": "on"}),
        seed=0,
        progress=False,
    )
    _assert_states_close(vec_model.state_dict(), seq_model.state_dict(), atol=1e-4)


def test_chunking_gives_the_same_result(uneven_data: FederatedData) -> None:
    results = []
    for chunk in (0, 1, 3):
        settings = _settings(rounds=1, vectorize="on", vectorize_chunk=chunk)
        model, rows = run_federated(
            uneven_data,
            _model(),
            _strategy({"strategy": "fedavg"}),
            settings,
            seed=4,
            progress=False,
        )
        results.append((model.state_dict(), _strip(rows)))
    for state, rows in results[1:]:
        _assert_states_close(state, results[0][0], atol=1e-6)
        for a, b in zip(rows, results[0][1], strict=True):
            for key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key


def test_vectorised_run_is_deterministic(uneven_data: FederatedData) -> None:
    settings = _settings(vectorize="on")
    runs = [
        run_federated(
            uneven_data,
            _model(),
            _strategy({"strategy": "fedavg"}),
            settings,
            seed=5,
            progress=False,
        )
        for _ in range(2)
    ]
    assert _strip(runs[0][1]) == _strip(runs[1][1])
    for key, value in runs[0][0].state_dict().items():
        assert torch.equal(value, runs[1][0].state_dict()[key]), key


def _engine_before_vectorisation(
    data: FederatedData, model: torch.nn.Module, settings: TrainSettings, seed: int
) -> tuple[torch.nn.Module, list[dict[str, Any]]]:
    """FedAvg as the engine ran it before issue 7: one client after the other, torch SGD."""
    local = copy.deepcopy(model)
    rows = []
    for rnd in range(1, settings.rounds + 1):
        selected = sample_clients(seed, rnd, len(data.clients), settings.clients_per_round)
        states, weights = [], []
        loss_total = torch.zeros(())
        steps_total = 0
        for client in selected:
            loss_sum = torch.zeros(())
            local.load_state_dict(model.state_dict())
            local.train()
            opt = torch.optim.SGD(
                local.parameters(),
                lr=settings.lr,
                momentum=settings.momentum,
                weight_decay=settings.weight_decay,
            )
            gen = client_generator(seed, rnd, client, data.device)
            for _ in range(settings.local_epochs):
                for idx in epoch_batches(data.clients[client], settings.batch_size, gen):
                    x, y = data.train_batch(idx, settings.augment, gen)
                    loss = F.cross_entropy(local(x)[1], y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    steps_total += 1
                    loss_sum += loss.detach()
            loss_total += loss_sum
            states.append({k: v.detach().clone() for k, v in local.state_dict().items()})
            weights.append(float(data.client_size(client)))
        model.load_state_dict(weighted_average(states, weights))
        model.eval()
        with torch.no_grad():
            correct = torch.zeros(())
            loss_sum = torch.zeros(())
            for x, y in data.test_batches(settings.eval_batch_size):
                logits = model(x)[1]
                loss_sum += F.cross_entropy(logits, y, reduction="sum")
                correct += (logits.argmax(1) == y).sum()
        n = data.y_test.numel()
        rows.append(
            {
                "round": rnd,
                "test_acc": float(correct) / n,
                "test_loss": float(loss_sum) / n,
                "train_loss": float(loss_total) / max(steps_total, 1),
            }
        )
    return model, rows


def test_vectorize_off_reproduces_the_previous_engine_exactly(uneven_data: FederatedData) -> None:
    settings = _settings(clients_per_round=3, vectorize="off")
    model, rows = run_federated(
        uneven_data, _model(), _strategy({"strategy": "fedavg"}), settings, seed=6, progress=False
    )
    ref_model, ref_rows = _engine_before_vectorisation(uneven_data, _model(), settings, seed=6)
    keys = ("round", "test_acc", "test_loss", "train_loss")
    assert [{k: r[k] for k in keys} for r in rows] == ref_rows
    for key, value in ref_model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    # the default (auto) on a CPU is this path too
    auto_model, auto_rows = run_federated(
        uneven_data,
        _model(),
        _strategy({"strategy": "fedavg"}),
        _settings(clients_per_round=3),
        seed=6,
        progress=False,
    )
    assert _strip(auto_rows) == _strip(rows)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in auto_model.state_dict().items())


# ---- selection -------------------------------------------------------------------------
class _CustomLoss(FedAvg):
    Params = NoParams

    def loss(self, ctx, x, y, features, logits):  # type: ignore[no-untyped-def]
        return 2.0 * super().loss(ctx, x, y, features, logits)


class _NaNVectorised(FedAvg):
    Params = NoParams
    vectorizable = True

    def vectorized_loss(self, loss, params, global_params):  # type: ignore[no-untyped-def]
        return loss * float("nan")


def test_which_strategies_are_vectorised() -> None:
    for name in ("fedavg", "fedprox", "fedavgm", "fednova"):
        assert strategy_fallback_reason(_strategy({"strategy": name})) is None, name
    for name in ("moon", "scaffold", "fednh"):
        assert strategy_fallback_reason(_strategy({"strategy": name})) is not None, name
    custom = _CustomLoss(NoParams(), num_clients=4, num_classes=4)
    assert "overrides loss()" in strategy_fallback_reason(custom)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")  # only the device type is read
    fedavg = _strategy({"strategy": "fedavg"})
    assert not use_vectorized(_settings(), custom, _model(), cuda)  # auto falls back
    assert use_vectorized(_settings(), fedavg, _model(), cuda)
    assert not use_vectorized(_settings(), fedavg, _model(), cpu)  # auto: sequential on CPU
    assert use_vectorized(_settings(vectorize="on"), fedavg, _model(), cpu)
    assert not use_vectorized(_settings(vectorize="off"), fedavg, _model(), cuda)
    with pytest.raises(ValueError, match="vectorize is 'on'"):
        use_vectorized(
            _settings(vectorize="on"), _strategy({"strategy": "scaffold"}), _model(), cpu
        )
    dropout = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    assert not use_vectorized(_settings(), fedavg, dropout, cuda)


def test_vectorize_setting_is_validated() -> None:
    with pytest.raises(ValueError, match="training.vectorize"):
        _settings(vectorize="maybe")
    with pytest.raises(ValueError, match="vectorize_chunk"):
        _settings(vectorize_chunk=-1)
    # YAML 1.1 reads a bare `off` / `on` as a boolean
    assert _settings(vectorize=False).vectorize == "off"
    assert _settings(vectorize=True).vectorize == "on"


def test_nan_in_vectorised_round_names_round_and_client(uneven_data: FederatedData) -> None:
    strategy = _NaNVectorised(NoParams(), num_clients=4, num_classes=4)
    with pytest.raises(NonFiniteLossError, match=r"round 1, client \d"):
        run_federated(
            uneven_data,
            _model(),
            strategy,
            _settings(rounds=1, vectorize="on"),
            seed=0,
            progress=False,
        )


def test_tiny_clients_fall_back_to_sequential_for_the_round(uneven_data: FederatedData) -> None:
    one = FederatedData(
        **{**uneven_data.__dict__, "clients": [torch.arange(1), torch.arange(1, 40)]}
    )
    trainer = VectorizedTrainer(
        _model(), _strategy({"strategy": "fedavg"}), _settings(), one.device
    )
    assert not trainer.supports_round(one, [0, 1])
    assert trainer.supports_round(one, [1])
