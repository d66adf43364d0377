"""Every method's defining property, run through the engine and replayed in plain torch.

Setting (all tests): five clients of 4, 9, 12, 6 and 16 samples with non-IID labels
(class 3 only on client 4), three sampled per round (seed 2: round 1 = {0, 1, 2},
round 2 = {0, 2, 4}; client 3 never takes part), batches of 4 over two local epochs,
so clients take 2, 4, 6 and 8 steps (client 1's trailing single sample is dropped),
SGD momentum 0.9 and weight decay 1e-3. The model is a float64 tanh MLP, and each test
compares the engine's result with :mod:`tests.fl.reference`, which imports nothing
from ``feddiff``: the tolerance (1e-9) is far below any algorithmic difference.

Each test also checks that the setting has teeth: the alternative a wrong
implementation would compute (plain mean, 1 - rho, ...) differs from the right one by
much more than the tolerance.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from feddiff.fl.data import FederatedData
from feddiff.fl.engine import run_federated
from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategy import Strategy, build_strategy
from tests.fl.reference import (
    Params,
    TinyNet,
    client_batches,
    cosine_forward,
    effective_steps,
    local_sgd,
    moon_forward,
    sample_weighted,
    sampled,
    tiny_forward,
)

SEED = 2
NUM_CLIENTS, PER_ROUND, EPOCHS, BATCH = 5, 3, 2, 4
LR, MOMENTUM, WD = 0.1, 0.9, 1e-3
LABELS = [
    [0, 0, 0, 1],
    [0, 1, 1, 1, 1, 2, 2, 0, 1],
    [2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0],
    [0, 2, 2, 2, 0, 0],
    [3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 2, 2, 2, 1, 1, 1],
]
TOL = 1e-9
TOL_VMAP = 1e-7  # the vectorised path takes the cross-entropy in float32 (for bf16 autocast)

# tiny models: threads only add OpenMP spinning on a busy machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = rng.integers(0, 60, size=(len(labels), 1, 4, 4))
    for i, c in enumerate(labels):
        r, q = divmod(int(c), 2)
        x[i, 0, 2 * r : 2 * r + 2, 2 * q : 2 * q + 2] += 150
    return x.astype(np.uint8)


@pytest.fixture(scope="module")
def data() -> FederatedData:
    """Mean 0 and std 1, so the engine's normalisation is x / 255 exactly."""
    rng = np.random.default_rng(0)
    y = np.concatenate([np.array(c) for c in LABELS])
    y_test = rng.integers(0, 4, size=12)
    cuts = np.cumsum([0] + [len(c) for c in LABELS])
    return FederatedData(
        x_train=torch.from_numpy(_images(y, rng)),
        y_train=torch.from_numpy(y).long(),
        x_test=torch.from_numpy(_images(y_test, rng)),
        y_test=torch.from_numpy(y_test).long(),
        clients=[torch.arange(cuts[i], cuts[i + 1]) for i in range(NUM_CLIENTS)],
        mean=torch.zeros(1),
        std=torch.ones(1),
        num_classes=4,
    )


def _xy(data: FederatedData) -> tuple[torch.Tensor, torch.Tensor]:
    return (data.x_train.float() / 255).double().flatten(1), data.y_train


def _settings(rounds: int = 2, vectorize: str = "off") -> TrainSettings:
    return TrainSettings.from_dict(
        dict(
            rounds=rounds,
            clients_per_round=PER_ROUND,
            local_epochs=EPOCHS,
            batch_size=BATCH,
            lr=LR,
            momentum=MOMENTUM,
            weight_decay=WD,
            vectorize=vectorize,
        )
    )


def _engine(
    data: FederatedData, method: dict[str, Any], rounds: int = 2, vectorize: str = "off"
) -> tuple[Strategy, Params, Params, list[dict[str, Any]]]:
    """Run the engine; return the strategy, the initial and final states and the metrics."""
    strategy = build_strategy(method, num_clients=NUM_CLIENTS, num_classes=4)
    init = strategy.wrap_model(TinyNet()).double()  # MOON's and FedNH's heads too
    start = {k: v.detach().clone() for k, v in init.state_dict().items()}
    model, rows = run_federated(
        data, copy.deepcopy(init), strategy, _settings(rounds, vectorize), seed=SEED, progress=False
    )
    return strategy, start, {k: v.detach().clone() for k, v in model.state_dict().items()}, rows


def _batches(data: FederatedData, rnd: int, client: int) -> list[list[torch.Tensor]]:
    return client_batches(SEED, rnd, client, data.clients[client], BATCH, EPOCHS)


