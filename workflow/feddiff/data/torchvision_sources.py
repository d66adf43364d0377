"""Standard benchmarks through ``torchvision.datasets`` (CIFAR, MNIST, SVHN, CelebA).

torchvision knows the download URLs and on-disk formats; this module only turns
its objects into :class:`DatasetArrays`. Offline (the usual case on compute
nodes) a download fails, and that failure is turned into a :class:`DataError`
that says where the files were looked for and how to proceed without network.

CelebA (FedDiffuse's second dataset) differs from the others: its 202,599 aligned
178x218 JPEGs are read one by one, so :func:`load_celeba` centre-crops each to
178x178 and resizes it to ``image_size`` (32 by default: the FedDiffuse UNet config
halves it twice; the summary of the paper gives no resolution), and a class label has
to be chosen: the FedDiffuse summary names no attribute, so the label is the presence
of one binary attribute, ``Smiling`` by default (LEAF's federated CelebA task; it splits
the faces about evenly). The official train split (162,770) is ``train``, the official
test split (19,962) ``test``; the validation split is not used.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from feddiff.data.errors import DataError
from feddiff.data.h5 import DatasetArrays


@dataclass(frozen=True)
class TorchvisionDataset:
    """How to construct and unpack one torchvision dataset class."""

    class_name: str
    layout: str  # where torchvision expects the files, relative to root
    image_shape: tuple[int, int, int]  # (H, W, C) of the images the loader returns
    split_by_name: bool = False  # SVHN takes split="train"/"test" instead of train=bool
    channels_first: bool = False  # SVHN stores (N, C, H, W)
    classes: tuple[str, ...] | None = None  # for classes without a ``classes`` attribute

    def split_kwargs(self, train: bool) -> dict[str, Any]:
        if self.split_by_name:
            return {"split": "train" if train else "test"}
        return {"train": train}


TORCHVISION_DATASETS: dict[str, TorchvisionDataset] = {
    "cifar10": TorchvisionDataset(
        "CIFAR10", "cifar-10-batches-py/ or cifar-10-python.tar.gz", (32, 32, 3)
    ),
    "cifar100": TorchvisionDataset(
        "CIFAR100", "cifar-100-python/ or cifar-100-python.tar.gz", (32, 32, 3)
    ),
    "mnist": TorchvisionDataset(
        "MNIST", "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte", (28, 28, 1)
    ),
    "fashion_mnist": TorchvisionDataset(
        "FashionMNIST", "FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte", (28, 28, 1)
    ),
    "usps": TorchvisionDataset(
        "USPS",
        "usps.bz2 and usps.t.bz2",
        (16, 16, 1),
        classes=tuple(str(digit) for digit in range(10)),
    ),
    "svhn": TorchvisionDataset(
        "SVHN",
        "train_32x32.mat and test_32x32.mat",
        (32, 32, 3),
        split_by_name=True,
        channels_first=True,
        classes=tuple(str(digit) for digit in range(10)),
    ),
}


def _images(ds: Any, info: TorchvisionDataset) -> np.ndarray:
    data = ds.data
    data = data.numpy() if hasattr(data, "numpy") else np.asarray(data)
    if data.ndim == 3:  # MNIST family: (N, H, W) grayscale
        data = data[..., np.newaxis]
    elif info.channels_first:
        data = data.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(data, dtype=np.uint8)


def _labels(ds: Any) -> np.ndarray:
    labels = ds.targets if hasattr(ds, "targets") else ds.labels
    labels = labels.numpy() if hasattr(labels, "numpy") else labels
    return np.asarray(labels, dtype=np.int64)


def _one_line(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_error(
    name: str,
    class_name: str,
    root: Path,
    download: bool,
    exc: BaseException,
    layout: str,
    example: str = "../shared/datasets/cifar10",
    note: str = "",
) -> DataError:
    """The one message for every source: the folder, the layout, the offline alternative."""
    return DataError(
        f"{name}: could not load torchvision.datasets.{class_name} from {root.resolve()} "
        f"(download={download}): {type(exc).__name__}: {_one_line(exc).rstrip('.')}. Without "
        f"network access, place the files there in torchvision's layout ({layout}), or use a local "
        f"image-folder copy instead, e.g. `source: imagefolder, root: {example}`.{note}"
    )


def load_torchvision(
    name: str, *, resources_dir: str | os.PathLike[str] = Path("resources"), download: bool = True
) -> DatasetArrays:
    """Load ``name`` via torchvision with ``root=resources_dir/name``.

    Any failure (no network, missing or corrupt files) becomes a DataError;
    torchvision's own URLError/RuntimeError never reaches the caller.
    """
    if name not in TORCHVISION_DATASETS:
        raise DataError(
            f"unknown torchvision source {name!r}; known: {sorted(TORCHVISION_DATASETS)}"
        )
    if not isinstance(download, bool):
        raise DataError(f"{name}: 'download' must be true or false, got {download!r}")
    info = TORCHVISION_DATASETS[name]
    root = Path(resources_dir) / name
    try:
        import torchvision
        import torchvision.datasets as tv_datasets

        cls = getattr(tv_datasets, info.class_name)
        train = cls(root=str(root), download=download, **info.split_kwargs(True))
        test = cls(root=str(root), download=download, **info.split_kwargs(False))
        x_train, x_test = _images(train, info), _images(test, info)
        y_train, y_test = _labels(train), _labels(test)
    except Exception as exc:  # noqa: BLE001 - any library failure becomes one clear error
        raise _load_error(
            name, info.class_name, root, download, exc, f"{root}/{info.layout}"
        ) from exc
    classes = list(info.classes or train.classes)
    return DatasetArrays(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=classes,
        attrs={
            "root": str(root.resolve()),
            "download": download,
            "torchvision_class": info.class_name,
            "torchvision_version": torchvision.__version__,
        },
    )


def _make_loader(name: str) -> Callable[..., DatasetArrays]:
    def load(
        *, resources_dir: str | os.PathLike[str] = Path("resources"), download: bool = True
    ) -> DatasetArrays:
        return load_torchvision(name, resources_dir=resources_dir, download=download)

    load.__name__ = load.__qualname__ = f"load_{name}"
    load.__doc__ = f"torchvision's {TORCHVISION_DATASETS[name].class_name} as DatasetArrays."
    return load


CELEBA_LAYOUT = (
    "celeba/img_align_celeba/*.jpg, celeba/list_attr_celeba.txt, celeba/identity_CelebA.txt, "
    "celeba/list_bbox_celeba.txt, celeba/list_landmarks_align_celeba.txt, "
    "celeba/list_eval_partition.txt"
)
CELEBA_SIDE = 178  # width of the aligned images: the centre crop is 178x178


def celeba_image(path: str | os.PathLike[str], image_size: int) -> np.ndarray:
    """One aligned CelebA JPEG: centre 178x178 crop (rows 20..197), resized to
    ``image_size`` (bicubic, antialiased), as (H, W, 3) uint8."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        side = min(w, h, CELEBA_SIDE)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
        img = img.resize((image_size, image_size), Image.Resampling.BICUBIC)
        return np.asarray(img, dtype=np.uint8)


