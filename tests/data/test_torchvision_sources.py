"""torchvision sources: real loading from on-disk files, and the offline error path."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision

from feddiff.data.errors import DataError
from feddiff.data.prepare import load_source
from feddiff.data.torchvision_sources import (
    TORCHVISION_DATASETS,
    TORCHVISION_SOURCES,
    _images,
    _labels,
    load_torchvision,
    source_image_shape,
)


def _write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's idx format: big-endian magic (0, 0, type 0x08 = uint8, ndim), dims, bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _fake_mnist(raw_dir: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(12, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([9, 0, 3, 3, 1], dtype=np.uint8),
    }
    for name, array in arrays.items():
        _write_idx(raw_dir / name, array)
    return arrays


@pytest.fixture
def socket_timeout() -> Iterator[None]:
    """Bound every socket operation so a half-open network cannot hang the suite."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)
    yield
    socket.setdefaulttimeout(old)


def _reachable(host: str, port: int = 443) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


@pytest.mark.parametrize(
    ("source", "folder", "cls"),
    [
        ("mnist", "MNIST", torchvision.datasets.MNIST),
        ("fashion_mnist", "FashionMNIST", torchvision.datasets.FashionMNIST),
    ],
)
@pytest.mark.parametrize(
    "download", [False, True]
)  # files present: True must not touch the network
def test_loads_files_in_torchvision_layout(
    tmp_path: Path,
    source: str,
    folder: str,
    cls: type,
    download: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _fake_mnist(tmp_path / "res" / source / folder / "raw")
    monkeypatch.setattr(cls, "mirrors", ["http://127.0.0.1:9/"])  # any download attempt fails
    arrays = TORCHVISION_SOURCES[source](resources_dir=tmp_path / "res", download=download)
    np.testing.assert_array_equal(arrays.x_train[..., 0], fake["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(arrays.x_test[..., 0], fake["t10k-images-idx3-ubyte"])
    assert arrays.x_train.shape == (12, 28, 28, 1) and arrays.x_train.dtype == np.uint8
    assert arrays.x_train.shape[1:] == source_image_shape(
        {"source": source}
    )  # known before loading
    assert arrays.y_test.tolist() == [9, 0, 3, 3, 1] and arrays.y_test.dtype == np.int64
    assert arrays.class_names == list(cls.classes) and arrays.num_classes == 10
    assert arrays.attrs["root"] == str((tmp_path / "res" / source).resolve())
    assert arrays.attrs["torchvision_class"] == folder


def test_offline_download_becomes_a_data_error(tmp_path: Path, socket_timeout: None) -> None:
    """The real download code against the real URL; this machine has no network."""
    if _reachable("www.cs.toronto.edu"):
        pytest.skip(
            "network reachable: the offline path cannot be exercised (and would download 170 MB)"
        )
    resources = tmp_path / "resources"
    with pytest.raises(DataError) as info:
        load_torchvision("cifar10", resources_dir=resources, download=True)
    message = str(info.value)
    assert str((resources / "cifar10").resolve()) in message
    assert "source: imagefolder, root: ../shared/datasets/cifar10" in message
    assert "cifar-10-batches-py" in message
    assert info.value.__cause__ is not None  # the library error is kept as the cause


def test_failing_mirror_runtime_error_becomes_a_data_error(
    tmp_path: Path, socket_timeout: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MNIST wraps per-mirror URLErrors into a RuntimeError; that must not escape either."""
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(
        DataError, match=r"mnist: could not load torchvision\.datasets\.MNIST"
    ) as info:
        load_torchvision("mnist", resources_dir=tmp_path, download=True)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert str(tmp_path / "mnist") in str(info.value)


@pytest.mark.parametrize("source", sorted(TORCHVISION_DATASETS))
def test_missing_files_without_download_become_a_data_error(tmp_path: Path, source: str) -> None:
    with pytest.raises(
        DataError, match=rf"{source}: could not load .*{tmp_path / source}.*imagefolder"
    ):
        TORCHVISION_SOURCES[source](resources_dir=tmp_path, download=False)


def test_download_flag_must_be_boolean(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="'download'"):
        load_torchvision("mnist", resources_dir=tmp_path, download="yes")  # type: ignore[arg-type]


def test_unpacking_channels_first_and_list_targets() -> None:
    svhn_like = SimpleNamespace(
        data=np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5), labels=np.array([1, 0])
    )
    images = _images(svhn_like, TORCHVISION_DATASETS["svhn"])
    assert images.shape == (2, 4, 5, 3) and images.flags.c_contiguous
    assert images[1, 2, 3, 0] == svhn_like.data[1, 0, 2, 3]
    assert _labels(svhn_like).tolist() == [1, 0]
    cifar_like = SimpleNamespace(data=np.zeros((2, 4, 4, 3), np.uint8), targets=[3, 4])
    assert _images(cifar_like, TORCHVISION_DATASETS["cifar10"]).shape == (2, 4, 4, 3)
    assert _labels(cifar_like).dtype == np.int64
    mnist_like = SimpleNamespace(
        data=torch.zeros((2, 6, 6), dtype=torch.uint8), targets=torch.tensor([1, 2])
    )
    assert _images(mnist_like, TORCHVISION_DATASETS["mnist"]).shape == (2, 6, 6, 1)


# ---- CelebA ----------------------------------------------------------------------------------
CELEBA_ATTRS = [f"Attr_{i}" for i in range(40)]
CELEBA_ATTRS[20], CELEBA_ATTRS[31] = "Male", "Smiling"  # where the real file has them


def _fake_celeba(root: Path) -> dict[str, object]:
    """torchvision's CelebA layout under ``root/celeba``: 6 aligned 178x218 JPEGs
    (3 train, 1 valid, 2 test) and the five text files (+-1 attributes)."""
    base = root / "celeba"
    (base / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(5)
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    split = [0, 0, 0, 1, 2, 2]
    smiling = [1, -1, 1, 1, -1, 1]
    male = [-1, -1, 1, 1, 1, -1]
    from PIL import Image

    for name in names:
        Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(
            base / "img_align_celeba" / name
        )
    rows = []
    for i, name in enumerate(names):
        values = [-1] * 40
        values[31], values[20] = smiling[i], male[i]
        rows.append(f"{name} " + " ".join(f"{v:2d}" for v in values))
    (base / "list_attr_celeba.txt").write_text(
        f"{len(names)}\n" + " ".join(CELEBA_ATTRS) + " \n" + "\n".join(rows) + "\n"
    )
    (base / "list_eval_partition.txt").write_text(
        "".join(f"{n} {s}\n" for n, s in zip(names, split))
    )
    (base / "identity_CelebA.txt").write_text(
        "".join(f"{n} {i + 10}\n" for i, n in enumerate(names))
    )
    (base / "list_bbox_celeba.txt").write_text(
        f"{len(names)}\nimage_id x_1 y_1 width height\n" + "".join(f"{n} 1 2 3 4\n" for n in names)
    )
    (base / "list_landmarks_align_celeba.txt").write_text(
        f"{len(names)}\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x "
        "leftmouth_y rightmouth_x rightmouth_y\n"
        + "".join(f"{n} " + " ".join(["5"] * 10) + "\n" for n in names)
    )
    return {"names": names, "split": split, "smiling": smiling, "male": male, "base": base}


def _expected_face(path: Path, side: int) -> np.ndarray:
    """Independently: the centre 178x178 square of a 178x218 image (rows 20..197), bicubic to
    side."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(
            img.convert("RGB")
            .crop((0, 20, 178, 198))
            .resize((side, side), Image.Resampling.BICUBIC)
        )


def test_celeba_loads_files_in_torchvision_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake text files cannot match torchvision's MD5s, so only that check is bypassed;
    the CSV parsing, split selection and attribute mapping are torchvision's own."""
    fake = _fake_celeba(tmp_path / "res" / "celeba")
    monkeypatch.setattr(torchvision.datasets.CelebA, "_check_integrity", lambda self: True)
    arrays = load_source(
        {"source": "celeba", "image_size": 16, "download": False}, tmp_path / "res"
    )
    assert arrays.x_train.shape == (3, 16, 16, 3) and arrays.x_test.shape == (2, 16, 16, 3)
    assert source_image_shape({"source": "celeba", "image_size": 16}) == (16, 16, 3)
    assert source_image_shape({"source": "celeba"}) == (32, 32, 3)  # the loader's default
    assert arrays.x_train.dtype == np.uint8
    assert arrays.y_train.tolist() == [1, 0, 1] and arrays.y_test.tolist() == [
        0,
        1,
    ]  # Smiling, +-1 -> 1/0
    assert arrays.y_train.dtype == np.int64 and arrays.class_names == ["not_smiling", "smiling"]
    img_dir = fake["base"] / "img_align_celeba"  # type: ignore[operator]
    np.testing.assert_array_equal(arrays.x_train[2], _expected_face(img_dir / "000003.jpg", 16))
    np.testing.assert_array_equal(arrays.x_test[0], _expected_face(img_dir / "000005.jpg", 16))
    assert arrays.attrs["label_attribute"] == "Smiling" and arrays.attrs["image_size"] == 16
    male = TORCHVISION_SOURCES["celeba"](
        resources_dir=tmp_path / "res", download=False, attribute="Male", image_size=8, workers=1
    )
    assert (
        male.y_train.tolist() == [0, 0, 1]
        and male.y_test.tolist() == [1, 0]
        and male.x_train.shape[1:] == (8, 8, 3)
    )
    with pytest.raises(
        DataError, match=r"celeba: 'attribute' 'Smile' is not a CelebA attribute; .*'Smiling'"
    ):
        TORCHVISION_SOURCES["celeba"](
            resources_dir=tmp_path / "res", download=False, attribute="Smile"
        )
    with pytest.raises(DataError, match="does not take key"):
        load_source({"source": "celeba", "image_sise": 16}, tmp_path / "res")


def test_celeba_without_files_names_the_folder_and_imagefolder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        TORCHVISION_SOURCES["celeba"](resources_dir=tmp_path, download=False)
    message = str(info.value)
    assert (
        f"celeba: could not load torchvision.datasets.CelebA from {(tmp_path / 'celeba').resolve()}"
        in message
    )
    assert "celeba/img_align_celeba/*.jpg" in message and "list_eval_partition.txt" in message
    assert "`source: imagefolder, root: <folder with train/<class>/ and test/<class>/>`" in message
    assert isinstance(
        info.value.__cause__, RuntimeError
    )  # torchvision's "Dataset not found or corrupted"


def test_celeba_offline_download_becomes_a_data_error(tmp_path: Path, socket_timeout: None) -> None:
    """The real download path (Google Drive, via gdown when installed); this machine has no
    network."""
    if _reachable("drive.google.com"):
        pytest.skip(
            "network reachable: the offline path cannot be exercised (and would download all of "
            "CelebA)"
        )
    with pytest.raises(
        DataError, match=r"celeba: could not load .*download=True.*imagefolder.*gdown"
    ) as info:
        TORCHVISION_SOURCES["celeba"](resources_dir=tmp_path, download=True)
    assert (
        str((tmp_path / "celeba").resolve()) in str(info.value) and info.value.__cause__ is not None
    )


@pytest.mark.parametrize(
    ("key", "value"), [("download", "yes"), ("image_size", 4), ("image_size", 16.5)]
)
def test_celeba_bad_settings(tmp_path: Path, key: str, value: object) -> None:
    with pytest.raises(DataError, match=f"celeba: '{key}'"):
        TORCHVISION_SOURCES["celeba"](resources_dir=tmp_path, **{key: value})


def test_image_shape_is_known_only_for_torchvision_sources() -> None:
    assert source_image_shape({"source": "cifar10"}) == (32, 32, 3)
    with pytest.raises(DataError, match="'imagefolder' is not a torchvision source"):
        source_image_shape({"source": "imagefolder", "root": "x"})
