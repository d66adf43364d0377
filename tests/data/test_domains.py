"""Multi-domain datasets (``source: domains``) and the transforms that derive domains."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from PIL import Image

from feddiff.config import ConfigError
from feddiff.data import DataError, load_dataset, load_source, prepare_dataset
from feddiff.data.digits import load_digits_source
from feddiff.data.transforms import apply_transform, check_transform
from feddiff.plan import validate_config

from .test_torchvision_sources import _fake_mnist

CIFAR = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cifar10"


def _digits_domains(**extra: Any) -> dict[str, Any]:
    return {
        "source": "domains",
        "image_size": 8,
        "channels": 1,
        "domains": {
            "plain": {"source": "digits"},
            "rotated": {"derive": {"from": "plain", "transform": "rotate", "degrees": 90}},
            "inverted": {"derive": {"from": "rotated", "transform": "invert"}},
            **extra,
        },
    }


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _folder(root: Path, classes: list[str], size: tuple[int, int], mode: str, per: int = 2) -> Path:
    rng = np.random.default_rng(len(classes) + size[0])
    for split in ("train", "test"):
        for c in classes:
            for i in range(per):
                shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
                _write_png(
                    root / split / c / f"{i}.png", rng.integers(0, 256, shape, dtype=np.uint8)
                )
    return root


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# ---- transforms ---------------------------------------------------------------------
def test_rotate_invert_grayscale_colour_cast_by_their_formulas() -> None:
    x = np.array([[[1, 2], [3, 4]]], dtype=np.uint8)[..., None]
    assert apply_transform(x, "rotate", {"degrees": 90})[0, ..., 0].tolist() == [
        [2, 4],
        [1, 3],
    ]  # counter-clockwise
    assert apply_transform(x, "rotate", {"degrees": -90})[0, ..., 0].tolist() == [[3, 1], [4, 2]]
    assert np.array_equal(apply_transform(x, "rotate", {"degrees": 360}), x)
    assert apply_transform(x, "invert", {})[0, ..., 0].tolist() == [[254, 253], [252, 251]]
    rgb = np.zeros((1, 2, 2, 3), np.uint8)
    rgb[0, 0, 0] = (200, 100, 50)  # luma 0.299*200 + 0.587*100 + 0.114*50 = 124.2
    gray = apply_transform(rgb, "grayscale", {})
    assert gray[0, 0, 0].tolist() == [124, 124, 124] and gray[0, 1, 1].tolist() == [0, 0, 0]
    cast = apply_transform(rgb, "colour_cast", {"colour": [255, 160, 64], "strength": 0.4})
    assert cast[0, 1, 1].tolist() == [102, 64, 26]  # 0.4 * (255, 160, 64) = (102, 64, 25.6)
    assert cast[0, 0, 0].tolist() == [222, 124, 56]  # 0.6 * (200, 100, 50) + 0.4 * colour
    with pytest.raises(DataError, match="channels: 3"):
        apply_transform(x, "colour_cast", {})


def test_rotate_by_other_angles_keeps_shape_and_fills_black() -> None:
    white = np.full((2, 9, 9, 3), 255, np.uint8)
    out = apply_transform(white, "rotate", {"degrees": 45})
    assert out.shape == white.shape and out.dtype == np.uint8
    assert out[0, 0, 0].tolist() == [0, 0, 0] and out[0, 4, 4].tolist() == [255, 255, 255]
    with pytest.raises(DataError, match="square"):
        apply_transform(np.zeros((1, 4, 6, 1), np.uint8), "rotate", {"degrees": 90})


def test_blur_spreads_an_impulse_as_a_gaussian() -> None:
    sigma = 2.0
    x = np.zeros((1, 21, 21, 1), np.uint8)
    x[0, 10, 10] = 255
    out = apply_transform(x, "blur", {"sigma": sigma})[0, ..., 0].astype(float)
    k = np.arange(-8, 9)  # truncate 4 sigma = 8 pixels
    g = np.exp(-(k**2) / (2 * sigma**2))
    g /= g.sum()
    expected = 255 * np.outer(g, g)
    assert np.abs(out[2:19, 2:19] - expected).max() <= 0.5 + 1e-9  # rounding only
    flat = np.full((1, 5, 5, 3), 77, np.uint8)
    assert np.array_equal(apply_transform(flat, "blur", {}), flat)


def test_sketch_draws_dark_strokes_on_white_at_edges() -> None:
    step = np.zeros((1, 8, 8, 1), np.uint8)
    step[0, :, 4:] = 255
    out = apply_transform(step, "sketch", {})[0, :, :, 0]
    assert out[:, 3].tolist() == [0] * 8 and out[:, 4].tolist() == [0] * 8  # the step, darkest
    assert out[:, 0].tolist() == [255] * 8 and out[:, 7].tolist() == [255] * 8  # no edge: paper
    flat = np.full((1, 6, 6, 3), 90, np.uint8)
    assert (apply_transform(flat, "sketch", {}) == 255).all()


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("swirl", {}, "'swirl' is unknown"),
        ("invert", {"degrees": 3}, r"takes no parameters, not \['degrees'\]"),
        ("blur", {"sigma": 0}, "sigma must be > 0"),
        ("colour_cast", {"strength": 1.5}, "strength must be <= 1"),
        ("colour_cast", {"colour": [1, 2]}, r"colour must be \[R, G, B\]"),
        ("rotate", {"degrees": "ninety"}, "degrees must be a finite number"),
    ],
)
def test_transform_parameters_are_checked(name: str, params: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        check_transform(name, params)


# ---- datasets -----------------------------------------------------------------------
def test_derived_digits_prepare_offline_with_domains_recorded(tmp_path: Path) -> None:
    out = tmp_path / "digits_domains.h5"
    prepare_dataset(_digits_domains(), out)
    data = load_dataset(out, verify=True)
    plain = load_digits_source()
    n, m = len(plain.y_train), len(plain.y_test)
    assert data.domain_names == ["plain", "rotated", "inverted"]
    assert data.domain_train.tolist() == [0] * n + [1] * n + [2] * n
    assert data.domain_test.tolist() == [0] * m + [1] * m + [2] * m
    assert data.class_names == plain.class_names and data.x_train.shape == (3 * n, 8, 8, 1)
    np.testing.assert_array_equal(data.x_train[:n], plain.x_train)  # 8x8 gray already: untouched
    np.testing.assert_array_equal(data.x_train[n : 2 * n], np.rot90(plain.x_train, 1, axes=(1, 2)))
    np.testing.assert_array_equal(
        data.x_test[2 * m :], 255 - np.rot90(plain.x_test, 1, axes=(1, 2))
    )
    np.testing.assert_array_equal(data.y_train, np.tile(plain.y_train, 3))
    assert data.attrs["domain_sizes"] == {"plain": [n, m], "rotated": [n, m], "inverted": [n, m]}
    with h5py.File(out) as f:
        assert f["train/domains"].shape == (3 * n,) and "domain_names" in f.attrs


def test_single_domain_files_have_no_domain_data(tmp_path: Path) -> None:
    prepare_dataset({"source": "digits"}, tmp_path / "d.h5")
    data = load_dataset(tmp_path / "d.h5", verify=True)
    assert not data.has_domains and data.domain_train is None
    with h5py.File(tmp_path / "d.h5") as f:
        assert "train/domains" not in f and "domain_names" not in f.attrs


def test_sizes_and_channels_are_brought_to_one_and_classes_trimmed(tmp_path: Path) -> None:
    spec = {
        "source": "domains",
        "image_size": 16,
        "channels": 3,
        "domains": {
            "small": {"source": "digits", "max_train_per_class": 3, "max_test_per_class": 2},
            "cast": {"derive": {"from": "small", "transform": "colour_cast"}},
        },
    }
    data = load_source(spec)
    plain = load_digits_source()
    keep = np.sort(np.concatenate([np.flatnonzero(plain.y_train == c)[:3] for c in range(10)]))
    assert data.x_train.shape == (60, 16, 16, 3) and data.x_test.shape == (40, 16, 16, 3)
    np.testing.assert_array_equal(
        data.y_train[:30], plain.y_train[keep]
    )  # first 3 per class, source order
    small = data.x_train[:30]
    assert (small[..., 0] == small[..., 1]).all() and (
        small[..., 0] == small[..., 2]
    ).all()  # gray -> RGB
    img = Image.fromarray(plain.x_train[keep[0], ..., 0]).resize((16, 16), Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(small[0, ..., 0], np.asarray(img))
    assert not (
        data.x_train[30:, ..., 0] == data.x_train[30:, ..., 2]
    ).all()  # the cast coloured it


def test_user_multi_domain_imagefolder_of_mixed_sizes(tmp_path: Path) -> None:
    a = _folder(tmp_path / "office" / "amazon", ["bike", "mug"], (12, 10), "RGB", per=3)
    b = _folder(tmp_path / "office" / "webcam", ["bike", "mug"], (20, 20), "L", per=2)
    out = tmp_path / "office.h5"
    prepare_dataset(
        {
            "source": "domains",
            "image_size": 8,
            "channels": 3,
            "domains": {
                "amazon": {"source": "imagefolder", "root": str(a), "workers": 1},
                "webcam": {
                    "source": "imagefolder",
                    "root": str(b),
                    "workers": 1,
                    "max_train_per_class": 1,
                },
            },
        },
        out,
    )
    data = load_dataset(out)
    assert data.class_names == ["bike", "mug"] and data.domain_names == ["amazon", "webcam"]
    assert data.x_train.shape == (8, 8, 8, 3) and data.domain_train.tolist() == [0] * 6 + [1] * 2
    assert data.domain_test.tolist() == [0] * 6 + [1] * 4
    with Image.open(a / "train" / "bike" / "0.png") as img:
        expected = np.asarray(img.convert("RGB").resize((8, 8), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(data.x_train[0], expected)
    assert data.attrs["domain_provenance"]["webcam"]["image_size"] == 8


@pytest.mark.parametrize(
    ("classes", "match"),
    [
        (
            ["bike", "cup"],
            r"domain 'webcam' has class 'cup' at position 1 where domain 'amazon' has 'mug'",
        ),
        (["bike"], r"domain 'amazon' has class 'mug' that domain 'webcam' lacks"),
        (["bike", "mug", "pen"], r"domain 'webcam' has class 'pen' that domain 'amazon' lacks"),
    ],
)
def test_mismatched_class_lists_name_domain_and_class_and_leave_no_output(
    tmp_path: Path, classes: list[str], match: str
) -> None:
    a = _folder(tmp_path / "amazon", ["bike", "mug"], (8, 8), "RGB")
    b = _folder(tmp_path / "webcam", classes, (8, 8), "RGB")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(DataError, match=match):
        prepare_dataset(
            {
                "source": "domains",
                "image_size": 8,
                "channels": 3,
                "domains": {
                    "amazon": {"source": "imagefolder", "root": str(a), "workers": 1},
                    "webcam": {"source": "imagefolder", "root": str(b), "workers": 1},
                },
            },
            out_dir / "office.h5",
        )
    assert _leftovers(out_dir) == []


@pytest.mark.parametrize(
    ("domains", "match"),
    [
        (
            {"a": {"source": "digits"}, "b": {"derive": {"from": "c", "transform": "invert"}}},
            r"domains\.b\.derive\.from: 'c' is not a domain",
        ),
        (
            {
                "a": {"derive": {"from": "b", "transform": "invert"}},
                "b": {"derive": {"from": "a", "transform": "invert"}},
            },
            r"domains\.a\.derive: a cycle of derived domains a -> b -> a",
        ),
        (
            {"a": {"source": "digits", "derive": {"from": "a", "transform": "invert"}}},
            "exactly one of 'source'",
        ),
        (
            {"a": {"source": "domains"}},
            r"domains\.a\.source: 'domains' is not a single-dataset source",
        ),
        (
            {"a": {"source": "digits", "test_fraccion": 0.2}},
            r"domains\.a: dataset source 'digits' does not take",
        ),
        (
            {
                "a": {"source": "digits"},
                "b": {"derive": {"from": "a", "transform": "blur", "sigma": -1}},
            },
            r"domains\.b\.derive: sigma must be > 0",
        ),
        (
            {"a": {"source": "digits", "class_names": ["x"]}},
            r"domains\.a\.class_names: 1 names for the source's 10",
        ),
        (
            {"a": {"source": "imagefolder", "root": "/nonexistent/pacs/photo"}},
            r"domain 'a': imagefolder: root /nonexistent/pacs/photo .*is not a directory",
        ),
    ],
)
def test_bad_or_missing_domains_give_clear_errors_and_no_output(
    tmp_path: Path, domains: dict, match: str
) -> None:
    out = tmp_path / "x.h5"
    with pytest.raises(DataError, match=match):
        prepare_dataset(
            {"source": "domains", "image_size": 8, "channels": 1, "domains": domains}, out
        )
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("source", ["mnist", "usps", "svhn"])
def test_offline_torchvision_domain_names_domain_files_and_imagefolder(
    tmp_path: Path, source: str
) -> None:
    with pytest.raises(DataError) as info:
        load_source(
            {
                "source": "domains",
                "image_size": 16,
                "channels": 1,
                "domains": {
                    "digits": {"source": "digits"},
                    source: {"source": source, "download": False},
                },
            },
            resources_dir=tmp_path,
        )
    message = str(info.value)
    assert message.startswith(f"domain {source!r}: {source}: could not load")
    assert str(tmp_path / source) in message and "source: imagefolder" in message


def test_torchvision_domain_with_renamed_classes(tmp_path: Path) -> None:
    fake = _fake_mnist(tmp_path / "mnist" / "MNIST" / "raw")
    spec = {
        "source": "domains",
        "image_size": 16,
        "channels": 1,
        "domains": {
            "sk_digits": {"source": "digits", "max_train_per_class": 2, "max_test_per_class": 1},
            "mnist": {"source": "mnist", "download": False},
        },
    }
    with pytest.raises(
        DataError,
        match=r"domain 'mnist' has class '0 - zero' at position 0 where domain "
        r"'sk_digits' has '0'.*'class_names'",
    ):
        load_source(spec, resources_dir=tmp_path)
    spec["domains"]["mnist"]["class_names"] = [str(d) for d in range(10)]
    data = load_source(spec, resources_dir=tmp_path)
    assert data.domain_train.tolist() == [0] * 20 + [1] * 12 and data.x_train.shape[1:] == (
        16,
        16,
        1,
    )
    img = Image.fromarray(fake["train-images-idx3-ubyte"][0]).resize(
        (16, 16), Image.Resampling.BICUBIC
    )
    np.testing.assert_array_equal(data.x_train[20, ..., 0], np.asarray(img))


@pytest.mark.skipif(not CIFAR.is_dir(), reason=f"shared CIFAR-10 copy not found at {CIFAR}")
def test_derived_cifar10_prepares_offline(tmp_path: Path) -> None:
    out = tmp_path / "cifar_domains.h5"
    prepare_dataset(
        {
            "source": "domains",
            "image_size": 32,
            "channels": 3,
            "domains": {
                "photo": {
                    "source": "imagefolder",
                    "root": str(CIFAR),
                    "max_train_per_class": 2,
                    "max_test_per_class": 1,
                    "workers": 1,
                },
                "sketch": {"derive": {"from": "photo", "transform": "sketch"}},
                "gray": {"derive": {"from": "photo", "transform": "grayscale"}},
            },
        },
        out,
    )
    data = load_dataset(out, verify=True)
    assert data.class_names[:3] == ["airplane", "automobile", "bird"] and data.num_classes == 10
    assert data.x_train.shape == (60, 32, 32, 3) and np.bincount(data.domain_train).tolist() == [
        20,
        20,
        20,
    ]
    gray = data.x_train[40:].astype(float)
    assert (gray[..., 0] == gray[..., 1]).all()
    photo = data.x_train[:20].astype(float)
    luma = np.rint(photo @ np.array([0.299, 0.587, 0.114]))
    np.testing.assert_array_equal(gray[..., 0], luma)


# ---- config -------------------------------------------------------------------------
def _config() -> dict[str, Any]:
    return {
        "datasets": {"dd": _digits_domains(), "plain": {"source": "digits"}},
        "partitions": {
            "per_domain": {
                "scheme": "domain",
                "num_clients": 4,
                "clients_per_domain": {"plain": 2, "rotated": 1, "inverted": 1},
                "alpha": 0.5,
            },
            "even": {"scheme": "domain", "num_clients": 3},
        },
        "methods": {"fedbn": {"strategy": "fedbn"}},
        "experiments": {
            "shift": {
                "datasets": ["dd"],
                "partitions": ["per_domain", "even"],
                "methods": ["fedbn"],
                "seeds": [0],
                "training": {"clients_per_round": 2},
            }
        },
    }


def test_a_domain_config_validates() -> None:
    config = validate_config(_config())
    assert config["datasets"]["dd"]["domains"]["rotated"]["derive"]["degrees"] == 90


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda c: c["datasets"]["dd"]["domains"]["inverted"]["derive"].__setitem__(
                "from", "upside"
            ),
            r"datasets\.dd\.domains\.inverted\.derive\.from: 'upside' is not a domain",
        ),
        (
            lambda c: c["datasets"]["dd"].pop("channels"),
            r"datasets\.dd: 'channels' is a required property",
        ),
        (
            lambda c: c["datasets"]["dd"]["domains"]["rotated"]["derive"].__setitem__(
                "transform", "swirl"
            ),
            r"datasets\.dd\.domains\.rotated",
        ),
        (
            lambda c: c["experiments"]["shift"].__setitem__("datasets", ["plain"]),
            r"partition 'per_domain' uses scheme 'domain', "
            r"which needs a dataset of source 'domains'",
        ),
        (
            lambda c: c["partitions"]["per_domain"]["clients_per_domain"].__setitem__("upside", 1),
            r"partitions\.per_domain\.clients_per_domain: clients_per_domain sums to 5",
        ),
        (
            lambda c: c["partitions"]["per_domain"].__setitem__(
                "clients_per_domain", {"plain": 2, "upside": 2}
            ),
            r"partitions\.per_domain\.clients_per_domain \(with datasets\.dd\)"
            r".*unknown \['upside'\]",
        ),
        (
            lambda c: c["partitions"]["even"].__setitem__("num_clients", 4),
            r"partitions\.even\.num_clients: 4 is not a multiple of the 3 domains",
        ),
        (
            lambda c: c["partitions"]["even"].__setitem__("min_size", 2),
            r"partitions\.even\.min_size: applies to scheme 'domain' only with alpha",
        ),
    ],
)
def test_domain_config_errors_name_the_key(mutate, match: str) -> None:
    config = copy.deepcopy(_config())
    mutate(config)
    with pytest.raises(ConfigError, match=match):
        validate_config(config)
