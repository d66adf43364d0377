"""Turn a dataset spec from the YAML config into arrays, and into the HDF5 file.

The spec is a plain mapping whose ``source`` key picks a loader from
:data:`SOURCES`; every other key is passed to that loader by name. Keys are
checked against the loader's signature so a typo such as ``max_train_per_clas``
fails loudly instead of silently preparing the full dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from feddiff.data.domains import load_domains
from feddiff.data.h5 import DatasetArrays, save_dataset
from feddiff.data.sources import SINGLE_SOURCES, Loader, load_with

log = logging.getLogger(__name__)

#: Loaders by ``source`` name (:data:`feddiff.data.sources.SINGLE_SOURCES`, and
#: ``domains``: several of those as named domains, :mod:`feddiff.data.domains`).
SOURCES: dict[str, Loader] = {**SINGLE_SOURCES, "domains": load_domains}


def load_source(spec: Mapping[str, Any], resources_dir: Path = Path("resources")) -> DatasetArrays:
    """Load the dataset described by ``spec`` into memory (no file is written).

    Provenance (``source`` and the full ``spec``) is added to ``attrs`` so the
    prepared file records where its pixels came from.
    """
    return load_with(SOURCES, spec, Path(resources_dir))


def prepare_dataset(
    spec: Mapping[str, Any], out_path: Path, resources_dir: Path = Path("resources")
) -> DatasetArrays:
    """Load the dataset described by ``spec`` and write it atomically to ``out_path``."""
    arrays = load_source(spec, resources_dir)
    save_dataset(arrays, out_path)
    log.info(
        "prepared %s: %d train / %d test images of shape %s, %d classes -> %s",
        arrays.attrs["source"],
        len(arrays.y_train),
        len(arrays.y_test),
        arrays.x_train.shape[1:],
        arrays.num_classes,
        out_path,
    )
    return arrays
