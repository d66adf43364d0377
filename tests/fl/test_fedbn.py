"""FedBN through the engine: batch norm stays with each client, the rest is FedAvg.

Unequal clients (10, 25, 40, 45 samples), two of four per round, momentum SGD. Seed 0
selects clients [0, 3] in round 1 and [1, 3] in round 2, so client 3 takes part twice,
client 1 joins in round 2, client 0 sits round 2 out and client 2 never takes part.
Each client's round-2 training is replayed here with a plain torch loop from the state
FedBN must start it from; the non-BN global weights are averaged here by sample count.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from feddiff.fl.data import FederatedData, epoch_batches
from feddiff.fl.engine import run_federated
from feddiff.fl.sampling import client_generator, sample_clients
from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategy import ClientUpdate, build_strategy
from tests.fl.helpers import small_model, small_settings

SIZES = (10, 25, 40, 45)
SEED = 0
BN_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def _fedbn():
    return build_strategy({"strategy": "fedbn"}, num_clients=4, num_classes=4)


def _unequal(data: FederatedData) -> FederatedData:
    cuts = torch.cumsum(torch.tensor((0, *SIZES)), 0)
    clients = [torch.arange(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]
    return FederatedData(**{**data.__dict__, "clients": clients})


def _bn_names(model: nn.Module) -> set[str]:
    """BN keys found independently: every key of a BatchNorm2d module."""
    names = set()
    for prefix, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            names.update(f"{prefix}.{k}" for k in module.state_dict())
    return names


def _replay(
    start: dict[str, torch.Tensor],
    data: FederatedData,
    client: int,
    rnd: int,
    settings: TrainSettings,
) -> dict[str, torch.Tensor]:
    """One client's local training in plain torch from ``start``; returns its final state."""
    model = small_model()
    model.load_state_dict(start)
    model.train()
    opt = torch.optim.SGD(
        model.parameters(),
        lr=settings.lr,
        momentum=settings.momentum,
        weight_decay=settings.weight_decay,
    )
    gen = client_generator(SEED, rnd, client, data.device)
    for _ in range(settings.local_epochs):
        for idx in epoch_batches(data.clients[client], settings.batch_size, gen):
            x, y = data.train_batch(idx, settings.augment, gen)
            _, logits = model(x)
            opt.zero_grad()
            F.cross_entropy(logits, y).backward()
            opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture
def recorded(toy_data: FederatedData) -> dict:
    """A 2-round FedBN run with the global state and client BN after round 1 and the uploads."""
    data = _unequal(toy_data)
    settings = small_settings(rounds=2, clients_per_round=2, local_epochs=2)
    assert sample_clients(SEED, 1, 4, 2) == [0, 3] and sample_clients(SEED, 2, 4, 2) == [1, 3]
    strategy = _fedbn()
    model = small_model()
    initial = copy.deepcopy(model.state_dict())
    uploads: dict[int, list[ClientUpdate]] = {}
    original = strategy.aggregate

    def aggregate(global_model: nn.Module, updates: list[ClientUpdate], rnd: int) -> None:
        uploads[rnd] = [copy.deepcopy(u) for u in updates]
        original(global_model, updates, rnd)

    strategy.aggregate = aggregate  # type: ignore[method-assign]
    after: dict[int, dict] = {}

    def snapshot(rnd: int, row: dict) -> None:
        after[rnd] = {
            "global": copy.deepcopy(model.state_dict()),
            "clients": copy.deepcopy(strategy.client_states),
        }

    final, rows = run_federated(
        data, model, strategy, settings, seed=SEED, on_round_end=snapshot, progress=False
    )
    return {
        "data": data,
        "settings": settings,
        "strategy": strategy,
        "initial": initial,
        "uploads": uploads,
        "after": after,
        "final": final,
        "rows": rows,
    }


def test_bn_keys_are_every_batch_norm_entry() -> None:
    from feddiff.fl.strategies.fedbn import bn_keys

    model = small_model()
    expected = _bn_names(model)
    assert expected and bn_keys(model) == expected
    assert any(k.endswith("running_var") for k in expected) and any(
        k.endswith(".weight") for k in expected
    )


def test_client_bn_continues_from_its_own_previous_values(recorded: dict) -> None:
    data, settings, after = recorded["data"], recorded["settings"], recorded["after"]
    bn = _bn_names(small_model())
    g1 = after[1]["global"]
    own1 = after[1]["clients"][3]["bn"]
    # client 3, second participation: global non-BN weights + its own round-1 BN
    start = {k: (own1[k] if k in bn else g1[k]) for k in g1}
    expected = _replay(start, data, 3, 2, settings)
    got = {u.client_id: u.weights for u in recorded["uploads"][2]}
    for k, v in expected.items():
        assert torch.allclose(got[3][k], v, atol=1e-5), k
    final_bn = recorded["strategy"].client_states[3]["bn"]
    for k in bn:
        assert torch.allclose(final_bn[k], expected[k], atol=1e-5), k
    # the test can fail: starting from the averaged (global) BN gives other statistics
    averaged = _replay(g1, data, 3, 2, settings)
    assert any(
        not torch.allclose(averaged[k], expected[k], atol=1e-4)
        for k in bn
        if k.endswith("running_mean")
    )


