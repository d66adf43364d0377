"""The extractor: same numbers as a plain diffusers forward, PCA once, HDF5 cache, resume."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from feddiff.data.h5 import dataset_fingerprint, load_dataset
from feddiff.features import extract as extract_mod
from feddiff.features.backbones import (
    ModelNotFoundError,
    load_backbone,
    resolve_model_dir,
)
from feddiff.features.blocks import BlockCapture
from feddiff.features.extract import block_maps, extract_features
from feddiff.features.pca import LayerPCA, reduce_maps
from feddiff.features.prompts import build_conditions
from feddiff.features.settings import FeatureSettings
from feddiff.features.store import load_features, partial_path, read_attrs
from feddiff.fl.sampling import derived_seed

from .conftest import one_thread, save_tiny_ddpm, save_toy
from .test_blocks import plain_forward_outputs

CPU = torch.device("cpu")


def ddpm_settings(model: Path, **kw: object) -> FeatureSettings:
    base = {
        "backbone": "ddpm",
        "model": str(model),
        "blocks": (0, 1),
        "dims": (6, 4),
        "pca_fit_images": 0,
        "batch_size": 8,
        "unet_batch_size": 16,
        "device": "cpu",
    }
    return FeatureSettings(**{**base, **kw})


def _noise(index: int, shape: tuple[int, ...], split: int = 0, seed: int = 0) -> torch.Tensor:
    """The documented noise of image ``index``: a generator seeded by (seed, split, index, draw)."""
    gen = torch.Generator().manual_seed(derived_seed(seed, split, index, 0))
    return torch.randn(shape, generator=gen)


def test_ddpm_extractor_equals_a_plain_diffusers_forward(toy_data: Path, ddpm_dir: Path) -> None:
    from diffusers import DDPMScheduler, UNet2DModel

    settings = ddpm_settings(ddpm_dir, unet_batch_size=7)  # chunks cut across images
    arrays = load_dataset(toy_data)
    backbone = load_backbone("ddpm", ddpm_dir, CPU, torch.float32, None, arrays.num_classes)
    backbone.set_conditions(build_conditions(settings, arrays.class_names))
    idx = [3, 7, 8]
    with BlockCapture(backbone.unet, settings.blocks) as capture:
        maps = block_maps(
            backbone, capture, torch.from_numpy(arrays.x_train[idx]), idx, 0, settings, range(5)
        )
    unet = UNet2DModel.from_pretrained(ddpm_dir / "unet").eval()
    scheduler = DDPMScheduler.from_pretrained(ddpm_dir / "scheduler")
    x0 = torch.from_numpy(arrays.x_train[idx]).permute(0, 3, 1, 2).float() / 127.5 - 1
    t = torch.tensor([300])
    for j, i in enumerate(idx):
        noisy = scheduler.add_noise(x0[j : j + 1], _noise(i, (1, 1, 8, 8)), t)
        for c in range(5):  # classes 0..3, then the null class 4
            ref, _ = plain_forward_outputs(unet, noisy, t, class_labels=torch.tensor([c]))
            for layer, block in enumerate(settings.blocks):
                torch.testing.assert_close(maps[layer][j, c], ref[block][0], atol=1e-5, rtol=1e-5)


def test_sd_extractor_equals_a_plain_diffusers_forward(toy_rgb: Path, sd_dir: Path) -> None:
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )

    settings = FeatureSettings(
        model=str(sd_dir), blocks=(0, 1), dims=(4, 4), image_size=16, device="cpu"
    )
    arrays = load_dataset(toy_rgb)
    conditions = build_conditions(settings, arrays.class_names)
    assert conditions.all[0] == "a photo of a airplane" and conditions.denoise == ""
    backbone = load_backbone("stable_diffusion", sd_dir, CPU, torch.float32, 16, arrays.num_classes)
    backbone.set_conditions(conditions)
    idx = [1, 5]
    with BlockCapture(backbone.unet, settings.blocks) as capture:
        maps = block_maps(
            backbone, capture, torch.from_numpy(arrays.x_train[idx]), idx, 0, settings, range(5)
        )
    # The prompt embeddings are the official pipeline's.
    pipe = StableDiffusionPipeline.from_pretrained(sd_dir, safety_checker=None)
    embeds, _ = pipe.encode_prompt(list(conditions.all), CPU, 1, False)
    vae = AutoencoderKL.from_pretrained(sd_dir, subfolder="vae").eval()
    unet = UNet2DConditionModel.from_pretrained(sd_dir, subfolder="unet").eval()
    scheduler = DDIMScheduler.from_pretrained(sd_dir, subfolder="scheduler")
    x = torch.from_numpy(arrays.x_train[idx]).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        latents = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
    t = torch.tensor([300])
    for j, i in enumerate(idx):
        noisy = scheduler.add_noise(latents[j : j + 1], _noise(i, (1, 4, 8, 8)), t)
        for c in range(5):
            ref, _ = plain_forward_outputs(unet, noisy, t, encoder_hidden_states=embeds[c : c + 1])
            for layer, block in enumerate(settings.blocks):
                torch.testing.assert_close(maps[layer][j, c], ref[block][0], atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, toy_data: Path, ddpm_dir: Path) -> Path:
    """An uninterrupted extraction to compare everything else with."""
    out = tmp_path_factory.mktemp("ref") / "features.h5"
    with one_thread():  # module-scoped: set up before the autouse fixture
        extract_features(toy_data, ddpm_settings(ddpm_dir), out, progress=False)
    return out


def _read(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        out: dict[str, np.ndarray] = {}
        f.visititems(
            lambda name, obj: (
                out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return out


def test_file_layout_and_attributes(reference: Path, toy_data: Path, ddpm_dir: Path) -> None:
    arrays = load_dataset(toy_data)
    attrs = read_attrs(reference)
    assert attrs["complete"] and attrs["timestep"] == 300 and attrs["blocks"] == [0, 1]
    assert attrs["dims"] == [6, 4] and attrs["layer_dims"] == [6, 4] and attrs["image_size"] == 8
    assert attrs["model"] == str(ddpm_dir) and len(attrs["model_fingerprint"]) == 64
    assert attrs["dataset_fingerprint"] == dataset_fingerprint(toy_data)
    assert attrs["conditions"] == ["airplane", "automobile", "bird", "cat", "<null class>"]
    data = _read(reference)
    assert data["train/conditional"].shape == (40, 4, 10) and data["train/denoised"].shape == (
        40,
        10,
    )
    assert data["test/denoised"].shape == (12, 10) and "test/conditional" not in data
    assert np.array_equal(data["train/labels"], arrays.y_train) and data["train/done"].all()
    assert data["pca/layer0/components"].shape == (6, 16) and data[
        "pca/layer1/components"
    ].shape == (4, 8)
    assert not any(k.startswith("pca_fit") for k in data)  # the running moments are dropped
    cache = load_features(reference, "train", dataset_fingerprint=dataset_fingerprint(toy_data))
    assert torch.equal(cache.conditional, torch.from_numpy(data["train/conditional"]))
    assert cache.layer_columns([1]).tolist() == [6, 7, 8, 9]


def test_pca_is_the_training_hypercolumns_pca_applied_to_every_image(
    reference: Path, toy_data: Path, ddpm_dir: Path
) -> None:
    settings = ddpm_settings(ddpm_dir)
    arrays = load_dataset(toy_data)
    backbone = load_backbone("ddpm", ddpm_dir, CPU, torch.float32, None, 4)
    backbone.set_conditions(build_conditions(settings, arrays.class_names))
    with BlockCapture(backbone.unet, settings.blocks) as capture:
        train = block_maps(
            backbone, capture, torch.from_numpy(arrays.x_train), range(40), 0, settings, range(5)
        )
        test = block_maps(
            backbone, capture, torch.from_numpy(arrays.x_test), range(12), 1, settings, [4]
        )
    data = _read(reference)
    pcas = []
    for layer, (maps, dim) in enumerate(zip(train, settings.dims)):
        cols = maps.permute(0, 1, 3, 4, 2).reshape(-1, maps.shape[2]).double().numpy()
        values, vectors = np.linalg.eigh(np.cov(cols, rowvar=False))
        top = vectors[:, ::-1][:, :dim].T
        top *= np.sign(top[np.arange(dim), np.abs(top).argmax(1)])[:, None]
        stored = data[f"pca/layer{layer}/components"]
        np.testing.assert_allclose(stored, top, atol=1e-4)
        np.testing.assert_allclose(
            data[f"pca/layer{layer}/explained_variance"], values[::-1][:dim], rtol=1e-4
        )
        np.testing.assert_allclose(data[f"pca/layer{layer}/mean"], cols.mean(0), atol=1e-5)
        pcas.append((stored.astype(np.float64), data[f"pca/layer{layer}/mean"].astype(np.float64)))

    def project(maps: list[torch.Tensor]) -> np.ndarray:
        """Centre each hypercolumn, project on the stored basis, average over positions,
        concatenate."""
        out = []
        for m, (comps, mean) in zip(maps, pcas):
            cols = (
                m.double().numpy().reshape(*m.shape[:3], -1).transpose(0, 1, 3, 2)
            )  # (B, K, hw, C)
            out.append(((cols - mean) @ comps.T).mean(axis=2))
        return np.concatenate(out, axis=-1)

    # One basis for every image and condition.
    reps = project(train)
    np.testing.assert_allclose(data["train/conditional"], reps[:, :4], atol=1e-5)
    np.testing.assert_allclose(data["train/denoised"], reps[:, 4], atol=1e-5)
    np.testing.assert_allclose(data["test/denoised"], project(test)[:, 0], atol=1e-5)


def test_norm_pooling_is_the_l2_norm_over_positions() -> None:
    maps = torch.tensor([[[[3.0, 4.0]], [[1.0, -1.0]]]])  # (1, C=2, h=1, w=2)
    pca = LayerPCA(torch.eye(2), torch.zeros(2), torch.ones(2), torch.ones(2), 2)
    torch.testing.assert_close(reduce_maps(maps, pca, "norm"), torch.tensor([[5.0, 2.0**0.5]]))
    torch.testing.assert_close(reduce_maps(maps, pca, "mean"), torch.tensor([[3.5, 0.0]]))


def test_why_norm_pooling_post_relu_embeddings_reach_norm_targets_not_signed_means() -> None:
    """Worked by hand: hypercolumns (3, 1) and (-5, -1) after centring on mean (0, 0) and a
    rotation by 90 degrees (components (0, 1) and (-1, 0))."""
    maps = torch.tensor([[[[3.0, -5.0]], [[1.0, -1.0]]]])  # (1, C=2, h=1, w=2)
    comps = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    pca = LayerPCA(comps, torch.zeros(2), torch.ones(2), torch.ones(2), 2)
    # projections: (1, -3) and (-1, 5); mean: (0, 1); norm: (sqrt(1 + 1), sqrt(9 + 25))
    mean = reduce_maps(maps, pca, "mean")
    norm = reduce_maps(maps, pca, "norm")
    torch.testing.assert_close(mean, torch.tensor([[0.0, 1.0]]))
    torch.testing.assert_close(norm, torch.tensor([[2.0**0.5, 34.0**0.5]]))
    # a second image whose mean-pooled target has a negative entry:
    maps2 = torch.tensor(
        [[[[1.0, 1.0]], [[1.0, 3.0]]]]
    )  # projections (1, -1), (3, -1): mean (2, -1)
    target = reduce_maps(maps2, pca, "mean")[0]
    torch.testing.assert_close(target, torch.tensor([2.0, -1.0]))
    # the best cosine a non-negative (post-ReLU) embedding z reaches is |t_+| / |t|: 2 / sqrt5
    # here, found by brute force over the non-negative quarter circle; the norm-pooled target
    # (non-negative) is matched exactly (cos 1) by z = the target itself
    angles = torch.linspace(0, torch.pi / 2, 2001)
    z = torch.stack([angles.cos(), angles.sin()], 1)
    best = torch.nn.functional.cosine_similarity(z, target[None], dim=1).max().item()
    assert best == pytest.approx(2 / 5**0.5, abs=1e-6)
    t_norm = reduce_maps(maps2, pca, "norm")[0]
    assert (t_norm >= 0).all()
    assert torch.nn.functional.cosine_similarity(
        z, t_norm[None], dim=1
    ).max().item() == pytest.approx(1.0, abs=1e-6)


class Interrupt(Exception):
    pass


def _stop(phase: str, after: int):  # type: ignore[no-untyped-def]
    def callback(p: str, done: int) -> None:
        if p == phase and done >= after:
            raise Interrupt

    return callback


def test_an_interrupted_extraction_resumes_where_it_stopped(
    tmp_path: Path, toy_data: Path, ddpm_dir: Path, reference: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fits = []
    real_fit = extract_mod.fit_pca
    monkeypatch.setattr(extract_mod, "fit_pca", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    out = tmp_path / "f.h5"
    settings = ddpm_settings(ddpm_dir)
    with pytest.raises(Interrupt):
        extract_features(toy_data, settings, out, progress=False, on_batch=_stop("train", 16))
    assert not out.exists() and partial_path(out).exists()
    with h5py.File(partial_path(out)) as f:
        assert f["train/done"][()].sum() == 16 and not f.attrs["complete"]
    result = extract_features(toy_data, settings, out, progress=False)
    assert result.fit_images == 0 and result.extracted == {"train": 24, "test": 12}
    assert len(fits) == 2 and not partial_path(out).exists()  # two layers, fitted once
    ref, got = _read(reference), _read(out)
    assert ref.keys() == got.keys()
    for key in ref:
        assert np.array_equal(ref[key], got[key]), key


def test_an_interrupted_pca_fit_resumes_from_its_saved_moments(
    tmp_path: Path, toy_data: Path, ddpm_dir: Path, reference: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extract_mod, "FIT_SAVE_EVERY", 1)
    out = tmp_path / "f.h5"
    with pytest.raises(Interrupt):
        extract_features(
            toy_data, ddpm_settings(ddpm_dir), out, progress=False, on_batch=_stop("fit", 24)
        )
    with h5py.File(partial_path(out)) as f:
        assert f["pca_fit"].attrs["next"] == 24 and "pca" not in f
    result = extract_features(toy_data, ddpm_settings(ddpm_dir), out, progress=False)
    assert result.fit_images == 16
    ref, got = _read(reference), _read(out)
    for key in ref:
        assert np.array_equal(ref[key], got[key]), key


def test_a_partial_file_with_other_settings_is_discarded(
    tmp_path: Path, toy_data: Path, ddpm_dir: Path
) -> None:
    out = tmp_path / "f.h5"
    with pytest.raises(Interrupt):
        extract_features(
            toy_data, ddpm_settings(ddpm_dir), out, progress=False, on_batch=_stop("train", 8)
        )
    result = extract_features(toy_data, ddpm_settings(ddpm_dir, timestep=100), out, progress=False)
    assert result.fit_images == 40 and result.extracted["train"] == 40
    assert read_attrs(out)["timestep"] == 100


def test_a_current_cache_is_reused_and_a_mismatched_one_rebuilt(
    tmp_path: Path, toy_data: Path, ddpm_dir: Path, reference: Path
) -> None:
    out = tmp_path / "f.h5"
    shutil.copy(reference, out)
    assert extract_features(toy_data, ddpm_settings(ddpm_dir), out, progress=False).skipped
    # other settings
    assert not extract_features(
        toy_data, ddpm_settings(ddpm_dir, dims=(5, 4)), out, progress=False
    ).skipped
    assert read_attrs(out)["dims"] == [5, 4]
    # other model weights at the same path
    model = save_tiny_ddpm(tmp_path / "model", num_classes=4)
    extract_features(toy_data, ddpm_settings(model), out, progress=False)
    assert extract_features(toy_data, ddpm_settings(model), out, progress=False).skipped
    save_tiny_ddpm(model, num_classes=4, seed=1)
    assert not extract_features(toy_data, ddpm_settings(model), out, progress=False).skipped
    # other data at the same path
    data = save_toy(tmp_path / "data.h5", n_train=40, n_test=12, seed=0)
    extract_features(data, ddpm_settings(model), out, progress=False)
    save_toy(data, n_train=40, n_test=12, seed=5)
    assert not extract_features(data, ddpm_settings(model), out, progress=False).skipped


def test_a_mismatched_cache_is_never_silently_used(
    tmp_path: Path, toy_data: Path, reference: Path
) -> None:
    with pytest.raises(ValueError, match="another dataset"):
        load_features(reference, "train", dataset_fingerprint="0" * 64)
    with pytest.raises(FileNotFoundError, match="extract-features"):
        load_features(tmp_path / "missing.h5")
    incomplete = tmp_path / "incomplete.h5"
    shutil.copy(reference, incomplete)
    with h5py.File(incomplete, "r+") as f:
        f.attrs["complete"] = False
    with pytest.raises(ValueError, match="incomplete"):
        load_features(incomplete)


def test_a_missing_model_fails_fast_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, toy_data: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    tic = time.perf_counter()
    with pytest.raises(
        ModelNotFoundError, match=r"features\.sd\.model.*HF_HUB_OFFLINE.*backbone: ddpm"
    ):
        extract_features(
            toy_data,
            FeatureSettings(model="nobody/no-such-model"),
            tmp_path / "f.h5",
            where="features.sd",
            progress=False,
        )
    assert time.perf_counter() - tic < 10
    with pytest.raises(ModelNotFoundError, match=r"features\.model.*not a folder"):
        resolve_model_dir(str(tmp_path / "nowhere"), "stable_diffusion")
    with pytest.raises(ModelNotFoundError, match="unet/ and scheduler/"):
        resolve_model_dir("org/name", "ddpm")


def test_ddpm_without_a_null_class_is_refused(tmp_path: Path, toy_data: Path) -> None:
    model = save_tiny_ddpm(tmp_path / "m", num_classes=3)
    with pytest.raises(ValueError, match="num_class_embeds=4.*5 class embeddings"):
        extract_features(toy_data, ddpm_settings(model), tmp_path / "f.h5", progress=False)


def test_self_supervised_sd_features(tmp_path: Path, toy_rgb: Path, sd_dir: Path) -> None:
    settings = FeatureSettings(
        model=str(sd_dir),
        blocks=(0, 1),
        dims=(4, 3),
        image_size=16,
        mode="self_supervised",
        num_negatives=3,
        pooling="norm",
        pca_fit_images=10,
        device="cpu",
    )
    out = tmp_path / "ss.h5"
    extract_features(toy_rgb, settings, out, progress=False)
    attrs = read_attrs(out)
    assert attrs["conditions"] == [
        "a photo of a similar object",
        "a photo of a person",
        "a photo of a dog",
        "a photo of a cat",
        "a photo of a visual object",
    ]
    assert attrs["mode"] == "self_supervised" and attrs["pca_fit_images"] == 10
    cache = load_features(out)
    assert cache.conditional.shape == (24, 4, 7) and cache.mode == "self_supervised"
    assert (cache.denoised >= 0).all()  # norm pooling
    assert not torch.allclose(cache.conditional[:, 0], cache.conditional[:, 1])  # prompts matter


def test_settings_reject_bad_values() -> None:
    with pytest.raises(ValueError, match=r"features\.dims has 2 entries"):
        FeatureSettings.from_dict({"blocks": [1, 2, 3], "dims": [4, 4]})
    with pytest.raises(ValueError, match="self_supervised needs text prompts"):
        FeatureSettings.from_dict({"backbone": "ddpm", "model": "x", "mode": "self_supervised"})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['timesteps'\]"):
        FeatureSettings.from_dict({"timesteps": 3})
    s = FeatureSettings()
    assert (
        dataclasses.replace(s, batch_size=1).identity() == s.identity()
    )  # batching never changes vectors
    assert dataclasses.replace(s, timestep=1).identity() != s.identity()
