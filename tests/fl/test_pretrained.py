"""feddiff.models.pretrained: config.json + model.safetensors round trips (CNN, ResNet)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from feddiff.models import build_model
from feddiff.models.pretrained import classifier_config, load_pretrained, save_pretrained
from feddiff.utils.atomic import atomic_dir


@pytest.mark.parametrize(
    ("name", "in_channels", "image_size", "width"),
    [("cnn", 1, 8, 0.5), ("resnet10", 3, 16, 0.25)],
)
def test_round_trip_same_outputs(
    tmp_path: Path, name: str, in_channels: int, image_size: int, width: float
) -> None:
    torch.manual_seed(0)
    model = build_model(name, 7, in_channels, image_size, width)
    with torch.no_grad():  # non-default batch-norm statistics must survive too
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    model.eval()
    x = torch.randn(5, in_channels, image_size, image_size)
    feats, logits = model(x)
    config = classifier_config(name, 7, in_channels, image_size, width)
    save_pretrained(model, tmp_path / "m", config)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    doc = json.loads((tmp_path / "m" / "config.json").read_text())
    assert {k: doc[k] for k in config} == config and doc["wrapper"] is None
    back = load_pretrained(tmp_path / "m")
    assert type(back) is type(model) and not back.training
    feats2, logits2 = back(x)
    assert torch.equal(feats, feats2) and torch.equal(logits, logits2)
    # the weights file is plain safetensors: loadable without feddiff
    raw = load_file(tmp_path / "m" / "model.safetensors")
    assert raw.keys() == model.state_dict().keys()


def test_wrong_config_fails_at_save(tmp_path: Path) -> None:
    model = build_model("cnn", 7, 1, 8, 0.5)
    with pytest.raises(ValueError, match="does not match its config"):
        save_pretrained(model, tmp_path / "m", classifier_config("cnn", 10, 1, 8, 0.5))
    with pytest.raises(ValueError, match="lacks"):
        save_pretrained(model, tmp_path / "m", {"model": "cnn"})
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_wrapped_model_needs_its_wrapper(tmp_path: Path) -> None:
    class Wrapped(torch.nn.Module):
        def __init__(self, base: torch.nn.Module) -> None:
            super().__init__()
            self.base, self.head = base, torch.nn.Linear(base.feature_dim, 3)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h, logits = self.base(x)
            return self.head(h), logits

    torch.manual_seed(1)
    model = Wrapped(build_model("cnn", 4, 1, 8, 0.25)).eval()
    config = classifier_config("cnn", 4, 1, 8, 0.25)
    save_pretrained(model, tmp_path / "w", config, wrapper="moon")
    with pytest.raises(ValueError, match="'moon'"):
        load_pretrained(tmp_path / "w")
    back = load_pretrained(tmp_path / "w", wrap=Wrapped)
    x = torch.randn(2, 1, 8, 8)
    assert all(torch.equal(a, b) for a, b in zip(model(x), back(x)))


def test_legacy_folder_loads_with_a_given_config(tmp_path: Path) -> None:
    """A folder from before config.json: the caller supplies the architecture."""
    model = build_model("cnn", 3, 1, 8, 0.25).eval()
    config = classifier_config("cnn", 3, 1, 8, 0.25)
    save_pretrained(model, tmp_path / "m", config)
    (tmp_path / "m" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_pretrained(tmp_path / "m")
    back = load_pretrained(tmp_path / "m", config=config)
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(model(x)[1], back(x)[1])


def test_atomic_dir_swaps_or_leaves_the_old_folder(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a").write_text("2")
            raise RuntimeError("interrupted")
    assert (target / "a").read_text() == "1"  # the old folder untouched
    with atomic_dir(target) as tmp:
        (tmp / "b").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["b"]  # replaced, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporaries left


@pytest.mark.parametrize("legacy", [False, True])
def test_fid_classifier_loads_through_load_pretrained(tmp_path: Path, legacy: bool) -> None:
    """The FID feature network's folder (config.json + weights + info.json); a folder from
    before config.json loads from info.json's architecture."""
    from feddiff.diffusion.fid_classifier import INFO_FILE, ClassifierFeatures

    torch.manual_seed(2)
    model = build_model("cnn", 5, 1, 8, 0.25).eval()
    info = {
        "settings": {"model": "cnn", "width": 0.25},
        "num_classes": 5,
        "in_channels": 1,
        "image_size": 8,
        "mean": [0.25],
        "std": [0.5],
    }
    save_pretrained(model, tmp_path, classifier_config("cnn", 5, 1, 8, 0.25))
    (tmp_path / INFO_FILE).write_text(json.dumps(info))
    if legacy:
        (tmp_path / "config.json").unlink()
    ext = ClassifierFeatures.load(tmp_path, torch.device("cpu"))
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        expected = model((images.float() / 255.0 - 0.25) / 0.5)[0].double().numpy()
    assert ext(images).shape == (4, model.feature_dim)
    assert (abs(ext(images) - expected) < 1e-6).all()


@pytest.mark.parametrize("method", [{"strategy": "fedavg"}, {"strategy": "moon"}])
def test_run_dir_model_reproduces_the_final_round(tmp_path: Path, method: dict) -> None:
    """train_run's saved model, loaded back, scores exactly the last row of metrics.csv
    (MOON: the projection-head wrapper, rebuilt with the strategy's wrap_model)."""
    import pandas as pd

    from feddiff.data.h5 import load_dataset
    from feddiff.fl.data import FederatedData
    from feddiff.fl.engine import evaluate
    from feddiff.fl.run import train_run
    from feddiff.fl.strategy import build_strategy
    from feddiff.stages import make_partition
    from tests.features.conftest import save_toy

    data_path = save_toy(tmp_path / "toy.h5", n_train=24, n_test=12, channels=1, size=8)
    make_partition(data_path, {"scheme": "iid", "num_clients": 2}, 0, tmp_path / "part")
    settings = {
        "dataset": "toy",
        "partition": {},
        "seed": 0,
        "method": method,
        "training": {
            "model": "cnn",
            "width": 0.25,
            "rounds": 2,
            "clients_per_round": 2,
            "local_epochs": 1,
            "batch_size": 8,
            "device": "cpu",
        },
    }
    out = tmp_path / "run"
    train_run(settings, data_path, tmp_path / "part" / "partition.npz", out, progress=False)
    doc = json.loads((out / "config.json").read_text())
    wrapped = method["strategy"] == "moon"
    assert doc["wrapper"] == ("moon" if wrapped else None)
    with pytest.raises(ValueError, match="wrap") if wrapped else contextlib.nullcontext():
        load_pretrained(out)
    arrays = load_dataset(data_path)
    wrap = build_strategy(method, 2, arrays.num_classes).wrap_model if wrapped else None
    model = load_pretrained(out, wrap=wrap)
    data = FederatedData.from_arrays(
        arrays.x_train,
        arrays.y_train,
        arrays.x_test,
        arrays.y_test,
        [],
        arrays.num_classes,
        torch.device("cpu"),
    )
    acc, loss = evaluate(model, data, 64)
    last = pd.read_csv(out / "metrics.csv").iloc[-1]
    assert acc == pytest.approx(last["test_acc"], abs=1e-9)
    assert loss == pytest.approx(last["test_loss"], rel=1e-5)