def test_first_participation_starts_from_the_initial_bn(recorded: dict) -> None:
    data, settings, after = recorded["data"], recorded["settings"], recorded["after"]
    bn = _bn_names(small_model())
    g1, init = after[1]["global"], recorded["initial"]
    start = {k: (init[k] if k in bn else g1[k]) for k in g1}
    expected = _replay(start, data, 1, 2, settings)
    final_bn = recorded["strategy"].client_states[1]["bn"]
    for k in bn:
        assert torch.allclose(final_bn[k], expected[k], atol=1e-5), k
    assert 1 not in after[1]["clients"]


def test_absent_clients_keep_their_bn_and_unseen_clients_have_none(recorded: dict) -> None:
    states = recorded["strategy"].client_states
    assert sorted(states) == [0, 1, 3]
    own1 = recorded["after"][1]["clients"][0]["bn"]
    for k, v in own1.items():
        assert torch.equal(states[0]["bn"][k], v), k
        assert v.device.type == "cpu"
    # round 1: clients 0 and 3 trained on different data, so their BN statistics differ
    other = recorded["after"][1]["clients"][3]["bn"]
    assert any(
        not torch.allclose(v, other[k]) for k, v in own1.items() if k.endswith("running_mean")
    )


def test_non_bn_weights_are_the_sample_weighted_average(recorded: dict) -> None:
    bn = _bn_names(small_model())
    for rnd in (1, 2):
        ups = recorded["uploads"][rnd]
        total = sum(SIZES[u.client_id] for u in ups)
        glob = recorded["after"][rnd]["global"]
        for k, v in glob.items():
            if k in bn:
                continue
            mean = sum(u.weights[k].double() * SIZES[u.client_id] for u in ups) / total
            assert torch.allclose(v.double(), mean, atol=1e-6), (rnd, k)
    # and weighting matters here: the plain mean differs
    ups = recorded["uploads"][2]
    k = next(k for k in recorded["after"][2]["global"] if k not in bn)
    plain = sum(u.weights[k] for u in ups) / len(ups)
    assert not torch.allclose(recorded["after"][2]["global"][k], plain, atol=1e-6)


def test_saved_model_bn_is_the_mean_over_clients_seen_and_traffic_excludes_bn(
    recorded: dict,
) -> None:
    bn = _bn_names(small_model())
    states = recorded["strategy"].client_states
    glob = recorded["final"].state_dict()
    n = {c: SIZES[c] for c in states}
    for k in bn:
        if k.endswith("num_batches_tracked"):
            continue
        mean = sum(states[c]["bn"][k] * n[c] for c in states) / sum(n.values())
        assert torch.allclose(glob[k], mean, atol=1e-6), k
    model = small_model()
    shared = sum(
        v.numel() for k, v in model.state_dict().items() if k not in bn and v.is_floating_point()
    )
    for row in recorded["rows"]:
        assert row["params_up"] == 2 * shared and row["params_down"] == 2 * shared


def test_resume_after_interruption_equals_uninterrupted(
    toy_data: FederatedData, tmp_path: Path
) -> None:
    data = _unequal(toy_data)
    settings = small_settings(rounds=4)
    ckpt = tmp_path / "checkpoint.pt"

    def interrupt(rnd: int, row: dict) -> None:
        if rnd == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_federated(
            data,
            small_model(),
            _fedbn(),
            settings,
            seed=5,
            checkpoint_path=ckpt,
            fingerprint="f",
            on_round_end=interrupt,
            progress=False,
        )
    resumed = _fedbn()
    model_r, rows_r = run_federated(
        data,
        small_model(),
        resumed,
        settings,
        seed=5,
        checkpoint_path=ckpt,
        fingerprint="f",
        progress=False,
    )
    straight = _fedbn()
    model_u, rows_u = run_federated(data, small_model(), straight, settings, seed=5, progress=False)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(rows_r) == strip(rows_u)
    for key, value in model_u.state_dict().items():
        assert torch.equal(model_r.state_dict()[key], value), key
    assert sorted(resumed.client_states) == sorted(straight.client_states)
    for c, state in straight.client_states.items():
        for k, v in state["bn"].items():
            assert torch.equal(resumed.client_states[c]["bn"][k], v), (c, k)


# ---- evaluation: every client's own model (shared weights + its BN), as in the paper ----


