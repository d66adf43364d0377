"""Spec dispatch and the prepare step: spec -> loader -> HDF5 file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from feddiff.config import load_schema
from feddiff.data import (
    SOURCES,
    DataError,
    dataset_fingerprint,
    load_dataset,
    load_source,
    prepare_dataset,
)
from feddiff.data.h5 import fingerprint_arrays

from .test_imagefolder import LAYOUT
from .test_torchvision_sources import _fake_mnist


def test_known_sources() -> None:
    assert set(SOURCES) == {
        "digits",
        "imagefolder",
        "cifar10",
        "cifar100",
        "mnist",
        "fashion_mnist",
        "svhn",
        "celeba",
        "usps",
        "domains",
    }
    schema = load_schema()["properties"]["datasets"]["additionalProperties"]["properties"][
        "source"
    ]["enum"]
    assert set(schema) == set(SOURCES)  # every loader can be named in a config, and only those


def test_prepare_digits_writes_a_loadable_file(tmp_path: Path) -> None:
    out = tmp_path / "prepared" / "digits.h5"
    spec = {"source": "digits", "test_fraction": 0.2, "split_seed": 3, "name": "small digits"}
    arrays = prepare_dataset(spec, out)
    loaded = load_dataset(out, verify=True)
    np.testing.assert_array_equal(loaded.x_train, arrays.x_train)
    np.testing.assert_array_equal(loaded.y_test, arrays.y_test)
    assert len(loaded.y_test) == 360
    assert loaded.attrs["source"] == "digits"
    assert loaded.attrs["spec"] == spec
    assert loaded.attrs["split_seed"] == 3
    assert dataset_fingerprint(out) == fingerprint_arrays(arrays)


def test_preparing_twice_gives_the_same_fingerprint(tmp_path: Path) -> None:
    prepare_dataset({"source": "digits"}, tmp_path / "a.h5")
    prepare_dataset({"source": "digits"}, tmp_path / "b.h5")
    prepare_dataset({"source": "digits", "split_seed": 1}, tmp_path / "c.h5")
    assert dataset_fingerprint(tmp_path / "a.h5") == dataset_fingerprint(tmp_path / "b.h5")
    assert dataset_fingerprint(tmp_path / "a.h5") != dataset_fingerprint(tmp_path / "c.h5")


def test_imagefolder_spec_with_a_path_root(tmp_path: Path, make_imagefolder) -> None:
    root, _ = make_imagefolder(LAYOUT)
    out = tmp_path / "f.h5"
    prepare_dataset(
        {"source": "imagefolder", "root": root, "max_train_per_class": 1, "workers": 1}, out
    )
    loaded = load_dataset(out)
    assert loaded.y_train.tolist() == [0, 1, 2]
    assert loaded.attrs["spec"]["root"] == str(root)  # stored as text
    assert loaded.attrs["max_test_per_class"] is None


def test_resources_dir_reaches_torchvision_sources(tmp_path: Path) -> None:
    _fake_mnist(tmp_path / "res" / "mnist" / "MNIST" / "raw")
    arrays = load_source({"source": "mnist", "download": False}, resources_dir=tmp_path / "res")
    assert arrays.x_train.shape == (12, 28, 28, 1)
    with pytest.raises(DataError, match=str(tmp_path / "elsewhere" / "mnist")):
        load_source({"source": "mnist", "download": False}, resources_dir=tmp_path / "elsewhere")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"source": "imagenet"}, r"unknown dataset source 'imagenet' \(key 'source'\)"),
        ({"root": "x"}, r"no 'source' key"),
        ({"source": "imagefolder"}, r"'imagefolder' needs key 'root'"),
        (
            {"source": "imagefolder", "root": "x", "max_train_per_clas": 3},
            r"\['max_train_per_clas'\]",
        ),
        ({"source": "digits", "resources_dir": "x"}, r"\['resources_dir'\]"),
        ({"source": "cifar10", "root": "x"}, r"\['root'\]"),
        (["digits"], "mapping"),
    ],
)
def test_bad_specs_name_the_key(tmp_path: Path, spec: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        prepare_dataset(spec, tmp_path / "out.h5")  # type: ignore[arg-type]
    assert not (tmp_path / "out.h5").exists()


def test_failed_source_leaves_no_output(tmp_path: Path, make_imagefolder) -> None:
    root, _ = make_imagefolder(LAYOUT)
    (root / "test/apple/u.png").write_bytes(b"broken")
    with pytest.raises(DataError, match=r"test/apple/u\.png"):
        prepare_dataset({"source": "imagefolder", "root": str(root)}, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()
