"""Turn a dataset spec from the YAML config into arrays, and into the HDF5 file.

The spec is a plain mapping whose ``source`` key picks a loader from
:data:`SOURCES`; every other key is passed to that loader by name. Keys are
checked against the loader's signature so a typo such as ``max_train_per_clas``
fails loudly instead of silently preparing the full dataset.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from feddiff.data.digits import load_digits_source
from feddiff.data.domains import load_domains
from feddiff.data.errors import DataError
from feddiff.data.h5 import DatasetArrays, save_dataset
from feddiff.data.imagefolder import load_imagefolder
from feddiff.data.torchvision_sources import TORCHVISION_SOURCES

log = logging.getLogger(__name__)

#: Loaders by ``source`` name. Each takes keyword arguments named like the spec
#: keys; those that accept ``resources_dir`` get it from the caller, not the spec.
SOURCES: dict[str, Callable[..., DatasetArrays]] = {
    "digits": load_digits_source,
    "imagefolder": load_imagefolder,
    **TORCHVISION_SOURCES,
    "domains": load_domains,  # several of the above as named domains (feddiff.data.domains)
}
#: Spec keys that label a dataset for humans and are not passed to loaders.
DESCRIPTIVE_KEYS = frozenset({"source", "name", "description"})


def _loader_kwargs(
    name: str, loader: Callable[..., DatasetArrays], spec: Mapping[str, Any], resources_dir: Path
) -> dict[str, Any]:
    params = inspect.signature(loader).parameters
    allowed = {k for k in params if k != "resources_dir"}
    kwargs = {k: v for k, v in spec.items() if k not in DESCRIPTIVE_KEYS}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise DataError(
            f"dataset source {name!r} does not take key(s) {unknown}; "
            f"allowed keys: {sorted(allowed | DESCRIPTIVE_KEYS)}"
        )
    for key, param in params.items():
        if (
            param.default is inspect.Parameter.empty
            and key != "resources_dir"
            and key not in kwargs
        ):
            raise DataError(f"dataset source {name!r} needs key {key!r} in its spec")
    if "resources_dir" in params:
        kwargs["resources_dir"] = resources_dir
    return kwargs


def load_source(spec: Mapping[str, Any], resources_dir: Path = Path("resources")) -> DatasetArrays:
    """Load the dataset described by ``spec`` into memory (no file is written).

    Provenance (``source`` and the full ``spec``) is added to ``attrs`` so the
    prepared file records where its pixels came from.
    """
    if not isinstance(spec, Mapping):
        raise DataError(f"dataset spec must be a mapping with a 'source' key, got {spec!r}")
    if "source" not in spec:
        raise DataError(f"dataset spec has no 'source' key; choose one of {sorted(SOURCES)}")
    name = spec["source"]
    if name not in SOURCES:
        raise DataError(
            f"unknown dataset source {name!r} (key 'source'); choose one of {sorted(SOURCES)}"
        )
    loader = SOURCES[name]
    arrays = loader(**_loader_kwargs(name, loader, spec, Path(resources_dir)))
    arrays.attrs = {"source": name, **arrays.attrs, "spec": dict(spec)}
    return arrays


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
