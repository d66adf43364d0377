"""Fréchet distance: zero on itself, grows with a shift, Gaussian closed form; labelled kinds."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from feddiff.diffusion import fid as fid_mod
from feddiff.diffusion.fid import (
    KIND_CLASSIFIER,
    frechet_distance,
    load_feature_extractor,
)
from feddiff.diffusion.fid_classifier import ClassifierFeatures, train_fid_classifier
from feddiff.diffusion.settings import ClassifierSettings


def test_fd_of_a_set_with_itself_is_zero_and_grows_with_shift() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    values = [frechet_distance(x, x + s) for s in (0.1, 0.5, 1.0, 2.0)]
    assert values == sorted(values) and values[0] > 0
    assert values[2] == pytest.approx(16 * 1.0**2, rel=1e-6)  # a pure shift adds ||delta||^2
    scaled = [frechet_distance(x, x * s) for s in (1.1, 1.5, 2.0)]
    assert scaled == sorted(scaled)


def test_fd_matches_gaussian_closed_form() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200000, 3)) * np.array([1.0, 2.0, 0.5])
    b = rng.normal(size=(200000, 3)) * np.array([2.0, 1.0, 0.5]) + np.array([1.0, 0.0, 0.0])
    expected = 1.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0.0  # |dmu|^2 + sum (sqrt(va) - sqrt(vb))^2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)


def test_fd_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))


def test_classifier_backend_is_labelled_and_auto_falls_back(
    tmp_path: Path, digits_h5: Path, monkeypatch: Any
) -> None:
    info = train_fid_classifier(
        digits_h5, ClassifierSettings(epochs=2, device="cpu"), tmp_path / "clf"
    )
    assert info["test_acc"] > 0.5 and (tmp_path / "clf" / "model.safetensors").is_file()
    monkeypatch.setattr(fid_mod, "inception_weights_path", lambda: None)  # offline: no Inception
    ext = load_feature_extractor("auto", tmp_path / "clf", torch.device("cpu"))
    assert isinstance(ext, ClassifierFeatures) and ext.kind == KIND_CLASSIFIER
    assert "not Inception" in ext.kind
    images = torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8)
    assert ext(images).shape == (10, info["feature_dim"])


def test_inception_needs_the_package_and_local_weights(monkeypatch: Any, tmp_path: Path) -> None:
    import builtins

    real_import = builtins.__import__

    def no_fidelity(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("torch_fidelity"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fidelity)
    assert fid_mod.inception_weights_path() is None
    with pytest.raises(ValueError, match="unknown FID backend"):
        load_feature_extractor("inceptionish", tmp_path, torch.device("cpu"))
