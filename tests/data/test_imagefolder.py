"""Image folders: ordering, slicing, decoding errors, and the shared CIFAR-10 copy."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from feddiff.data import imagefolder
from feddiff.data.errors import DataError
from feddiff.data.imagefolder import load_imagefolder

LAYOUT = {
    "train": {
        "zebra": ["b.png", "a.png"],
        "apple": ["2.png", "10.png", "1.png"],
        "mango": ["x.png"],
    },
    "test": {"mango": ["t.png"], "apple": ["u.png"], "zebra": ["w.png", "v.png"]},
}


def _levels(x: np.ndarray) -> list[int]:
    """The gray level of each image (the fixture paints each file one level)."""
    return [int(img[0, 0, 0]) for img in x]


def test_classes_and_files_are_sorted_by_name(make_imagefolder) -> None:
    root, levels = make_imagefolder(LAYOUT)
    arrays = load_imagefolder(root=root, workers=1)
    assert arrays.class_names == ["apple", "mango", "zebra"]
    expected = [
        "apple/1.png",
        "apple/10.png",
        "apple/2.png",
        "mango/x.png",
        "zebra/a.png",
        "zebra/b.png",
    ]
    assert _levels(arrays.x_train) == [levels[f"train/{p}"] for p in expected]
    assert arrays.y_train.tolist() == [0, 0, 0, 1, 2, 2]
    expected = ["apple/u.png", "mango/t.png", "zebra/v.png", "zebra/w.png"]
    assert _levels(arrays.x_test) == [levels[f"test/{p}"] for p in expected]
    assert arrays.y_test.tolist() == [0, 1, 2, 2]
    assert arrays.x_train.shape == (6, 3, 4, 3) and arrays.x_train.dtype == np.uint8
    assert arrays.attrs["root"] == str(root.resolve()) and arrays.attrs["mode"] == "RGB"


def test_grayscale_mode_keeps_a_channel_axis(make_imagefolder) -> None:
    root, levels = make_imagefolder(LAYOUT)
    arrays = load_imagefolder(root=root, mode="L", workers=1)
    assert arrays.x_train.shape == (6, 3, 4, 1)
    assert int(arrays.x_test[0, 2, 3, 0]) == levels["test/apple/u.png"]


def test_non_image_files_and_hidden_entries_are_ignored(make_imagefolder) -> None:
    root, _ = make_imagefolder(LAYOUT)
    (root / "train/apple/README.txt").write_text("not an image")
    (root / "train/apple/.hidden.png").write_bytes(b"junk")
    (root / "train/.cache").mkdir()
    assert len(load_imagefolder(root=root, workers=1).y_train) == 6


def test_max_per_class_takes_first_files_in_sorted_order(make_imagefolder) -> None:
    root, levels = make_imagefolder(LAYOUT)
    arrays = load_imagefolder(root=root, max_train_per_class=2, max_test_per_class=1, workers=1)
    expected = ["apple/1.png", "apple/10.png", "mango/x.png", "zebra/a.png", "zebra/b.png"]
    assert _levels(arrays.x_train) == [levels[f"train/{p}"] for p in expected]
    assert arrays.y_train.tolist() == [0, 0, 1, 2, 2]
    assert arrays.y_test.tolist() == [0, 1, 2]
    assert _levels(arrays.x_test)[2] == levels["test/zebra/v.png"]
    assert arrays.attrs["max_train_per_class"] == 2


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_bad_limits_are_refused(make_imagefolder, limit: object) -> None:
    root, _ = make_imagefolder(LAYOUT)
    with pytest.raises(DataError, match="max_test_per_class"):
        load_imagefolder(root=root, max_test_per_class=limit)  # type: ignore[arg-type]


@pytest.mark.parametrize("content", [b"definitely not a png", "truncated"])
def test_corrupt_image_error_names_the_file(make_imagefolder, content: bytes | str) -> None:
    root, _ = make_imagefolder(LAYOUT)
    bad = root / "train/mango/x.png"
    if content == "truncated":
        data = bad.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:
        bad.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"train/mango/x\.png"):
        load_imagefolder(root=root, workers=1)


def test_mixed_sizes_error_names_the_odd_file(make_imagefolder) -> None:
    root, _ = make_imagefolder(LAYOUT)
    Image.new("RGB", (5, 3)).save(root / "train/zebra/a.png")
    with pytest.raises(DataError, match=r"train/zebra/a\.png is 5x3.*train/apple/1\.png is 4x3"):
        load_imagefolder(root=root, workers=1)


def test_test_split_must_match_train_size(make_imagefolder) -> None:
    root, _ = make_imagefolder(LAYOUT)
    for path in (root / "test").rglob("*.png"):
        Image.new("RGB", (4, 4)).save(path)
    with pytest.raises(DataError, match=r"test/apple/u\.png is 4x4"):
        load_imagefolder(root=root, workers=1)


def test_missing_split_dir_error_names_the_path(make_imagefolder) -> None:
    root, _ = make_imagefolder({"train": LAYOUT["train"]})
    with pytest.raises(DataError, match=rf"{root / 'test'} does not exist"):
        load_imagefolder(root=root)


def test_missing_root_error_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere.*not a directory"):
        load_imagefolder(root=tmp_path / "nowhere")


def test_empty_split_dir_is_refused(make_imagefolder) -> None:
    root, _ = make_imagefolder({"train": LAYOUT["train"]})
    (root / "test").mkdir()
    with pytest.raises(DataError, match=rf"{root / 'test'} has no class"):
        load_imagefolder(root=root)


def test_empty_class_dir_is_refused(make_imagefolder) -> None:
    root, _ = make_imagefolder(LAYOUT)
    (root / "test/kiwi").mkdir()
    (root / "train/kiwi").mkdir()
    (root / "train/kiwi/notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=rf"{root / 'train/kiwi'} has no image files"):
        load_imagefolder(root=root)


def test_splits_must_have_the_same_classes(make_imagefolder) -> None:
    layout = {"train": LAYOUT["train"], "test": {"apple": ["u.png"], "mango": ["t.png"]}}
    root, _ = make_imagefolder(layout)
    with pytest.raises(DataError, match="same class folders"):
        load_imagefolder(root=root)


def test_bad_mode_and_workers_are_refused(make_imagefolder) -> None:
    root, _ = make_imagefolder(LAYOUT)
    with pytest.raises(DataError, match="'mode'"):
        load_imagefolder(root=root, mode="CMYK")
    with pytest.raises(DataError, match="'workers'"):
        load_imagefolder(root=root, workers=0)


def test_worker_pool_keeps_file_order_and_reports_bad_files(
    make_imagefolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Force several batches so the process pool really runs, then compare with serial."""
    names = [f"{i:03d}.png" for i in range(7)]
    root, _ = make_imagefolder(
        {"train": {"a": names, "b": names[:5]}, "test": {"a": names[:2], "b": names[:3]}}
    )
    pools: list[int] = []

    class CountingPool(ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pools.append(kwargs["max_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(imagefolder, "_BATCH", 2)
    monkeypatch.setattr(imagefolder, "ProcessPoolExecutor", CountingPool)
    serial = load_imagefolder(root=root, workers=1)
    assert pools == []
    pooled = load_imagefolder(root=root, workers=2)
    assert pools == [2]  # one pool for both splits
    np.testing.assert_array_equal(pooled.x_train, serial.x_train)
    np.testing.assert_array_equal(pooled.x_test, serial.x_test)
    assert _levels(serial.x_train) == sorted(_levels(serial.x_train))  # painted in sorted order
    (root / "train/b/003.png").write_bytes(b"broken")
    with pytest.raises(DataError, match=r"train/b/003\.png"):
        load_imagefolder(root=root, workers=2)


@pytest.mark.slow
def test_cifar10_shared_copy_slice(cifar10_root: Path) -> None:
    arrays = load_imagefolder(root=cifar10_root, max_train_per_class=20, max_test_per_class=10)
    assert arrays.class_names == [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    assert arrays.x_train.shape == (200, 32, 32, 3) and arrays.x_test.shape == (100, 32, 32, 3)
    assert arrays.y_train.tolist() == [c for c in range(10) for _ in range(20)]
    assert np.bincount(arrays.y_test).tolist() == [10] * 10
    with Image.open(cifar10_root / "train/bird/0019.jpg") as img:
        np.testing.assert_array_equal(arrays.x_train[2 * 20 + 19], np.asarray(img.convert("RGB")))
    with Image.open(cifar10_root / "test/truck/0000.jpg") as img:
        np.testing.assert_array_equal(arrays.x_test[90], np.asarray(img.convert("RGB")))
    assert arrays.x_train.std() > 20  # real photographs, not blank decodes
