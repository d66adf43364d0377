"""Images from a ``root/{train,test}/<class>/<file>`` folder tree.

This is the offline route to real data: the shared CIFAR-10 copy is stored in
this layout, and any user can drop their own images into it. Decoding is done
once here and the result cached in HDF5, so 60,000 JPEGs are never decoded
again by later stages.

Decoding uses a *process* pool: a 32x32 JPEG costs more Python overhead in PIL
than actual decoding, so threads contend on the GIL (measured slower than one
thread on 2 cores), while processes scale. Workers are started with ``spawn``
so no lock held by a thread of the parent (torch, tqdm's monitor) can be
inherited mid-acquire, and results come back in file order whatever order the
workers finish in.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from feddiff.data.errors import DataError
from feddiff.data.h5 import DatasetArrays

#: Suffixes (lower-case) treated as images; other files (README, .DS_Store) are ignored.
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
#: Supported PIL modes and their channel counts.
MODES = {"RGB": 3, "L": 1}
#: Files per pool task: large enough to amortise task overhead on tiny JPEGs.
#: Folders of at most one batch are decoded in-process (no worker start-up).
_BATCH = 256


def default_workers() -> int:
    """min(4, cpu count): enough to hide decoding cost without hogging a shared node."""
    return min(4, os.cpu_count() or 1)


def _list_split(split_dir: Path, limit: int | None) -> tuple[list[str], list[tuple[Path, int]]]:
    """Sorted class names and (file, label) pairs, first ``limit`` files per class."""
    if not split_dir.is_dir():
        raise DataError(
            f"imagefolder: split directory {split_dir} does not exist; expected "
            f"{split_dir.parent}/train/<class>/ and {split_dir.parent}/test/<class>/ with image "
            "files"
        )
    classes = sorted(
        d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith(".")
    )
    if not classes:
        raise DataError(f"imagefolder: split directory {split_dir} has no class subdirectories")
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        class_dir = split_dir / name
        found = sorted(
            (
                p
                for p in class_dir.iterdir()
                if p.suffix.lower() in IMAGE_EXTENSIONS
                and not p.name.startswith(".")
                and p.is_file()
            ),
            key=lambda p: p.name,
        )
        if not found:
            raise DataError(
                f"imagefolder: class directory {class_dir} has no image files "
                f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        files.extend((p, label) for p in found[:limit])
    return classes, files


def _decode_one(path: Path, mode: str, size: int | None = None) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img = img.convert(mode)
            if size is not None and img.size != (size, size):
                img = img.resize((size, size), Image.Resampling.BICUBIC)
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"imagefolder: cannot decode image {path} ({type(exc).__name__}: {exc}); "
            "remove or replace the file"
        ) from exc
    return arr[..., np.newaxis] if arr.ndim == 2 else arr


def _decode_batch(paths: Sequence[Path], mode: str, size: int | None = None) -> list[np.ndarray]:
    return [_decode_one(p, mode, size) for p in paths]


def _ordered_batches(
    paths: Sequence[Path], mode: str, workers: int, size: int | None = None
) -> Generator[list[np.ndarray], None, None]:
    """Decoded batches in file order, whatever order the workers finish in."""
    batches = [paths[i : i + _BATCH] for i in range(0, len(paths), _BATCH)]
    decode: Callable[[Sequence[Path]], list[np.ndarray]] = partial(
        _decode_batch, mode=mode, size=size
    )
    if workers <= 1 or len(batches) <= 1:
        yield from map(decode, batches)
        return
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(batches)), mp_context=multiprocessing.get_context("spawn")
    )
    try:
        yield from pool.map(decode, batches)
    finally:  # on error, do not decode the remaining tens of thousands of files
        pool.shutdown(wait=True, cancel_futures=True)


def _decode_all(
    paths: Sequence[Path], mode: str, workers: int, desc: str, size: int | None = None
) -> np.ndarray:
    """Decode ``paths`` into one (N, H, W, C) array; all images must match the first."""
    out: np.ndarray | None = None
    reference: tuple[Path, tuple[int, ...]] | None = None
    i = 0
    with (
        tqdm(total=len(paths), desc=desc, unit="img", file=sys.stderr, mininterval=0.5) as bar,
        contextlib.closing(_ordered_batches(paths, mode, workers, size)) as batches,
    ):
        for batch in batches:
            for arr in batch:
                if reference is None:
                    reference = (paths[i], arr.shape)
                if arr.shape != reference[1]:
                    raise DataError(
                        f"imagefolder: image {paths[i]} is {_size(arr.shape)} but "
                        f"{reference[0]} is {_size(reference[1])}; all images must share "
                        "one size (resize them first)"
                    )
                if out is None:
                    out = np.empty((len(paths), *arr.shape), dtype=np.uint8)
                out[i] = arr
                i += 1
            bar.update(len(batch))
    assert out is not None  # _list_split guarantees at least one file
    return out


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]} (WxH)"


def _check_limit(key: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"imagefolder: {key!r} must be a positive integer, got {value!r}")
    return value


def load_imagefolder(
    *,
    root: str | os.PathLike[str],
    mode: str = "RGB",
    max_train_per_class: int | None = None,
    max_test_per_class: int | None = None,
    workers: int | None = None,
    image_size: int | None = None,
) -> DatasetArrays:
    """Decode ``root/train/<class>/*`` and ``root/test/<class>/*`` into arrays.

    With ``image_size`` every image is resized (bicubic) to ``image_size`` square, so
    folders of photos of many sizes (Office-Caltech-10, DomainNet) can be read;
    without it all images must share one size.

    Classes are the sorted subdirectory names (label = index); files are taken
    in name order, the first ``max_*_per_class`` of each class when given, so a
    slice is reproducible. Both splits must have the same classes.
    """
    root = Path(root)
    if mode not in MODES:
        raise DataError(f"imagefolder: 'mode' must be one of {sorted(MODES)}, got {mode!r}")
    limits = {
        "train": _check_limit("max_train_per_class", max_train_per_class),
        "test": _check_limit("max_test_per_class", max_test_per_class),
    }
    if image_size is not None and (
        isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1
    ):
        raise DataError(f"imagefolder: 'image_size' must be a positive integer, got {image_size!r}")
    if workers is None:
        workers = default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise DataError(f"imagefolder: 'workers' must be a positive integer, got {workers!r}")
    if not root.is_dir():
        raise DataError(
            f"imagefolder: root {root} (resolved {root.resolve()}) is not a directory; "
            "point 'root' at a folder holding train/<class>/ and test/<class>/"
        )

    listed = {split: _list_split(root / split, limits[split]) for split in ("train", "test")}
    classes = listed["train"][0]
    if listed["test"][0] != classes:
        raise DataError(
            f"imagefolder: {root / 'train'} has classes {classes} but {root / 'test'} "
            f"has {listed['test'][0]}; both splits need the same class folders"
        )
    train, test = listed["train"][1], listed["test"][1]
    # one pass (and one worker pool) over both splits; train first, so its first
    # image sets the size every other image must have
    images = _decode_all(
        [p for p, _ in train + test], mode, workers, f"decode {root.name}", image_size
    )
    labels = np.fromiter((label for _, label in train + test), np.int64, len(train) + len(test))
    return DatasetArrays(
        x_train=images[: len(train)],
        y_train=labels[: len(train)],
        x_test=images[len(train) :],
        y_test=labels[len(train) :],
        class_names=classes,
        attrs={
            "root": str(root.resolve()),
            "mode": mode,
            "max_train_per_class": max_train_per_class,
            "max_test_per_class": max_test_per_class,
            **({"image_size": image_size} if image_size is not None else {}),
        },
    )
