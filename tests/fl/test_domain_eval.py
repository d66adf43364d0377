"""Per-domain accuracy of a global model (FedAvg) through the engine, against plain torch.

Domain b's images are inverted and its test split is larger (38 vs 22), so the
domain mean differs from the overall accuracy and a column swap would show.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from feddiff.fl.data import FederatedData
from feddiff.fl.domain_columns import DOMAIN_MEAN, check_domain_names, domain_columns
from feddiff.fl.engine import run_federated
from feddiff.fl.evaluation import EvalDomains
from tests.fl.helpers import make_strategy, small_model, small_settings

D_TRAIN = np.repeat([0, 1, 0, 1], 30)
D_TEST = np.array([1] * 20 + [0] * 22 + [1] * 18)


def _shifted(toy: FederatedData) -> FederatedData:
    x_train = toy.x_train.permute(0, 2, 3, 1).numpy().copy()
    x_test = toy.x_test.permute(0, 2, 3, 1).numpy().copy()
    x_train[D_TRAIN == 1] = 255 - x_train[D_TRAIN == 1]
    x_test[D_TEST == 1] = 255 - x_test[D_TEST == 1]
    return FederatedData.from_arrays(
        x_train, toy.y_train.numpy(), x_test, toy.y_test.numpy(), toy.clients, 4, toy.device
    )


@torch.no_grad()
def _accuracy(model: torch.nn.Module, data: FederatedData, rows: np.ndarray) -> float:
    idx = torch.as_tensor(rows)
    x = (data.x_test[idx].float() / 255.0 - data.mean.view(1, -1, 1, 1)) / data.std.view(
        1, -1, 1, 1
    )
    _, logits = model.eval()(x)
    return float((logits.argmax(1) == data.y_test[idx]).double().mean())


def test_global_model_accuracy_per_domain(toy_data: FederatedData) -> None:
    data = _shifted(toy_data)
    domains = EvalDomains.from_arrays(
        ["plain", "inverted"], D_TRAIN, D_TEST, [c.numpy() for c in data.clients], data.device
    )
    model, rows = run_federated(
        data,
        small_model(),
        make_strategy(strategy="fedavg"),
        small_settings(rounds=2, lr=0.01),
        seed=3,
        progress=False,
        domains=domains,
    )
    row = rows[-1]
    plain = _accuracy(model, data, np.flatnonzero(D_TEST == 0))
    inverted = _accuracy(model, data, np.flatnonzero(D_TEST == 1))
    overall = _accuracy(model, data, np.arange(60))
    assert row["test_acc_plain"] == pytest.approx(plain, abs=1e-12)
    assert row["test_acc_inverted"] == pytest.approx(inverted, abs=1e-12)
    assert row[DOMAIN_MEAN] == pytest.approx((plain + inverted) / 2, abs=1e-12)
    assert row["test_acc"] == pytest.approx(overall, abs=1e-12)
    assert plain != pytest.approx(inverted, abs=1e-3)  # the domains do differ here
    assert domain_columns(row) == ["test_acc_plain", "test_acc_inverted"]


def test_without_domains_there_are_no_domain_columns(toy_data: FederatedData) -> None:
    _, rows = run_federated(
        toy_data,
        small_model(),
        make_strategy(strategy="fedavg"),
        small_settings(rounds=1),
        seed=3,
        progress=False,
    )
    assert domain_columns(rows[0]) == [] and not any(k.startswith("test_acc_") for k in rows[0])


def test_client_weights_count_training_samples_per_domain() -> None:
    clients = [np.array([0, 1, 2]), np.array([3, 4])]
    domains = EvalDomains.from_arrays(
        ["x", "y"], np.array([0, 1, 1, 1, 1]), np.array([0, 1]), clients, torch.device("cpu")
    )
    assert domains.client_weights.tolist() == [[1.0, 2.0], [0.0, 2.0]]


def test_a_domain_named_like_the_mean_column_is_refused() -> None:
    with pytest.raises(ValueError, match="domain_mean"):
        check_domain_names(["a", "domain_mean"])
