"""FedDDPM / FedDDPM+ through the engine, replayed in plain torch.

Setting: four clients of unequal size (10, 22, 35, 53), two sampled per round, local
SGD with momentum 0.9, and a calibration with its own lr and momentum (or, for the
FedDDPM+ run, falling back to the local ones). Each round the test takes the uploads
the engine handed to the server and recomputes, without calling feddiff: the
sample-weighted average, the auxiliary cross-entropy of that average (FedDDPM+'s
stall rule decides from it), and the calibration as full-batch heavy-ball SGD steps on
the auxiliary tensors (batch_size >= the auxiliary set, so the steps do not depend on
the sampler's random batches). The global weights after the round must match.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from feddiff.auxiliary.store import AuxiliarySet, save_auxiliary
from feddiff.fl.data import FederatedData
from feddiff.fl.engine import run_federated
from tests.calibration.test_calibrator import quadrant_images
from tests.fl.helpers import make_strategy, small_model, small_settings

SIZES = (10, 22, 35, 53)
N_AUX = 24
LOCAL = {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here with one torch thread (tests/conftest.py)."""


@pytest.fixture
def data() -> FederatedData:
    x, y = quadrant_images(sum(SIZES), 10)
    xt, yt = quadrant_images(16, 11)
    bounds = np.cumsum((0,) + SIZES)
    clients = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    return FederatedData.from_arrays(x, y, xt, yt, clients, 4, torch.device("cpu"))


@pytest.fixture
def aux(tmp_path: Path) -> tuple[str, torch.Tensor, torch.Tensor]:
    """The auxiliary file and its images (uint8 NCHW) / labels, as the test reads them."""
    x, y = quadrant_images(N_AUX, 12)
    x[: N_AUX // 2] = (
        255 - x[: N_AUX // 2]
    )  # unlike the clients' data: calibration has something to fix
    path = tmp_path / "aux.h5"
    save_auxiliary(AuxiliarySet(x, y, np.zeros(N_AUX, np.int64), {}), path)
    return str(path), torch.from_numpy(x).permute(0, 3, 1, 2).float(), torch.from_numpy(y)


def _normalise(data: FederatedData, x: torch.Tensor) -> torch.Tensor:
    """Train-set standardisation, recomputed from the raw training tensor."""
    train = data.x_train.float() / 255.0
    mean = train.mean(dim=(0, 2, 3)).view(1, -1, 1, 1)
    std = train.std(dim=(0, 2, 3)).view(1, -1, 1, 1)
    return (x / 255.0 - mean) / std


def _average(updates: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    total = sum(u["n"] for u in updates)
    heaviest = max(updates, key=lambda u: u["n"])
    out = {}
    for key, ref in heaviest["w"].items():
        if ref.is_floating_point():
            out[key] = sum(u["w"][key].double() * u["n"] for u in updates) / total
        else:  # BatchNorm's step counter: the heaviest client's
            out[key] = ref.clone()
    return {k: v.to(heaviest["w"][k].dtype) for k, v in out.items()}


def _aux_ce(model: torch.nn.Module, xn: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float(F.cross_entropy(model(xn)[1], y))


def _calibrate(
    model: torch.nn.Module,
    xn: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
    momentum: float,
    wd: float,
) -> None:
    """``steps`` full-batch heavy-ball SGD steps with weight decay, written out."""
    model.train()
    params = [p for p in model.parameters()]
    bufs: list[torch.Tensor] = []
    for k in range(steps):
        loss = F.cross_entropy(model(xn)[1], y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(params, grads)):
                d = g + wd * p
                if k == 0:
                    bufs.append(d.clone())
                else:
                    bufs[i] = momentum * bufs[i] + d
                p -= lr * bufs[i]


def _run(
    data: FederatedData, method: dict[str, Any], rounds: int
) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]], list[dict[str, torch.Tensor]]]:
    """Rows, the uploads of each round (as the server received them), global state after each
    round."""
    strategy = make_strategy(**method)
    strategy.bind_data(data)
    uploads: list[list[dict[str, Any]]] = []
    real = strategy.aggregate

    def spy(global_model: torch.nn.Module, updates: list[Any], round: int) -> None:
        uploads.append(
            [{"c": u.client_id, "n": u.num_samples, "w": copy.deepcopy(u.weights)} for u in updates]
        )
        real(global_model, updates, round)

    strategy.aggregate = spy  # type: ignore[method-assign]
    model = small_model(3)
    after: list[dict[str, torch.Tensor]] = []
    settings = small_settings(
        rounds=rounds, clients_per_round=2, batch_size=8, vectorize="off", **LOCAL
    )
    _, rows = run_federated(
        data,
        model,
        strategy,
        settings,
        seed=5,
        progress=False,
        on_round_end=lambda r, row: after.append(copy.deepcopy(model.state_dict())),
    )
    return rows, uploads, after