def load_celeba(
    *,
    resources_dir: str | os.PathLike[str] = Path("resources"),
    download: bool = True,
    attribute: str = "Smiling",
    image_size: int = 32,
    workers: int | None = None,
) -> DatasetArrays:
    """torchvision's CelebA (aligned faces) as DatasetArrays, labelled by ``attribute``.

    Class 0 = the attribute is absent, class 1 = present. ``workers`` threads decode
    the JPEGs (default: the CPU count, at most 8). Downloading needs ``gdown``
    (torchvision fetches CelebA from Google Drive).
    """
    if not isinstance(download, bool):
        raise DataError(f"celeba: 'download' must be true or false, got {download!r}")
    if not isinstance(image_size, int) or image_size < 8:
        raise DataError(f"celeba: 'image_size' must be an integer >= 8, got {image_size!r}")
    root = Path(resources_dir) / "celeba"

    def load_error(exc: BaseException, note: str = "") -> DataError:
        """The one error of a failed CelebA load: where it looked, what to set instead."""
        return _load_error(
            "celeba",
            "CelebA",
            root,
            download,
            exc,
            f"{root}/{CELEBA_LAYOUT}",
            example="<folder with train/<class>/ and test/<class>/>",
            note=note,
        )

    try:
        import torchvision
        from torchvision.datasets import CelebA

        train = CelebA(root=str(root), split="train", target_type="attr", download=download)
        test = CelebA(root=str(root), split="test", target_type="attr", download=False)
    except Exception as exc:  # noqa: BLE001 - any library failure becomes one clear error
        raise load_error(
            exc, note=" Downloading CelebA needs the gdown package (Google Drive)."
        ) from exc
    names = [n for n in train.attr_names if n]
    if attribute not in names:
        raise DataError(
            f"celeba: 'attribute' {attribute!r} is not a CelebA attribute; choose one of {names}"
        )
    column = names.index(attribute)
    folder = root / CelebA.base_folder / "img_align_celeba"
    n_workers = workers or min(8, os.cpu_count() or 1)

    def images(ds: Any) -> np.ndarray:
        paths = [folder / f for f in ds.filename]
        with ThreadPoolExecutor(max_workers=n_workers) as pool:  # PIL decodes without the GIL
            decoded = list(pool.map(lambda p: celeba_image(p, image_size), paths))
        return np.stack(decoded) if decoded else np.zeros((0, image_size, image_size, 3), np.uint8)

    try:
        x_train, x_test = images(train), images(test)
    except OSError as exc:
        raise load_error(exc) from exc
    return DatasetArrays(
        x_train=x_train,
        y_train=train.attr[:, column].numpy().astype(np.int64),
        x_test=x_test,
        y_test=test.attr[:, column].numpy().astype(np.int64),
        class_names=[f"not_{attribute.lower()}", attribute.lower()],
        attrs={
            "root": str(root.resolve()),
            "download": download,
            "torchvision_class": "CelebA",
            "torchvision_version": torchvision.__version__,
            "label_attribute": attribute,
            "image_size": image_size,
            "crop": f"centre {CELEBA_SIDE}x{CELEBA_SIDE}, bicubic resize",
            "splits": "official train / test (validation unused)",
        },
    )


def source_image_shape(spec: Mapping[str, Any]) -> tuple[int, int, int]:
    """(H, W, C) that a torchvision ``source`` spec yields, known without its files
    (to size a model before any download, e.g. for a communication table)."""
    name = spec.get("source")
    if name == "celeba":
        side = int(
            spec.get("image_size", inspect.signature(load_celeba).parameters["image_size"].default)
        )
        return side, side, 3
    if name not in TORCHVISION_DATASETS:
        raise DataError(
            f"{name!r} is not a torchvision source; the image shape is known only after preparing "
            "it"
        )
    return TORCHVISION_DATASETS[name].image_shape


#: One loader per torchvision dataset, keyed by the config's ``source`` name.
TORCHVISION_SOURCES: dict[str, Callable[..., DatasetArrays]] = {
    **{name: _make_loader(name) for name in TORCHVISION_DATASETS},
    "celeba": load_celeba,
}
