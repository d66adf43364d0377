"""The single-dataset loaders by ``source`` name, and the spec-to-arguments check.

Kept apart from :mod:`feddiff.data.prepare` so the multi-domain loader
(:mod:`feddiff.data.domains`), which loads each domain with one of these, imports them
without importing ``prepare``, which registers it: no import cycle.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from feddiff.data.digits import load_digits_source
from feddiff.data.errors import DataError
from feddiff.data.h5 import DatasetArrays
from feddiff.data.imagefolder import load_imagefolder
from feddiff.data.torchvision_sources import TORCHVISION_SOURCES

Loader = Callable[..., DatasetArrays]

#: Loaders of one dataset each, by ``source`` name. Each takes keyword arguments named
#: like the spec keys; those that accept ``resources_dir`` get it from the caller.
SINGLE_SOURCES: dict[str, Loader] = {
    "digits": load_digits_source,
    "imagefolder": load_imagefolder,
    **TORCHVISION_SOURCES,
}
#: Spec keys that label a dataset for humans and are not passed to loaders.
DESCRIPTIVE_KEYS = frozenset({"source", "name", "description"})


def loader_kwargs(
    name: str, loader: Loader, spec: Mapping[str, Any], resources_dir: Path
) -> dict[str, Any]:
    """The loader's keyword arguments from ``spec``; unknown or missing keys are errors."""
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


def load_with(
    sources: Mapping[str, Loader], spec: Mapping[str, Any], resources_dir: Path
) -> DatasetArrays:
    """Load ``spec`` with its loader from ``sources``; provenance goes into ``attrs``."""
    if not isinstance(spec, Mapping):
        raise DataError(f"dataset spec must be a mapping with a 'source' key, got {spec!r}")
    if "source" not in spec:
        raise DataError(f"dataset spec has no 'source' key; choose one of {sorted(sources)}")
    name = spec["source"]
    if name not in sources:
        raise DataError(
            f"unknown dataset source {name!r} (key 'source'); choose one of {sorted(sources)}"
        )
    loader = sources[name]
    arrays = loader(**loader_kwargs(name, loader, spec, Path(resources_dir)))
    arrays.attrs = {"source": name, **arrays.attrs, "spec": dict(spec)}
    return arrays