def _client_model(final: dict[str, torch.Tensor], bn_state: dict[str, torch.Tensor]) -> nn.Module:
    model = small_model()
    model.load_state_dict({k: (bn_state[k] if k in bn_state else v) for k, v in final.items()})
    return model.eval()


@torch.no_grad()
def _scores(model: nn.Module, data: FederatedData, rows: torch.Tensor) -> tuple[float, float]:
    """Accuracy and mean CE of ``model`` on test rows ``rows``, plain torch."""
    x = (data.x_test[rows].float() / 255.0 - data.mean.view(1, -1, 1, 1)) / data.std.view(
        1, -1, 1, 1
    )
    _, logits = model(x)
    y = data.y_test[rows]
    return float((logits.argmax(1) == y).double().mean()), float(
        F.cross_entropy(logits.double(), y)
    )


def test_test_acc_is_the_sample_weighted_mean_of_every_clients_own_model(recorded: dict) -> None:
    data, strategy = recorded["data"], recorded["strategy"]
    final = recorded["final"].state_dict()
    everyone = torch.arange(data.y_test.numel())
    acc = loss = 0.0
    for c, n in enumerate(SIZES):  # client 2 never took part: the initial BN
        bn = (
            strategy.client_states[c]["bn"]
            if c in strategy.client_states
            else {k: recorded["initial"][k] for k in _bn_names(small_model())}
        )
        a, l_ = _scores(_client_model(final, bn), data, everyone)
        acc, loss = acc + n * a, loss + n * l_
    row = recorded["rows"][-1]
    assert row["test_acc"] == pytest.approx(acc / sum(SIZES), abs=1e-9)
    assert row["test_loss"] == pytest.approx(loss / sum(SIZES), rel=1e-5)
    assert not any(k.startswith("test_acc_") for k in row)  # single-domain data: no domain columns
    # the global model (mean BN) scores differently, so the test can tell the two apart
    assert _scores(recorded["final"].eval(), data, everyone)[1] != pytest.approx(
        row["test_loss"], rel=1e-4
    )


def test_per_domain_accuracy_uses_each_domains_clients(toy_data: FederatedData) -> None:
    """Domains a (clients 0, 1), b (client 2) and client 3 split 20 a / 25 b: a domain's
    accuracy is the mean over the clients holding it, weighted by their training samples
    of that domain; ``test_acc`` weights domains by their test sizes (22 a, 38 b)."""
    from feddiff.fl.evaluation import EvalDomains

    d_train = np.array([0] * 35 + [1] * 40 + [0] * 20 + [1] * 25)
    d_test = np.array([0] * 22 + [1] * 38)
    x_train = toy_data.x_train.permute(0, 2, 3, 1).numpy().copy()
    x_test = toy_data.x_test.permute(0, 2, 3, 1).numpy().copy()
    x_train[d_train == 1] = 255 - x_train[d_train == 1]  # domain b: inverted images
    x_test[d_test == 1] = 255 - x_test[d_test == 1]
    data = _unequal(
        FederatedData.from_arrays(
            x_train,
            toy_data.y_train.numpy(),
            x_test,
            toy_data.y_test.numpy(),
            toy_data.clients,
            4,
            toy_data.device,
        )
    )
    domains = EvalDomains.from_arrays(
        ["a", "b"], d_train, d_test, [c.numpy() for c in data.clients], data.device
    )
    strategy = _fedbn()
    final, rows = run_federated(
        data,
        small_model(),
        strategy,
        small_settings(rounds=1, lr=0.01),
        seed=SEED,
        progress=False,
        domains=domains,
    )
    state = final.state_dict()
    weights = {0: {0: 10}, 1: {0: 25}, 2: {1: 40}, 3: {0: 20, 1: 25}}
    per = {0: torch.arange(22), 1: torch.arange(22, 60)}
    expected = {}
    for d in (0, 1):
        num = den = 0.0
        for c, w in weights.items():
            if d in w:
                bn = strategy.client_bn(c)
                num += w[d] * _scores(_client_model(state, bn), data, per[d])[0]
                den += w[d]
        expected[d] = num / den
    plain_a = (
        sum(
            _scores(_client_model(state, strategy.client_bn(c)), data, per[0])[0] for c in (0, 1, 3)
        )
        / 3
    )
    assert plain_a != pytest.approx(expected[0], abs=1e-3)  # the weighting matters here
    row = rows[-1]
    assert row["test_acc_a"] == pytest.approx(expected[0], abs=1e-9)
    assert row["test_acc_b"] == pytest.approx(expected[1], abs=1e-9)
    assert row["test_acc_domain_mean"] == pytest.approx((expected[0] + expected[1]) / 2, abs=1e-9)
    assert row["test_acc"] == pytest.approx((22 * expected[0] + 38 * expected[1]) / 60, abs=1e-9)