def _close(
    got: Mapping[str, torch.Tensor], want: Mapping[str, torch.Tensor], tol: float = TOL
) -> None:
    assert set(got) == set(want)
    for k in want:
        err = float((got[k].double() - want[k].double()).abs().max())
        assert err <= tol, (k, err, got[k], want[k])


def _tol(vectorize: str) -> float:
    return TOL_VMAP if vectorize == "on" else TOL


def _gap(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _ce(p: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(tiny_forward(p, x)[1], y)


def test_setting_breaks_the_symmetries(data: FederatedData) -> None:
    assert sampled(SEED, 1, 5, 3) == [0, 1, 2] and sampled(SEED, 2, 5, 3) == [0, 2, 4]
    steps = [sum(len(e) for e in _batches(data, 1, c)) for c in range(NUM_CLIENTS)]
    assert steps == [2, 4, 6, 4, 8]


# ---- FedAvg ---------------------------------------------------------------------------
@pytest.mark.parametrize("vectorize", ["off", "on"])
def test_fedavg_is_the_sample_weighted_mean_over_the_sampled_clients(
    data: FederatedData, vectorize: str
) -> None:
    _, start, got, rows = _engine(data, {"strategy": "fedavg"}, vectorize=vectorize)
    x, y = _xy(data)
    w = start
    for rnd in (1, 2):
        clients = sampled(SEED, rnd, NUM_CLIENTS, PER_ROUND)
        runs = [local_sgd(w, _batches(data, rnd, c), x, y, _ce, LR, MOMENTUM, WD) for c in clients]
        counts = [data.clients[c].numel() for c in clients]
        uniform = sample_weighted([r[0] for r in runs], [1] * len(runs))
        w = sample_weighted([r[0] for r in runs], counts)
        assert _gap(w, uniform) > 1e-3  # sample-weighted is not the plain mean here
        # train_loss: mean batch loss over every step of the round
        mean_loss = sum(r[2] for r in runs) / sum(r[1] for r in runs)
        assert rows[rnd - 1]["train_loss"] == pytest.approx(
            mean_loss, rel=1e-6
        )  # summed in float32
    _close(got, w, _tol(vectorize))


# ---- FedProx --------------------------------------------------------------------------
@pytest.mark.parametrize("vectorize", ["off", "on"])
def test_fedprox_pulls_towards_the_rounds_global_model(data: FederatedData, vectorize: str) -> None:
    mu = 0.5
    _, start, got, _ = _engine(data, {"strategy": "fedprox", "mu": mu}, vectorize=vectorize)
    x, y = _xy(data)
    w = start
    for rnd in (1, 2):
        anchor = {k: v.clone() for k, v in w.items()}

        def loss(p: Params, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            prox = sum(((p[k] - anchor[k]) ** 2).sum() for k in p)
            return _ce(p, xb, yb) + 0.5 * mu * prox

        clients = sampled(SEED, rnd, NUM_CLIENTS, PER_ROUND)
        new = [
            local_sgd(w, _batches(data, rnd, c), x, y, loss, LR, MOMENTUM, WD)[0] for c in clients
        ]
        plain = [
            local_sgd(w, _batches(data, rnd, c), x, y, _ce, LR, MOMENTUM, WD)[0] for c in clients
        ]
        assert _gap(new[-1], plain[-1]) > 1e-3  # the proximal term acts
        w = sample_weighted(new, [data.clients[c].numel() for c in clients])
    _close(got, w, _tol(vectorize))


# ---- FedAvgM --------------------------------------------------------------------------
@pytest.mark.parametrize("vectorize", ["off", "on"])
def test_fedavgm_applies_server_momentum_with_server_lr(
    data: FederatedData, vectorize: str
) -> None:
    beta, server_lr = 0.9, 0.7
    strategy, start, got, _ = _engine(
        data,
        {"strategy": "fedavgm", "server_momentum": beta, "server_lr": server_lr},
        vectorize=vectorize,
    )
    x, y = _xy(data)
    w, v = start, None
    for rnd in (1, 2):
        clients = sampled(SEED, rnd, NUM_CLIENTS, PER_ROUND)
        new = [
            local_sgd(w, _batches(data, rnd, c), x, y, _ce, LR, MOMENTUM, WD)[0] for c in clients
        ]
        avg = sample_weighted(new, [data.clients[c].numel() for c in clients])
        delta = {k: w[k] - avg[k] for k in w}
        v = delta if v is None else {k: beta * v[k] + delta[k] for k in w}
        w = {k: w[k] - server_lr * v[k] for k in w}
    _close(got, w, _tol(vectorize))
    _close(strategy.state_dict()["server_momentum"], v, _tol(vectorize))
    assert _gap(w, avg) > 1e-3  # not FedAvg


# ---- FedNova --------------------------------------------------------------------------
@pytest.mark.parametrize("gmf", [0.0, 0.5])
@pytest.mark.parametrize("vectorize", ["off", "on"])
def test_fednova_normalises_by_momentum_aware_step_counts(
    data: FederatedData, vectorize: str, gmf: float
) -> None:
    strategy, start, got, _ = _engine(
        data, {"strategy": "fednova", "gmf": gmf}, vectorize=vectorize
    )
    x, y = _xy(data)
    w, v = start, None
    for rnd in (1, 2):
        clients = sampled(SEED, rnd, NUM_CLIENTS, PER_ROUND)
        runs = [local_sgd(w, _batches(data, rnd, c), x, y, _ce, LR, MOMENTUM, WD) for c in clients]
        n = [data.clients[c].numel() for c in clients]
        p = [ni / sum(n) for ni in n]
        a = [effective_steps(steps, MOMENTUM) for _, steps, _ in runs]
        assert len(set(a)) == len(a) and a[0] != runs[0][1]  # unequal, and not the raw step count
        tau_eff = sum(pi * ai for pi, ai in zip(p, a))
        delta = {
            k: tau_eff * sum(pi * (w[k] - r[0][k]) / ai for pi, ai, r in zip(p, a, runs)) for k in w
        }
        v = delta if v is None or gmf == 0 else {k: gmf * v[k] + delta[k] for k in w}
        w = {k: w[k] - v[k] for k in w}
        fedavg = sample_weighted([r[0] for r in runs], n)
    _close(got, w, _tol(vectorize))
    assert _gap(w, fedavg) > 1e-3  # unequal step counts: not FedAvg
    if gmf:
        _close(strategy.state_dict()["server_momentum"], v, _tol(vectorize))


# ---- SCAFFOLD -------------------------------------------------------------------------
def test_scaffold_control_variates_option_ii_and_partial_participation(data: FederatedData) -> None:
    eta_g = 0.7
    strategy, start, got, _ = _engine(data, {"strategy": "scaffold", "global_lr": eta_g})
    x, y = _xy(data)
    w = start
    c = {k: torch.zeros_like(t) for k, t in w.items()}
    c_i: dict[int, Params] = {}
    for rnd in (1, 2):
        clients = sampled(SEED, rnd, NUM_CLIENTS, PER_ROUND)
        ys, deltas = [], []
        for cl in clients:
            ci = c_i.get(cl, {k: torch.zeros_like(t) for k, t in w.items()})
            corr = {k: c[k] - ci[k] for k in w}
            yi, steps, _ = local_sgd(
                w, _batches(data, rnd, cl), x, y, _ce, LR, MOMENTUM, WD, correction=corr
            )
            # option II: c_i+ = c_i - c + (x - y_i) / (a(K, rho) lr)
            ci_new = {
                k: ci[k] - c[k] + (w[k] - yi[k]) / (effective_steps(steps, MOMENTUM) * LR)
                for k in w
            }
            deltas.append({k: ci_new[k] - ci[k] for k in w})
            c_i[cl] = ci_new
            ys.append(yi)
        mean_y = sample_weighted(ys, [1] * len(ys))  # the paper's plain mean
        w = {k: w[k] + eta_g * (mean_y[k] - w[k]) for k in w}
        c = {
            k: c[k] + len(clients) / NUM_CLIENTS * sum(d[k] for d in deltas) / len(deltas)
            for k in c
        }
        if rnd == 2:
            assert (
                _gap(sample_weighted(ys, [data.clients[i].numel() for i in clients]), mean_y) > 1e-3
            )
    _close(got, w)
    _close(strategy.c, c)
    assert sorted(strategy.client_states) == sorted(c_i) == [0, 1, 2, 4]
    for cl, ci in c_i.items():
        _close(strategy.client_states[cl]["c"], ci)
    assert (
        max(float(t.abs().max()) for t in c.values()) > 1e-2
    )  # the correction was live in round 2


# ---- MOON -----------------------------------------------------------------------------
def test_moon_contrasts_with_the_clients_own_previous_model(data: FederatedData) -> None:
    mu, tau = 2.0, 0.3
    strategy, start, got, _ = _engine(
        data, {"strategy": "moon", "mu": mu, "temperature": tau, "projection_dim": 3}
    )
    x, y = _xy(data)

    def replay(negative: str) -> tuple[Params, dict[int, Params]]:
        w, prev = start, {}
        for rnd in (1, 2):
            clients = sampled(SEED, rnd, NUM_CLIENTS, PER_ROUND)
            new = []
            for cl in clients:
                glob = w
                last = prev.get(cl) if negative == "own" else None
                if negative == "other":  # someone else's previous model, if any
                    last = next((prev[o] for o in sorted(prev) if o != cl), None)

                def loss(p: Params, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
                    z, logits = moon_forward(p, xb)
                    with torch.no_grad():
                        z_glob = moon_forward(glob, xb)[0]
                        z_prev = z_glob if last is None else moon_forward(last, xb)[0]
                    pos = F.cosine_similarity(z, z_glob, dim=1)
                    neg = F.cosine_similarity(z, z_prev, dim=1)
                    con = -torch.log(
                        torch.exp(pos / tau) / (torch.exp(pos / tau) + torch.exp(neg / tau))
                    )
                    return F.cross_entropy(logits, yb) + mu * con.mean()

                new.append(local_sgd(w, _batches(data, rnd, cl), x, y, loss, LR, MOMENTUM, WD)[0])
            for cl, wi in zip(clients, new):
                prev[cl] = wi
            w = sample_weighted(new, [data.clients[c].numel() for c in clients])
        return w, prev

    want, prev = replay("own")
    _close(got, want)
    assert sorted(strategy.client_states) == sorted(prev) == [0, 1, 2, 4]
    for cl, wi in prev.items():
        _close(strategy.client_states[cl]["model"], wi)
    # the negative matters: the global model or another client's model give other weights
    assert _gap(replay("global")[0], want) > 1e-4
    assert _gap(replay("other")[0], want) > 1e-4


# ---- FedNH ----------------------------------------------------------------------------
@pytest.mark.parametrize("rounds", [1, 2])
def test_fednh_smooths_prototypes_towards_participants_class_means(
    data: FederatedData, rounds: int
) -> None:
    rho, scale = 0.9, 5.0
    strategy, start, got, _ = _engine(
        data, {"strategy": "fednh", "smoothing": rho, "scale": scale}, rounds=rounds
    )
    x, y = _xy(data)
    proto_key = "classifier.weight"

    def loss(p: Params, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(cosine_forward(p, xb, scale)[1], yb)

    w = start
    for rnd in range(1, rounds + 1):
        clients = sampled(SEED, rnd, NUM_CLIENTS, PER_ROUND)
        bodies, means, counts = [], [], []
        for cl in clients:
            sums, cnt = torch.zeros(4, 5, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)

            def last_epoch(e: int, p: Params, xb: torch.Tensor, yb: torch.Tensor) -> None:
                if e == EPOCHS - 1:  # the class means come from the last epoch's batches only
                    h = cosine_forward(p, xb, scale)[0]
                    onehot = F.one_hot(yb, 4).double()
                    sums.add_(onehot.T @ F.normalize(h, dim=1))
                    cnt.add_(onehot.sum(0))

            wi, _, _ = local_sgd(
                w,
                _batches(data, rnd, cl),
                x,
                y,
                loss,
                LR,
                MOMENTUM,
                WD,
                frozen=(proto_key,),
                on_batch=last_epoch,
            )
            assert torch.equal(wi[proto_key], w[proto_key])  # prototypes stay fixed locally
            bodies.append(wi)
            means.append(F.normalize(sums, dim=1))
            counts.append(cnt)
        body = sample_weighted(bodies, [data.clients[c].numel() for c in clients])
        total = sum(counts)
        weighted = sum(m * n[:, None] for m, n in zip(means, counts))  # count-weighted class means
        avg = F.normalize(weighted / total.clamp_min(1e-12)[:, None], dim=1)
        mu = w[proto_key]
        held = total > 0
        new_protos = torch.where(held[:, None], F.normalize(rho * mu + (1 - rho) * avg, dim=1), mu)
        wrong_rho = torch.where(held[:, None], F.normalize((1 - rho) * mu + rho * avg, dim=1), mu)
        assert float((new_protos - wrong_rho).abs().max()) > 1e-2
        w = {**body, proto_key: new_protos}
        if rnd == 1:
            assert held.tolist() == [True, True, True, False]  # class 3 lives on client 4 only
    _close(got, w)
    if rounds == 1:
        assert torch.equal(got[proto_key][3], start[proto_key][3])  # nobody held class 3: kept
