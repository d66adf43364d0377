"""The HDF5 file format: round trip, fingerprint, atomic writes, clear errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import feddiff
from feddiff.data import h5
from feddiff.data.errors import DataError
from feddiff.data.h5 import (
    DatasetArrays,
    dataset_fingerprint,
    fingerprint_arrays,
    load_dataset,
    save_dataset,
)


def _assert_same(a: DatasetArrays, b: DatasetArrays) -> None:
    for name in ("x_train", "y_train", "x_test", "y_test"):
        left, right = getattr(a, name), getattr(b, name)
        assert left.dtype == right.dtype, name
        np.testing.assert_array_equal(left, right, err_msg=name)
    assert a.class_names == b.class_names


def test_round_trip_keeps_arrays_and_provenance(tmp_path: Path, tiny_arrays: DatasetArrays) -> None:
    tiny_arrays.attrs.update(
        root=tmp_path, ratio=0.5, flag=True, sizes=[1, 2], nested={"a": None}, missing=None
    )
    path = tmp_path / "d.h5"
    save_dataset(tiny_arrays, path)
    loaded = load_dataset(path)
    _assert_same(loaded, tiny_arrays)
    assert loaded.x_train.dtype == np.uint8 and loaded.y_train.dtype == np.int64
    assert loaded.num_classes == 3
    assert loaded.attrs == {
        "source": "test",
        "seed": 7,
        "root": str(tmp_path),
        "ratio": 0.5,
        "flag": True,
        "sizes": [1, 2],
        "nested": {"a": None},
        "missing": None,
    }


def test_file_layout_is_the_documented_one(tmp_path: Path, tiny_arrays: DatasetArrays) -> None:
    path = tmp_path / "d.h5"
    save_dataset(tiny_arrays, path)
    with h5py.File(path, "r") as f:
        assert f["train/images"].shape == (12, 5, 4, 3)
        assert f["test/labels"].dtype == np.int64
        assert f["train/images"].compression == "gzip"
        assert json.loads(f.attrs["class_names"]) == ["cat", "dog", "emu"]
        assert f.attrs["feddiff_version"] == feddiff.__version__
        assert f.attrs["fingerprint"] == fingerprint_arrays(tiny_arrays)
        assert f.attrs["source"] == "test" and f.attrs["seed"] == 7


def test_fingerprint_is_stable_and_ignores_provenance(
    tmp_path: Path, tiny_arrays: DatasetArrays
) -> None:
    save_dataset(tiny_arrays, tmp_path / "a.h5")
    other = dataclasses.replace(tiny_arrays, attrs={"source": "elsewhere"})
    save_dataset(other, tmp_path / "b.h5")
    fp = dataset_fingerprint(tmp_path / "a.h5")
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert (
        fp
        == dataset_fingerprint(tmp_path / "b.h5")
        == fingerprint_arrays(load_dataset(tmp_path / "b.h5"))
    )


@pytest.mark.parametrize(
    "change", ["pixel", "train_label", "test_label", "class_name", "split_move"]
)
def test_fingerprint_changes_with_content(tiny_arrays: DatasetArrays, change: str) -> None:
    before = fingerprint_arrays(tiny_arrays)
    changed = dataclasses.replace(
        tiny_arrays,
        x_train=tiny_arrays.x_train.copy(),
        y_train=tiny_arrays.y_train.copy(),
        y_test=tiny_arrays.y_test.copy(),
        class_names=list(tiny_arrays.class_names),
    )
    if change == "pixel":
        changed.x_train[3, 1, 2, 0] ^= 1
    elif change == "train_label":
        changed.y_train[0] = 2
    elif change == "test_label":
        changed.y_test[-1] = 0
    elif change == "class_name":
        changed.class_names[1] = "wolf"
    else:  # same bytes overall, but one image moved from train to test
        changed = dataclasses.replace(
            changed,
            x_train=tiny_arrays.x_train[:-1],
            y_train=tiny_arrays.y_train[:-1],
            x_test=np.concatenate([tiny_arrays.x_train[-1:], tiny_arrays.x_test]),
            y_test=np.concatenate([tiny_arrays.y_train[-1:], tiny_arrays.y_test]),
        )
    assert fingerprint_arrays(changed) != before


def test_failed_write_leaves_no_file(
    tmp_path: Path, tiny_arrays: DatasetArrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(h5, "_write_attrs", boom)  # runs after the image data is written
    with pytest.raises(RuntimeError, match="disk full"):
        save_dataset(tiny_arrays, tmp_path / "d.h5")
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_old_file(
    tmp_path: Path, tiny_arrays: DatasetArrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "d.h5"
    save_dataset(tiny_arrays, path)
    old = path.read_bytes()

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt  # even Ctrl-C mid-write must not clobber the old file

    monkeypatch.setattr(h5, "_write_split", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_dataset(dataclasses.replace(tiny_arrays, class_names=["a", "b", "c"]), path)
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]


def test_missing_file_error_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.h5"
    for func in (load_dataset, dataset_fingerprint):
        with pytest.raises(DataError, match=r"nope\.h5.*prepare"):
            func(path)


def test_not_hdf5_error_names_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.h5"
    path.write_bytes(b"this is not HDF5" * 10)
    for func in (load_dataset, dataset_fingerprint):
        with pytest.raises(DataError, match=r"junk\.h5.*corrupt"):
            func(path)


def test_incomplete_layout_error_names_file(tmp_path: Path, tiny_arrays: DatasetArrays) -> None:
    path = tmp_path / "part.h5"
    save_dataset(tiny_arrays, path)
    with h5py.File(path, "a") as f:
        del f["test/labels"]
    with pytest.raises(DataError, match=r"part\.h5.*test/labels"):
        load_dataset(path)


def test_flipped_pixel_bytes_are_detected(tmp_path: Path, tiny_arrays: DatasetArrays) -> None:
    path = tmp_path / "d.h5"
    save_dataset(tiny_arrays, path)
    with h5py.File(path, "r") as f:
        chunk = f["train/images"].id.get_chunk_info(0)
    raw = bytearray(path.read_bytes())
    raw[chunk.byte_offset + chunk.size // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"d\.h5"):
        load_dataset(path)


def test_verify_catches_a_stale_fingerprint(tmp_path: Path, tiny_arrays: DatasetArrays) -> None:
    path = tmp_path / "d.h5"
    save_dataset(tiny_arrays, path)
    load_dataset(path, verify=True)
    with h5py.File(path, "a") as f:
        f.attrs["fingerprint"] = "0" * 64
    load_dataset(path)  # not verified: cheap path trusts the file
    with pytest.raises(DataError, match="fingerprint"):
        load_dataset(path, verify=True)


def test_reserved_or_unstorable_attrs_are_rejected_before_writing(
    tmp_path: Path, tiny_arrays: DatasetArrays
) -> None:
    for attrs in ({"fingerprint": "x"}, {"obj": object()}):
        with pytest.raises(ValueError, match="fingerprint|obj"):
            save_dataset(dataclasses.replace(tiny_arrays, attrs=attrs), tmp_path / "d.h5")
    assert not (tmp_path / "d.h5").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("x_train", np.zeros((12, 5, 4, 3), dtype=np.float32), "uint8"),
        ("x_train", np.zeros((12, 5, 4), dtype=np.uint8), "uint8"),
        ("y_train", np.zeros(11, dtype=np.int64), "12 images"),
        ("y_test", np.full(6, 3), r"outside \[0, 3\)"),
        ("y_test", np.zeros(6, dtype=np.float64), "integer"),
        ("x_test", np.zeros((6, 4, 4, 3), dtype=np.uint8), "share"),
        ("class_names", ["a", "a", "b"], "duplicates"),
    ],
)
def test_malformed_arrays_are_rejected(
    tiny_arrays: DatasetArrays, field: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(tiny_arrays, **{field: value})


def test_labels_are_normalised_to_int64(tiny_arrays: DatasetArrays) -> None:
    arrays = dataclasses.replace(tiny_arrays, y_train=tiny_arrays.y_train.astype(np.uint8))
    assert arrays.y_train.dtype == np.int64
