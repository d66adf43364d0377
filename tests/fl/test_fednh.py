"""FedNH: unit prototypes, a frozen classifier locally, the smoothed server update."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from feddiff.fl.data import FederatedData
from feddiff.fl.engine import run_federated, train_client
from feddiff.fl.sampling import sample_clients
from feddiff.fl.strategies.fednh import CosineClassifierModel, FedNH
from feddiff.fl.strategy import ClientUpdate, build_strategy
from tests.fl.helpers import small_model, small_settings


def _fednh(**params: object) -> FedNH:
    return build_strategy({"strategy": "fednh", **params}, num_clients=4, num_classes=4)


def test_prototypes_start_unit_norm_and_orthogonal() -> None:
    strategy = _fednh()
    model = strategy.wrap_model(small_model())
    assert isinstance(model, CosineClassifierModel) and strategy.wrap_model(model) is model
    w = model.classifier.weight
    assert model.classifier.bias is None
    assert torch.allclose(w @ w.T, torch.eye(4), atol=1e-5)
    again = _fednh().wrap_model(small_model())
    assert torch.equal(again.classifier.weight, w)  # seeded


def test_classifier_is_frozen_during_local_training(toy_data: FederatedData) -> None:
    strategy = _fednh()
    global_model = strategy.wrap_model(small_model())
    strategy.setup(global_model)
    before = copy.deepcopy(global_model.state_dict())
    local = copy.deepcopy(global_model)
    update, _, steps = train_client(
        strategy,
        local,
        global_model,
        toy_data,
        client=1,
        round=1,
        seed=0,
        settings=small_settings(local_epochs=2),
    )
    assert steps == 4
    assert torch.equal(local.classifier.weight, before["classifier.weight"])
    assert not torch.equal(local.encoder.fc.weight, before["encoder.fc.weight"])  # the body trained
    # upload: unit class directions of the last epoch only (30 samples, not 60)
    counts, means = update.extras["class_counts"], update.extras["class_means"]
    labels = toy_data.y_train[toy_data.clients[1]]
    assert torch.equal(counts, torch.bincount(labels, minlength=4).float())
    assert torch.allclose(
        means[counts > 0].norm(dim=1), torch.ones(int((counts > 0).sum())), atol=1e-6
    )


def _update(client: int, state: dict, means: torch.Tensor, counts: list[float]) -> ClientUpdate:
    return ClientUpdate(
        client_id=client,
        num_samples=int(sum(counts)),
        num_steps=1,
        weights=state,
        params_up=0,
        extras={"class_means": means, "class_counts": torch.tensor(counts)},
    )


def test_prototype_update_is_the_smoothed_formula_on_a_hand_made_case() -> None:
    strategy = _fednh(smoothing=0.5)
    model = strategy.wrap_model(small_model())
    dim = model.feature_dim
    e = torch.eye(dim)
    protos = torch.stack([e[0], e[1], -e[0], e[2]])
    with torch.no_grad():
        model.classifier.weight.copy_(protos)
    state = copy.deepcopy(model.state_dict())
    zero = torch.zeros(dim)
    # class 0: client A (2 samples) points along e1, client B (1 sample) along e0
    # class 1: only client B holds it, along e2; classes 2 and 3: nobody
    a = _update(0, state, torch.stack([e[1], zero, zero, zero]), [2.0, 0.0, 0.0, 0.0])
    b = _update(1, state, torch.stack([e[0], e[2], zero, zero]), [1.0, 3.0, 0.0, 0.0])
    strategy.aggregate(model, [a, b], round=1)
    w = model.classifier.weight

    avg0 = (2 * e[1] + e[0]) / 3
    avg0 = avg0 / avg0.norm()  # (1, 2) / sqrt(5)
    new0 = 0.5 * e[0] + 0.5 * avg0
    assert torch.allclose(w[0], new0 / new0.norm(), atol=1e-6)
    new1 = 0.5 * e[1] + 0.5 * e[2]
    assert torch.allclose(w[1], new1 / math.sqrt(0.5), atol=1e-6)
    assert torch.equal(w[2], protos[2]) and torch.equal(w[3], protos[3])


def test_fednh_learns_with_unit_prototypes_and_cosine_logits(toy_data: FederatedData) -> None:
    strategy = _fednh()
    init = strategy.wrap_model(small_model())
    model, rows = run_federated(
        toy_data,
        copy.deepcopy(init),
        strategy,
        small_settings(rounds=6, lr=0.01),
        seed=3,
        progress=False,
    )
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["test_loss"]) for r in rows)
    assert rows[-1]["test_acc"] > 0.5  # 4 classes: chance is 0.25
    w = model.classifier.weight
    assert torch.allclose(w.norm(dim=1), torch.ones(4), atol=1e-6)
    assert not torch.allclose(w, init.classifier.weight, atol=1e-3)  # the server moved them
    model.eval()
    x = toy_data.normalize(toy_data.x_test[:8])
    h, logits = model(x)
    expected = 30.0 * F.normalize(h, dim=1) @ w.T
    assert torch.allclose(logits, expected, atol=1e-4)  # evaluation uses the cosine logits
    # upload = body without the frozen prototypes, plus a mean and a count per held class
    n = sum(v.numel() for v in model.state_dict().values() if v.is_floating_point())
    assert rows[0]["params_down"] == 2 * n
    clients = sample_clients(3, 1, 4, 2)
    held = sum(int(toy_data.y_train[toy_data.clients[c]].unique().numel()) for c in clients)
    assert rows[0]["params_up"] == 2 * (n - w.numel()) + held * (model.feature_dim + 1)


@pytest.mark.parametrize("bad", [{"smoothing": 1.5}, {"scale": 0.0}])
def test_bad_hyperparameters_name_the_key(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        build_strategy({"strategy": "fednh", **bad}, num_clients=4, num_classes=4)
