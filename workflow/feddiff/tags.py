"""Path tags: the readable, parameter-encoding directory names of every output.

A tag encodes the settings that made a result, so results of different settings never
share a path and a cached result is found again from the config alone. Two kinds:

- spelled-out tags (:func:`params_tag`): ``<head>_<key><value>...`` over sorted keys,
  for partitions and methods, whose few settings read well in a path;
- hashed tags: a readable head plus :func:`digest` (8 hex characters of a SHA-256 over
  the resolved settings as sorted JSON), for training, diffusion, the FID classifier,
  features and auxiliary sets, whose settings are many.

Every tag of the pipeline is defined here, once; the values are pinned by
``tests/config/test_known_outputs.py`` (a changed tag would orphan users' results).
Settings are resolved (defaults filled) by their dataclasses before hashing, so a
config that spells out a default gets the same tag as one that leaves it out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from feddiff.auxiliary.settings import AuxiliarySettings
from feddiff.diffusion.settings import DiffusionSettings
from feddiff.features.settings import FeatureSettings
from feddiff.fl.settings import TrainSettings
from feddiff.partition.pathological import DEFAULT_ASSIGNMENT

#: Feature settings that never change the vectors (left out of the features hash).
FEATURES_NOT_HASHED = ("batch_size", "unet_batch_size")


def digest(obj: Any) -> str:
    """8 hex characters of SHA-256 over ``obj`` as sorted JSON: the settings hash."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:8]


def fmt(value: Any) -> str:
    """One parameter value as it appears in a spelled-out tag."""
    if isinstance(value, Mapping):  # e.g. the domain scheme's clients_per_domain
        return "-".join(f"{k}{fmt(v)}" for k, v in sorted(value.items()))
    if isinstance(value, str) and "/" in value:  # a file (FedDifRC's features): its name only
        return Path(value).stem
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def params_tag(head: str, params: Mapping[str, Any]) -> str:
    """``head`` followed by ``_<key><value>`` for each parameter, sorted by key."""
    parts = [head] + [f"{k}{fmt(params[k])}" for k in sorted(params)]
    return "_".join(parts)


def partition_tag(setting: Mapping[str, Any]) -> str:
    """``<scheme>_<key><value>...``; ``pathological`` always spells out its ``assignment``.

    The class-assignment rule of ``pathological`` changed default (cyclic -> random); a tag
    without it would name cyclic partitions made before the change, so it is written out
    even when the config leaves it to the default.
    """
    rest = {k: v for k, v in setting.items() if k != "scheme"}
    if setting["scheme"] == "pathological":
        rest.setdefault("assignment", DEFAULT_ASSIGNMENT)
    return params_tag(str(setting["scheme"]), rest)


def method_tag(method: Mapping[str, Any]) -> str:
    """The strategy, then its hyperparameters as given (file references by name)."""
    rest = {k: v for k, v in method.items() if k != "strategy"}
    return params_tag(str(method["strategy"]), rest)


def training_tag(training: Mapping[str, Any]) -> str:
    """Readable head (model, rounds, local epochs) plus a hash of every resolved setting."""
    resolved = TrainSettings.from_dict(dict(training)).to_dict()
    return (
        f"{resolved['model']}-R{resolved['rounds']}-E{resolved['local_epochs']}-{digest(resolved)}"
    )


def diffusion_settings(section: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting of the ``diffusion`` section (defaults filled), without the grid."""
    return DiffusionSettings.from_dict(dict(section)).to_dict()


def diffusion_tag(section: Mapping[str, Any], calibration: Mapping[str, Any] | None = None) -> str:
    """Readable head plus a hash of every setting (and of the run's calibration, if any)."""
    s = diffusion_settings(section)
    hashed: Any = s if calibration is None else {**s, "calibration": dict(calibration)}
    return f"ddpm-R{s['training']['rounds']}-E{s['training']['local_epochs']}-{digest(hashed)}"


def classifier_tag(section: Mapping[str, Any]) -> str:
    """The FID classifier of the ``diffusion`` section: model, epochs, hash of its settings."""
    c = diffusion_settings(section)["fid"]["classifier"]
    return f"{c['model']}-E{c['epochs']}-{digest(c)}"


def features_tag(settings: Mapping[str, Any]) -> str:
    """Backbone, timestep, blocks, dims, then a hash of the settings that change vectors."""
    s = FeatureSettings.from_dict(dict(settings)).to_dict()
    hashed = {k: v for k, v in s.items() if k not in FEATURES_NOT_HASHED}
    blocks = ".".join(str(b) for b in s["blocks"])
    dims = ".".join(str(d) for d in s["dims"])
    head = f"{s['backbone']}-t{s['timestep']}-b{blocks}-d{dims}"
    return (
        f"{head}-ss-{digest(hashed)}"
        if s["mode"] == "self_supervised"
        else f"{head}-{digest(hashed)}"
    )


def auxiliary_tag(
    name: str,
    generation: Mapping[str, Any],
    not_hashed: Collection[str] = AuxiliarySettings.NOT_HASHED,
) -> str:
    """Entry name, generator and size, then a hash of what changes the images."""
    aux = generation["auxiliary"]
    hashed = {
        **generation,
        "auxiliary": {k: v for k, v in aux.items() if k not in not_hashed},
    }
    return f"{name}-{aux['generator']}-n{aux['size']}-{digest(hashed)}"