def _replay(
    data: FederatedData,
    aux: tuple[str, torch.Tensor, torch.Tensor],
    method: dict[str, Any],
    rounds: int,
) -> list[int]:
    """Run through the engine, replay every round in plain torch, compare; the rounds' pass
    flags."""
    rows, uploads, after = _run(data, method, rounds)
    xn, y = _normalise(data, aux[1]), aux[2]
    lr = method.get("lr", LOCAL["lr"])
    momentum = method.get("momentum", LOCAL["momentum"])
    history: list[float] = []
    flags = []
    for rnd in range(rounds):
        ups = uploads[rnd]
        assert len(ups) == 2 and len({u["c"] for u in ups}) == 2  # partial participation
        assert {u["n"] for u in ups} <= set(SIZES) and all(u["n"] == SIZES[u["c"]] for u in ups)
        model = small_model(3)
        model.load_state_dict(_average(ups))
        before = _aux_ce(model, xn, y)
        if method["trigger"] == "every_round":
            fire = True
        else:  # FedDDPM+: relative gain over the last `window` rounds below delta
            history.append(before)
            w = method["window"]
            fire = (
                len(history) > w
                and (history[-1 - w] - history[-1]) / abs(history[-1 - w]) < method["delta"]
            )
        if fire:
            _calibrate(model, xn, y, method["steps"], lr, momentum, LOCAL["weight_decay"])
        after_loss = _aux_ce(model, xn, y)
        if fire and method["trigger"] == "stall":
            history = [after_loss]
        row = rows[rnd]
        assert row["calibrated"] == int(fire), rnd + 1
        assert row["aux_loss"] == pytest.approx(before, rel=1e-4)
        assert row["aux_loss_after"] == pytest.approx(after_loss, rel=1e-4)
        for key, value in model.state_dict().items():
            torch.testing.assert_close(
                after[rnd][key], value, rtol=1e-4, atol=1e-5, msg=f"round {rnd + 1} {key}"
            )
        flags.append(int(fire))
    assert rows[-1]["calibrations"] == sum(flags)
    return flags


def test_fedddpm_calibrates_the_average_every_round(data: FederatedData, aux: Any) -> None:
    method = {
        "strategy": "fedddpm",
        "auxiliary": aux[0],
        "trigger": "every_round",
        "steps": 3,
        "batch_size": 64,
        "eval_size": 512,
        "lr": 0.03,
        "momentum": 0.5,
    }
    assert _replay(data, aux, method, rounds=3) == [1, 1, 1]


def test_fedddpm_plus_calibrates_only_when_the_stall_rule_fires(
    data: FederatedData, aux: Any
) -> None:
    # delta = 1 makes any gain a stall, so passes fall exactly where the history is long
    # enough: rounds 3 and 5 with window 2 (the history restarts after each pass).
    # lr / momentum unset: the calibration takes the local optimiser's.
    method = {
        "strategy": "fedddpm",
        "auxiliary": aux[0],
        "trigger": "stall",
        "window": 2,
        "delta": 1.0,
        "steps": 2,
        "batch_size": 64,
        "eval_size": 512,
    }
    assert _replay(data, aux, method, rounds=5) == [0, 0, 1, 0, 1]


def test_fedddpm_plus_stall_rule_on_real_losses(data: FederatedData, aux: Any) -> None:
    # window 1, delta 5 %: whether a round passes depends on the measured losses, which
    # the replay recomputes; the flags and the weights must agree with it either way.
    method = {
        "strategy": "fedddpm",
        "auxiliary": aux[0],
        "trigger": "stall",
        "window": 1,
        "delta": 0.05,
        "steps": 2,
        "batch_size": 64,
        "eval_size": 512,
        "lr": 0.02,
        "momentum": 0.0,
    }
    assert set(_replay(data, aux, method, rounds=4)) == {
        0,
        1,
    }  # the setting exercises both branches
