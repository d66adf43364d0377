"""The simulation loop: equivalence with centralised SGD, determinism, resume, NaN."""

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from feddiff.fl.data import FederatedData, epoch_batches
from feddiff.fl.engine import NonFiniteLossError, run_federated
from feddiff.fl.sampling import client_generator, sample_clients
from feddiff.fl.strategies.fedavg import FedAvg
from feddiff.fl.strategy import NoParams, build_strategy
from tests.fl.helpers import small_model, small_settings


def _fedavg(num_clients: int) -> FedAvg:
    return build_strategy({"strategy": "fedavg"}, num_clients=num_clients, num_classes=4)


def test_one_client_with_all_data_equals_centralised_sgd(toy_data: FederatedData) -> None:
    data = FederatedData(**{**toy_data.__dict__, "clients": [torch.arange(120)]})
    settings = small_settings(rounds=2, clients_per_round=1, local_epochs=2)
    init = small_model()
    reference = copy.deepcopy(init)
    fed_model, _ = run_federated(data, init, _fedavg(1), settings, seed=7, progress=False)

    # Centralised SGD over the same batches; a fresh optimizer per round, as the engine does.
    reference.train()
    for rnd in (1, 2):
        opt = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-5)
        gen = client_generator(7, rnd, 0, data.device)
        for _ in range(2):
            for idx in epoch_batches(torch.arange(120), 16, gen):
                x, y = data.train_batch(idx, settings.augment, gen)
                loss = F.cross_entropy(reference(x)[1], y)
                opt.zero_grad()
                loss.backward()
                opt.step()
    for key, value in reference.state_dict().items():
        assert torch.allclose(fed_model.state_dict()[key].float(), value.float(), atol=1e-6), key


def test_same_seed_same_metrics_and_fedavg_learns(toy_data: FederatedData) -> None:
    settings = small_settings(rounds=4)
    _, rows_a = run_federated(toy_data, small_model(), _fedavg(4), settings, seed=3, progress=False)
    _, rows_b = run_federated(toy_data, small_model(), _fedavg(4), settings, seed=3, progress=False)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(rows_a) == strip(rows_b)
    assert rows_a[-1]["test_acc"] > 0.5  # 4 classes: chance is 0.25
    # communication: 2 clients per round, each receives and sends the whole model
    n = sum(v.numel() for v in small_model().state_dict().values() if v.is_floating_point())
    assert rows_a[0]["params_up"] == rows_a[0]["params_down"] == 2 * n


def test_resume_after_interruption_gives_identical_metrics(
    toy_data: FederatedData, tmp_path: Path
) -> None:
    settings = small_settings(rounds=4)
    ckpt = tmp_path / "checkpoint.pt"

    def interrupt(rnd: int, row: dict) -> None:
        if rnd == 2:
            raise KeyboardInterrupt  # what a killed job looks like to the loop

    with pytest.raises(KeyboardInterrupt):
        run_federated(
            toy_data,
            small_model(),
            _fedavg(4),
            settings,
            seed=5,
            checkpoint_path=ckpt,
            fingerprint="f",
            on_round_end=interrupt,
            progress=False,
        )
    assert torch.load(ckpt, weights_only=False)["round"] == 2
    resumed_rounds: list[int] = []
    model_r, rows_r = run_federated(
        toy_data,
        small_model(),
        _fedavg(4),
        settings,
        seed=5,
        checkpoint_path=ckpt,
        fingerprint="f",
        on_round_end=lambda r, _: resumed_rounds.append(r),
        progress=False,
    )
    assert resumed_rounds == [3, 4]  # it really resumed rather than starting over
    model_u, rows_u = run_federated(
        toy_data, small_model(), _fedavg(4), settings, seed=5, progress=False
    )
    for a, b in zip(rows_r, rows_u, strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == {
            k: v for k, v in b.items() if k != "seconds"
        }
    for key, value in model_u.state_dict().items():
        assert torch.equal(model_r.state_dict()[key], value), key


def test_checkpoint_of_other_settings_is_not_resumed(
    toy_data: FederatedData, tmp_path: Path
) -> None:
    ckpt = tmp_path / "checkpoint.pt"
    run_federated(
        toy_data,
        small_model(),
        _fedavg(4),
        small_settings(rounds=2),
        seed=5,
        checkpoint_path=ckpt,
        fingerprint="old",
        progress=False,
    )
    seen: list[int] = []
    run_federated(
        toy_data,
        small_model(),
        _fedavg(4),
        small_settings(rounds=2),
        seed=5,
        checkpoint_path=ckpt,
        fingerprint="new",
        on_round_end=lambda r, _: seen.append(r),
        progress=False,
    )
    assert seen == [1, 2]


class _NaNStrategy(FedAvg):
    Params = NoParams

    def loss(self, ctx, x, y, features, logits):  # type: ignore[no-untyped-def]
        return super().loss(ctx, x, y, features, logits) * float("nan")


def test_nan_loss_stops_with_round_and_client(toy_data: FederatedData) -> None:
    strategy = _NaNStrategy(NoParams(), num_clients=4, num_classes=4)
    with pytest.raises(NonFiniteLossError, match=r"round 1, client \d"):
        run_federated(toy_data, small_model(), strategy, small_settings(), seed=0, progress=False)


def test_client_sampling_is_seeded_and_valid() -> None:
    a = [sample_clients(1, r, 10, 5) for r in range(1, 6)]
    b = [sample_clients(1, r, 10, 5) for r in range(1, 6)]
    assert a == b
    assert all(len(set(s)) == 5 and all(0 <= c < 10 for c in s) for s in a)
    assert len({tuple(s) for s in a}) > 1
    with pytest.raises(ValueError, match="clients_per_round"):
        sample_clients(0, 1, 3, 5)
