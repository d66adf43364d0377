"""FedDifRC through the engine: each sample's positive is its own row of the cached
representations, looked up by its dataset index.

``run_federated`` is compared with a plain-torch re-implementation (local SGD with
momentum on CE + TDCL (paper form, written out here) + NDCR, then the sample-weighted
mean of the selected clients) on an asymmetric setting: four clients of unequal size,
two of them per round, two local epochs, momentum 0.9, weight decay, and unequal loss
weights. Each client's data is one batch (batch size >= client size), so the engine's
shuffled batch order does not matter to the reference, while the pairing of a sample
with its feature row does. Re-running with the feature rows permuted *within each
class* (so every row still belongs to a sample of the right class) must follow the
permuted rows: a lookup by class, by batch position or by sorted index would not.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from feddiff.fl.data import FederatedData
from feddiff.fl.engine import run_federated
from feddiff.fl.sampling import sample_clients
from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategy import build_strategy
from feddiff.models import build_model

from .conftest import toy_arrays

SIZES = [5, 9, 14, 12]  # unequal clients (40 samples)
LAMBDA_TDCL, LAMBDA_NDCR, TAU = 0.7, 0.3, 0.2
SEED = 5


def _data() -> FederatedData:
    arrays = toy_arrays(n_train=sum(SIZES), n_test=8, classes=4, size=8, seed=1)
    order = torch.randperm(sum(SIZES), generator=torch.Generator().manual_seed(0)).numpy()
    bounds = [sum(SIZES[:i]) for i in range(len(SIZES) + 1)]
    clients = [order[bounds[i] : bounds[i + 1]] for i in range(len(SIZES))]
    return FederatedData.from_arrays(
        arrays.x_train,
        arrays.y_train,
        arrays.x_test,
        arrays.y_test,
        clients,
        4,
        torch.device("cpu"),
    )


def _settings() -> TrainSettings:
    return TrainSettings.from_dict(
        dict(
            rounds=3,
            clients_per_round=2,
            local_epochs=2,
            batch_size=16,
            lr=0.05,
            momentum=0.9,
            weight_decay=1e-3,
            device="cpu",
        )
    )


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(
        "cnn", num_classes=4, in_channels=1, image_size=8, width=0.25
    )  # 32-d features


def _features(n: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    return torch.randn(n, 4, dim, generator=gen), torch.randn(n, dim, generator=gen)


def _engine(data: FederatedData, cond: torch.Tensor, den: torch.Tensor) -> tuple[dict, list[dict]]:
    strategy = build_strategy(
        {
            "strategy": "feddifrc",
            "features": "cached.h5",
            "lambda_tdcl": LAMBDA_TDCL,
            "lambda_ndcr": LAMBDA_NDCR,
            "temperature": TAU,
        },
        num_clients=4,
        num_classes=4,
    )
    strategy._cond, strategy._den = (
        cond,
        den,
    )  # what bind_data loads from the file (tested end to end elsewhere)
    model, rows = run_federated(data, _model(), strategy, _settings(), seed=SEED, progress=False)
    assert isinstance(model.projection, torch.nn.Identity)  # 32 = 32: no head, as in the reference
    return model.base.state_dict(), rows


def _local_loss(
    z: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, reps: torch.Tensor, den: torch.Tensor
) -> torch.Tensor:
    """CE + 0.7 * TDCL (cos / U, U the batch's mean cosine distance, detached) + 0.3 * L2 of unit
    vectors."""
    zu = z / z.norm(dim=1, keepdim=True)
    ru = reps / reps.norm(dim=2, keepdim=True)
    u = (1 - torch.einsum("ad,bkd->abk", zu.detach(), ru)).mean(0)
    s = torch.einsum("bd,bkd->bk", zu, ru) / u / TAU
    tdcl = (torch.logsumexp(s, 1) - s.gather(1, y[:, None])[:, 0]).mean()
    ndcr = (zu - den / den.norm(dim=1, keepdim=True)).pow(2).sum(1).mean()
    return F.cross_entropy(logits, y) + LAMBDA_TDCL * tdcl + LAMBDA_NDCR * ndcr


def _plain_torch(
    data: FederatedData, cond: torch.Tensor, den: torch.Tensor
) -> tuple[dict, list[float]]:
    settings = _settings()
    global_model = _model()
    losses = []
    for rnd in range(1, settings.rounds + 1):
        selected = sample_clients(SEED, rnd, 4, settings.clients_per_round)
        states, sizes, total = [], [], 0.0
        for c in selected:
            local = copy.deepcopy(global_model)
            local.train()
            opt = torch.optim.SGD(
                local.parameters(),
                lr=settings.lr,
                momentum=settings.momentum,
                weight_decay=settings.weight_decay,
            )
            ids = data.clients[c]  # one full batch per epoch
            x, y = data.normalize(data.x_train[ids]), data.y_train[ids]
            for _ in range(settings.local_epochs):
                z, logits = local(x)
                loss = _local_loss(z, logits, y, cond[ids], den[ids])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item()
            states.append(local.state_dict())
            sizes.append(float(ids.numel()))
        heaviest = max(range(len(sizes)), key=lambda i: sizes[i])
        new = {}
        for key, ref in states[0].items():
            if torch.is_floating_point(ref):
                new[key] = sum(st[key] * (n / sum(sizes)) for st, n in zip(states, sizes))
            else:
                new[key] = states[heaviest][key].clone()
        global_model.load_state_dict(new)
        losses.append(total / (len(selected) * settings.local_epochs))
    return global_model.state_dict(), losses


def _within_class_permutation(labels: torch.Tensor) -> torch.Tensor:
    """perm[i]: another index of the same class (a cyclic shift inside each class)."""
    perm = torch.arange(labels.numel())
    for c in labels.unique():
        members = (labels == c).nonzero()[:, 0]
        perm[members] = members.roll(1)
    return perm


def _assert_states_close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.fixture(scope="module")
def setup() -> dict:
    data = _data()
    cond, den = _features(data.y_train.numel(), 32)
    return {"data": data, "cond": cond, "den": den}


def test_engine_matches_plain_torch_with_each_samples_own_rows(setup: dict) -> None:
    data, cond, den = setup["data"], setup["cond"], setup["den"]
    assert sorted({len(set(sample_clients(SEED, r, 4, 2))) for r in (1, 2, 3)}) == [2]
    state, rows = _engine(data, cond, den)
    want, losses = _plain_torch(data, cond, den)
    _assert_states_close(state, want)
    assert [r["train_loss"] for r in rows] == pytest.approx(losses, rel=1e-4)


def test_changing_the_rows_a_sample_owns_changes_the_run_accordingly(setup: dict) -> None:
    data, cond, den = setup["data"], setup["cond"], setup["den"]
    perm = _within_class_permutation(data.y_train)
    assert (perm != torch.arange(perm.numel())).all() and torch.equal(
        data.y_train[perm], data.y_train
    )
    base_state, base_rows = _engine(data, cond, den)
    state, rows = _engine(data, cond[perm], den[perm])
    want, losses = _plain_torch(data, cond[perm], den[perm])
    _assert_states_close(state, want)
    assert [r["train_loss"] for r in rows] == pytest.approx(losses, rel=1e-4)
    # ...and it is a different run: the loss follows the rows, not the class or the batch slot
    assert [r["train_loss"] for r in rows] != pytest.approx(
        [r["train_loss"] for r in base_rows], rel=1e-3
    )
    assert not torch.allclose(
        state["classifier.weight"], base_state["classifier.weight"], atol=1e-4
    )
