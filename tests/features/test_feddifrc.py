"""FedDifRC on the clients: TDCL (paper / cosine / reference forms) and NDCR on
hand-computed vectors, lookup by dataset index (also through the engine, against a
plain-torch run), the ablation switches, the self-supervised probe, and end-to-end runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from feddiff.data.prepare import prepare_dataset
from feddiff.features.extract import extract_features
from feddiff.features.settings import FeatureSettings
from feddiff.fl.run import train_run
from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategies.feddifrc import (
    FedDifRC,
    FedDifRCModel,
    ndcr_loss,
    tdcl_cosine,
    tdcl_loss,
    tdcl_paper,
    tdcl_reference,
)
from feddiff.fl.strategy import LocalContext, build_strategy
from feddiff.models import build_model
from feddiff.stages import make_partition

from .conftest import one_thread, save_tiny_ddpm


def test_tdcl_is_infonce_against_the_samples_own_class_prompts() -> None:
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    reps = torch.tensor(
        [
            [[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]],  # cos with z0: 1, 0, -1
            [[1.0, 1.0], [0.0, 3.0], [1.0, 0.0]],
        ]
    )  # cos with z1: 1/sqrt2, 1, 0
    tau = 0.5
    l0 = -math.log(
        math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0) + math.exp(-1 / tau))
    )  # own class 0
    s = 1 / math.sqrt(2)
    l1 = -math.log(
        math.exp(1 / tau) / (math.exp(s / tau) + math.exp(1 / tau) + math.exp(0))
    )  # own class 1
    got = tdcl_loss(z, reps, torch.tensor([0, 1]), tau, "cosine")
    assert got.item() == pytest.approx((l0 + l1) / 2, rel=1e-6)
    assert tdcl_cosine(z, reps, torch.tensor([0, 1]), tau).item() == pytest.approx(got.item())
    # a sample's negatives are its own: swapping the samples' representation sets changes the loss
    assert tdcl_loss(z, reps.flip(0), torch.tensor([0, 1]), tau, "cosine").item() != pytest.approx(
        got.item()
    )


def test_tdcl_paper_normalises_cosine_by_the_batchs_mean_cosine_distance() -> None:
    """s(z_i, r) = cos(z_i, r) / U(r), U(r) = mean_b (1 - cos(z_b, r)), worked out by hand."""
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # unit: e1, e2
    reps = torch.tensor(
        [
            [[2.0, 0.0], [1.0, 1.0]],  # r0^0 = e1, r0^1 = (e1 + e2)/sqrt2
            [[0.0, 3.0], [-1.0, 0.0]],
        ]
    )  # r1^0 = e2, r1^1 = -e1
    # U(r0^0) = ((1-1) + (1-0))/2 = 1/2;  U(r0^1) = 1 - 1/sqrt2;  U(r1^0) = 1/2;  U(r1^1) = ((1+1) +
    # 1)/2 = 3/2
    # s(z0, r0^0) = 1/(1/2) = 2;  s(z0, r0^1) = (1/sqrt2)/(1 - 1/sqrt2) = sqrt2 + 1
    # s(z1, r1^0) = 1/(1/2) = 2;  s(z1, r1^1) = 0/(3/2) = 0
    tau = 0.5
    y = torch.tensor([0, 0])
    r2 = math.sqrt(2)
    # the paper's form: log(1 + sum_neg exp(s/tau) / exp(s_pos/tau))
    l0 = math.log(1 + math.exp((r2 + 1) / tau) / math.exp(2 / tau))
    l1 = math.log(1 + math.exp(0 / tau) / math.exp(2 / tau))
    got = tdcl_paper(z, reps, y, tau)
    assert got.item() == pytest.approx((l0 + l1) / 2, rel=1e-6)
    assert tdcl_loss(z, reps, y, tau).item() == pytest.approx(got.item())  # the default form
    # plain cosine on the same case differs (cos 1 vs 1/sqrt2 and 1 vs 0)
    assert tdcl_cosine(z, reps, y, tau).item() != pytest.approx(got.item(), rel=1e-3)


def test_tdcl_paper_detaches_u() -> None:
    """Gradients flow through cos(z_i, r) only: compared with plain torch, U from detached z."""
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(5, 6, generator=gen, requires_grad=True)
    reps = torch.randn(5, 3, 6, generator=gen)
    y = torch.tensor([0, 2, 1, 1, 0])

    def plain(detach: bool) -> torch.Tensor:
        zz = z.detach() if detach else z
        zu = zz / zz.norm(dim=1, keepdim=True)
        ru = reps / reps.norm(dim=2, keepdim=True)
        u = torch.stack(
            [torch.stack([(1 - (zu @ ru[b, k])).mean() for k in range(3)]) for b in range(5)]
        )
        cos = torch.stack(
            [torch.stack([(z[b] / z[b].norm()) @ ru[b, k] for k in range(3)]) for b in range(5)]
        )
        s = cos / u / 0.2
        return torch.stack([torch.logsumexp(s[b], 0) - s[b, y[b]] for b in range(5)]).mean()

    got = tdcl_paper(z, reps, y, 0.2)
    (g_got,) = torch.autograd.grad(got, z)
    want = plain(detach=True)
    (g_want,) = torch.autograd.grad(want, z)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    torch.testing.assert_close(g_got, g_want, rtol=1e-4, atol=1e-6)
    (g_through,) = torch.autograd.grad(plain(detach=False), z)
    assert not torch.allclose(
        g_got, g_through, rtol=1e-3, atol=1e-5
    )  # the test can tell the two apart


def test_tdcl_reference_pools_the_batch_with_the_references_pairing() -> None:
    """One InfoNCE per batch; negative row j meets z_{j mod B} (the reference's repeat)."""
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # sample 0 (y=1): class 0 = (0,1), class 1 = (1,0) positive, class 2 = (1,0)
    # sample 1 (y=0): class 0 = (0,1) positive, class 1 = (-1,0), class 2 = (1,1)
    reps = torch.tensor(
        [[[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]]]
    )
    y = torch.tensor([1, 0])
    tau = 0.5
    # rows: (z0, pos0) cos 1; (z1, pos1) cos 1; negatives r0^0, r0^2, r1^1, r1^2 paired with
    # z0, z1, z0, z1: cos 0, 0, -1, 1/sqrt2
    pos = 2 * math.exp(1 / tau)
    total = (
        pos + math.exp(0) + math.exp(0) + math.exp(-1 / tau) + math.exp((1 / math.sqrt(2)) / tau)
    )
    got = tdcl_reference(z, reps, y, tau)
    assert got.item() == pytest.approx(-math.log(pos / total), rel=1e-6)
    # per-sample pairing would have met z0 with r0^2 = (1,0) (cos 1): a different value
    assert got.item() != pytest.approx(tdcl_cosine(z, reps, y, tau).item(), rel=1e-3)


def test_tdcl_reference_matches_a_transcription_of_the_reference() -> None:
    """Against the reference's steps in plain torch: positive last, negatives stacked per
    sample, embeddings tiled K times, mask, -log(sum_pos / sum_all)."""
    gen = torch.Generator().manual_seed(2)
    b, k, d = 5, 4, 7
    z = torch.randn(b, d, generator=gen)
    reps = torch.randn(b, k, d, generator=gen)
    y = torch.tensor([3, 0, 1, 1, 2])
    # the reference's per-sample layout: negatives (ascending class), then the positive last
    text = torch.stack(
        [
            torch.cat([reps[i, [c for c in range(k) if c != y[i]]], reps[i, y[i]][None]])
            for i in range(b)
        ]
    )
    f_pos = torch.stack([t[-1] for t in text])
    f_neg = torch.stack([t[:-1] for t in text]).reshape(-1, d)
    f_now = z.repeat((f_pos.shape[0] + f_neg.shape[0]) // b, 1)
    logits = torch.cosine_similarity(f_now, torch.cat([f_pos, f_neg]), dim=1) / 0.3
    mask = torch.tensor([1.0] * b + [0.0] * f_neg.shape[0])
    want = -torch.log((torch.exp(logits) * mask).sum() / torch.exp(logits).sum())
    assert tdcl_reference(z, reps, y, 0.3).item() == pytest.approx(want.item(), rel=1e-5)


def test_ndcr_l2_and_kl_on_hand_computed_vectors() -> None:
    z = torch.tensor([[3.0, 4.0], [0.0, -2.0]])
    d = torch.tensor([[10.0, 0.0], [0.0, -1.0]])
    # unit vectors: (0.6, 0.8) vs (1, 0): 0.16 + 0.64; (0, -1) vs (0, -1): 0
    assert ndcr_loss(z, d, "l2").item() == pytest.approx(0.8 / 2, rel=1e-6)
    p = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum()  # softmax of the unit denoised vector
    q = np.exp([0.6, 0.8]) / np.exp([0.6, 0.8]).sum()  # softmax of the unit embedding
    kl0 = float((p * np.log(p / q)).sum())
    assert ndcr_loss(z, d, "kl").item() == pytest.approx(kl0 / 2, rel=1e-5)
    # the reference's form: KLDivLoss(batchmean) of log_softmax(z) against softmax(d)
    ref = torch.nn.KLDivLoss(reduction="batchmean")(
        F.log_softmax(F.normalize(z), 1), F.softmax(F.normalize(d), 1)
    )
    assert ndcr_loss(z, d, "kl").item() == pytest.approx(ref.item(), rel=1e-6)


def _strategy(**params: object) -> FedDifRC:
    return build_strategy(
        {"strategy": "feddifrc", "features": "x.h5", **params}, num_clients=2, num_classes=3
    )


def _ctx(idx: list[int]) -> LocalContext:
    return LocalContext(
        client_id=0,
        round=1,
        model=torch.nn.Linear(1, 1),
        global_model=torch.nn.Linear(1, 1),
        num_samples=4,
        settings=TrainSettings(),
        batch_indices=torch.tensor(idx),
    )


@pytest.mark.parametrize(
    ("params", "tdcl", "ndcr"),
    [
        ({}, 1.0, 1.0),
        ({"lambda_ndcr": 0.0}, 1.0, 0.0),
        ({"lambda_tdcl": 0.0}, 0.0, 1.0),
        ({"lambda_tdcl": 0.5, "lambda_ndcr": 2.0, "ndcr": "kl"}, 0.5, 2.0),
        ({"tdcl": "cosine"}, 1.0, 1.0),
        ({"tdcl": "reference", "temperature": 0.3}, 1.0, 1.0),
    ],
)
def test_the_loss_looks_up_the_batchs_dataset_indices(
    params: dict, tdcl: float, ndcr: float
) -> None:
    gen = torch.Generator().manual_seed(0)
    strategy = _strategy(**params)
    strategy._cond = torch.randn(6, 3, 4, generator=gen)  # (N, C, D) for the whole training split
    strategy._den = torch.randn(6, 4, generator=gen)
    idx = [5, 1, 2]
    z = torch.randn(3, 4, generator=gen)
    logits = torch.randn(3, 3, generator=gen)
    y = torch.tensor([2, 0, 1])
    got = strategy.loss(_ctx(idx), torch.zeros(3), y, z, logits)
    kind = params.get("ndcr", "l2")
    form = {"paper": tdcl_paper, "cosine": tdcl_cosine, "reference": tdcl_reference}[
        params.get("tdcl", "paper")
    ]
    tau = params.get("temperature", 0.04)
    want = (
        F.cross_entropy(logits, y)
        + tdcl * form(z, strategy._cond[idx], y, tau)
        + ndcr * ndcr_loss(z, strategy._den[idx], kind)
    )
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    other = strategy.loss(_ctx([0, 3, 4]), torch.zeros(3), y, z, logits)
    assert other.item() != pytest.approx(got.item())


def test_layer_subsets_and_parameter_checks() -> None:
    assert _strategy().params.layer_indices() is None
    assert _strategy(layers="0+2").params.layer_indices() == [0, 2]
    for bad in (
        {"layers": "0,2"},
        {"layers": "1+1"},
        {"ndcr": "l1"},
        {"temperature": 0.0},
        {"lambda_tdcl": -1.0},
        {"projection": "mlp"},
        {"tdcl": "infonce"},
    ):
        with pytest.raises(ValueError, match="method"):
            _strategy(**bad)
    with pytest.raises(ValueError, match="method.features is required"):
        build_strategy({"strategy": "feddifrc"}, num_clients=2, num_classes=3)


def test_projection_head_and_self_supervised_probe() -> None:
    base = build_model("cnn", 4, 1, 8, width=0.125)  # 16-d features
    same = FedDifRCModel(base, 16, "auto", probe=False)
    assert isinstance(same.projection, torch.nn.Identity) and same.classifier is base.classifier
    assert len(same.state_dict()) == len(
        base.state_dict()
    )  # nothing added, classifier not duplicated
    assert isinstance(FedDifRCModel(base, 16, "linear", probe=False).projection, torch.nn.Linear)
    probe = FedDifRCModel(base, 10, "auto", probe=True)
    z, logits = probe(torch.randn(5, 1, 8, 8))
    assert z.shape == (5, 10)
    F.cross_entropy(logits, torch.zeros(5, dtype=torch.long)).backward()
    assert (
        base.classifier.weight.grad is not None and base.conv1.weight.grad is None
    )  # CE stops at the probe


# ---- end to end --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """sklearn's digits, a Dirichlet split, and features from a tiny class-conditional DDPM."""
    root = tmp_path_factory.mktemp("digits")
    data = root / "digits.h5"
    with one_thread():
        prepare_dataset({"source": "digits"}, data)
        make_partition(
            data, {"scheme": "dirichlet", "num_clients": 4, "alpha": 0.5}, 0, root / "part"
        )
        model = save_tiny_ddpm(root / "ddpm", num_classes=10)
        settings = FeatureSettings(
            backbone="ddpm",
            model=str(model),
            blocks=(0, 1),
            dims=(8, 8),
            pca_fit_images=200,
            batch_size=128,
            device="cpu",
        )
        extract_features(data, settings, root / "features.h5", progress=False)
    return {
        "data": data,
        "partition": root / "part" / "partition.npz",
        "features": root / "features.h5",
        "root": root,
    }


def _run(setup: dict[str, Path], name: str, method: dict) -> pd.DataFrame:
    settings = {
        "dataset": "digits",
        "partition": {},
        "method": method,
        "seed": 3,
        "training": {
            "model": "cnn",
            "width": 0.125,
            "rounds": 2,
            "clients_per_round": 2,
            "local_epochs": 1,
            "batch_size": 32,
            "lr": 0.05,
            "device": "cpu",
        },
    }
    return train_run(
        settings, setup["data"], setup["partition"], setup["root"] / name, progress=False
    )


def test_feddifrc_end_to_end_on_digits(digits_setup: dict[str, Path]) -> None:
    features = str(digits_setup["features"])
    fedavg = _run(digits_setup, "fedavg", {"strategy": "fedavg"})
    full = _run(digits_setup, "full", {"strategy": "feddifrc", "features": features})
    off = _run(
        digits_setup,
        "off",
        {"strategy": "feddifrc", "features": features, "lambda_tdcl": 0.0, "lambda_ndcr": 0.0},
    )
    tdcl = _run(
        digits_setup,
        "tdcl",
        {"strategy": "feddifrc", "features": features, "lambda_ndcr": 0.0, "layers": "1"},
    )
    for m in (full, tdcl):
        assert list(m["round"]) == [1, 2] and m["test_acc"].between(0, 1).all()
        assert np.isfinite(m["train_loss"]).all()
    # 16-d CNN features against 8 + 8 dims: no head, so both terms off is FedAvg up to
    # float rounding (measured: weights ~1e-8 apart after one round)...
    pd.testing.assert_frame_equal(
        off.drop(columns="seconds"), fedavg.drop(columns="seconds"), rtol=1e-3
    )
    assert off["test_acc"].tolist() == fedavg["test_acc"].tolist()
    # ...and with the terms on, the extra loss is there and training differs
    assert (full["train_loss"] > fedavg["train_loss"] + 0.1).all()
    assert not np.allclose(full["test_loss"], fedavg["test_loss"], rtol=1e-2)
    assert (digits_setup["root"] / "tdcl" / "model.safetensors").stat().st_size > 1000


def test_features_of_another_dataset_are_refused(
    digits_setup: dict[str, Path], toy_data: Path, ddpm_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "toy_features.h5"
    extract_features(
        toy_data,
        FeatureSettings(backbone="ddpm", model=str(ddpm_dir), blocks=(0,), dims=(4,), device="cpu"),
        other,
        progress=False,
    )
    with pytest.raises(ValueError, match="another dataset"):
        _run(digits_setup, "wrong", {"strategy": "feddifrc", "features": str(other)})
    with pytest.raises(ValueError, match="mode supervised"):
        _run(
            digits_setup,
            "ss",
            {
                "strategy": "feddifrc",
                "features": str(digits_setup["features"]),
                "self_supervised": True,
            },
        )


def test_self_supervised_feddifrc_trains_only_the_probe_without_its_terms(
    toy_rgb: Path, sd_dir: Path, tmp_path: Path
) -> None:
    features = tmp_path / "ss.h5"
    extract_features(
        toy_rgb,
        FeatureSettings(
            model=str(sd_dir),
            blocks=(1,),
            dims=(6,),
            image_size=16,
            mode="self_supervised",
            num_negatives=2,
            device="cpu",
        ),
        features,
        progress=False,
    )
    make_partition(toy_rgb, {"scheme": "iid", "num_clients": 2}, 0, tmp_path / "part")
    settings = {
        "dataset": "toy",
        "partition": {},
        "seed": 0,
        "method": {"strategy": "feddifrc", "features": str(features), "self_supervised": True},
        "training": {
            "model": "cnn",
            "width": 0.25,
            "rounds": 1,
            "clients_per_round": 2,
            "local_epochs": 1,
            "batch_size": 8,
            "device": "cpu",
        },
    }
    from safetensors.torch import load_file

    from feddiff.utils.seeding import seed_everything

    seed_everything(0)
    init = build_model("cnn", 4, 3, 16, width=0.25).state_dict()
    train_run(
        settings, toy_rgb, tmp_path / "part" / "partition.npz", tmp_path / "on", progress=False
    )
    off = {**settings, "method": {**settings["method"], "lambda_tdcl": 0.0, "lambda_ndcr": 0.0}}
    train_run(off, toy_rgb, tmp_path / "part" / "partition.npz", tmp_path / "off", progress=False)
    on_w, off_w = (
        load_file(tmp_path / "on" / "model.safetensors"),
        load_file(tmp_path / "off" / "model.safetensors"),
    )
    # Without TDCL/NDCR nothing but the (detached) probe learns; with them the encoder moves.
    assert torch.equal(off_w["base.conv1.weight"], init["conv1.weight"])
    assert not torch.equal(off_w["base.classifier.weight"], init["classifier.weight"])
    assert not torch.equal(on_w["base.conv1.weight"], init["conv1.weight"])
