"""MOON: the contrastive loss is Eq. 3, mu = 0 is FedAvg, and it learns."""

import copy
import math
from pathlib import Path

import pytest
import torch

from feddiff.fl.data import FederatedData
from feddiff.fl.engine import run_federated
from feddiff.fl.sampling import sample_clients
from feddiff.fl.strategies.moon import Moon, ProjectedModel, model_contrastive_loss
from feddiff.fl.strategy import build_strategy
from tests.fl.helpers import small_model, small_settings


def _moon(**params: object) -> Moon:
    return build_strategy(
        {"strategy": "moon", "projection_dim": 16, **params}, num_clients=4, num_classes=4
    )


def test_contrastive_loss_matches_eq3_on_hand_computed_vectors() -> None:
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    z_glob = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    z_prev = torch.tensor([[0.0, 1.0], [0.0, -3.0]])
    tau = 0.5
    # row 1: sim_glob = 1/sqrt(2), sim_prev = 0; row 2: sim_glob = 0, sim_prev = -1
    l1 = -math.log(
        math.exp(1 / math.sqrt(2) / tau) / (math.exp(1 / math.sqrt(2) / tau) + math.exp(0.0))
    )
    l2 = -math.log(1.0 / (1.0 + math.exp(-1.0 / tau)))
    got = model_contrastive_loss(z, z_glob, z_prev, tau)
    assert got.item() == pytest.approx((l1 + l2) / 2, rel=1e-6)


def test_without_a_previous_model_the_term_is_log2_with_zero_gradient() -> None:
    z = torch.randn(5, 8, requires_grad=True)
    z_glob = torch.randn(5, 8)
    loss = model_contrastive_loss(z, z_glob, z_glob, 0.5)
    loss.backward()
    assert loss.item() == pytest.approx(math.log(2))
    assert z.grad.abs().max() < 1e-7  # rounding only


def test_mu_zero_equals_fedavg_on_the_same_projected_model(toy_data: FederatedData) -> None:
    settings = small_settings(rounds=3)
    moon0 = _moon(mu=0.0)
    wrapped = moon0.wrap_model(small_model())
    assert isinstance(wrapped, ProjectedModel) and moon0.wrap_model(wrapped) is wrapped
    fedavg = build_strategy({"strategy": "fedavg"}, num_clients=4, num_classes=4)
    avg_model, _ = run_federated(
        toy_data, copy.deepcopy(wrapped), fedavg, settings, seed=2, progress=False
    )
    moon_model, _ = run_federated(
        toy_data, copy.deepcopy(wrapped), moon0, settings, seed=2, progress=False
    )
    # 6 participations of 4 clients: some client trained against its previous model
    assert sorted(moon0.client_states) == sorted(
        {c for r in (1, 2, 3) for c in sample_clients(2, r, 4, 2)}
    )
    for state in moon0.client_states.values():
        assert all(t.device.type == "cpu" for t in state["model"].values())
    for key, value in avg_model.state_dict().items():
        assert torch.allclose(moon_model.state_dict()[key].float(), value.float(), atol=1e-6), key

    # ...and the comparison has teeth: with mu = 1 the weights differ
    moon1 = _moon(mu=1.0)
    moon1_model, _ = run_federated(
        toy_data, copy.deepcopy(wrapped), moon1, settings, seed=2, progress=False
    )
    w1, w0 = moon1_model.state_dict(), avg_model.state_dict()
    assert any(not torch.allclose(w1[k].float(), w0[k].float(), atol=1e-4) for k in w0)


def test_moon_learns_and_communicates_the_head(toy_data: FederatedData) -> None:
    strategy = _moon(mu=1.0)
    # the projection head makes the network deeper: it needs a few more local steps
    settings = small_settings(rounds=5, local_epochs=3)
    model, rows = run_federated(toy_data, small_model(), strategy, settings, seed=3, progress=False)
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["test_loss"]) for r in rows)
    assert rows[-1]["test_acc"] > 0.5  # 4 classes: chance is 0.25
    n = sum(v.numel() for v in model.state_dict().values() if v.is_floating_point())
    assert any(k.startswith("projection.") for k in model.state_dict())
    assert rows[0]["params_up"] == rows[0]["params_down"] == 2 * n


@pytest.mark.parametrize("bad", [{"mu": -1.0}, {"temperature": 0.0}, {"projection_dim": 0}])
def test_bad_hyperparameters_name_the_key(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        build_strategy({"strategy": "moon", **bad}, num_clients=4, num_classes=4)


def test_resume_restores_the_previous_local_models(toy_data: FederatedData, tmp_path: Path) -> None:
    settings = small_settings(rounds=4)
    ckpt = tmp_path / "checkpoint.pt"

    def interrupt(rnd: int, row: dict) -> None:
        if rnd == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_federated(
            toy_data,
            small_model(),
            _moon(),
            settings,
            seed=5,
            checkpoint_path=ckpt,
            fingerprint="f",
            on_round_end=interrupt,
            progress=False,
        )
    model_r, rows_r = run_federated(
        toy_data,
        small_model(),
        _moon(),
        settings,
        seed=5,
        checkpoint_path=ckpt,
        fingerprint="f",
        progress=False,
    )
    model_u, rows_u = run_federated(
        toy_data, small_model(), _moon(), settings, seed=5, progress=False
    )
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(rows_r) == strip(rows_u)
    for key, value in model_u.state_dict().items():
        assert torch.equal(model_r.state_dict()[key], value), key
