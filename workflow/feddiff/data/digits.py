"""scikit-learn's bundled 8x8 digits: the default dataset that needs no files.

It ships inside scikit-learn, so the pipeline runs end to end on any machine,
offline, in seconds. Pixels are rescaled to uint8 so every source produces the
same dtype and the rest of the pipeline has one code path.
"""

from __future__ import annotations

import numpy as np

from feddiff.data.errors import DataError
from feddiff.data.h5 import DatasetArrays


def scale_digits_pixels(images: np.ndarray) -> np.ndarray:
    """Map the 0..16 intensity levels to uint8 0..255 with ``round(x * 255 / 16)``."""
    return np.rint(np.asarray(images, dtype=np.float64) * 255.0 / 16.0).astype(np.uint8)


def load_digits_source(*, test_fraction: float = 0.25, split_seed: int = 0) -> DatasetArrays:
    """The 1,797 digits as (N, 8, 8, 1) uint8, split train/test stratified by class.

    The split is a pure function of ``(test_fraction, split_seed)`` so the same
    config always yields the same file and fingerprint.
    """
    from sklearn.datasets import load_digits  # deferred: sklearn import is slow
    from sklearn.model_selection import train_test_split

    if isinstance(test_fraction, bool) or not 0.0 < float(test_fraction) < 1.0:
        raise DataError(
            f"digits: 'test_fraction' must lie strictly between 0 and 1, got {test_fraction!r}"
        )
    if isinstance(split_seed, bool) or not isinstance(split_seed, int):
        raise DataError(f"digits: 'split_seed' must be an integer, got {split_seed!r}")
    bunch = load_digits()
    images = scale_digits_pixels(bunch.images)[..., np.newaxis]
    labels = np.asarray(bunch.target, dtype=np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=float(test_fraction), stratify=labels, random_state=split_seed
    )
    return DatasetArrays(
        x_train=np.ascontiguousarray(x_train),
        y_train=y_train,
        x_test=np.ascontiguousarray(x_test),
        y_test=y_test,
        class_names=[str(name) for name in bunch.target_names],
        attrs={"test_fraction": float(test_fraction), "split_seed": split_seed},
    )
