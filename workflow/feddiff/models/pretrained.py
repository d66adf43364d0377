"""Saving and loading classifiers the way diffusers saves its models.

One convention for every network of the package: a folder with ``config.json`` (what
builds the network) and ``model.safetensors`` (its weights). The DDPMs use diffusers'
own ``save_pretrained`` (:mod:`feddiff.diffusion.io`); the classifiers (a run's final
model, the FID feature network) use :func:`save_pretrained` / :func:`load_pretrained`
here, with the constructor arguments of :func:`feddiff.models.build_model` as config.

Each file is written atomically (:mod:`feddiff.utils.atomic`), the weights last, so
their presence marks a complete folder; the folder may hold other files (a run
directory also has ``metrics.csv`` and ``run.json``). A model trained by a strategy
that wraps the classifier (MOON's projection head, FedNH's cosine classifier,
FedDifRC's projection) is saved as trained; ``config.json`` names the strategy under
``wrapper`` and :func:`load_pretrained` needs that strategy's ``wrap_model`` to rebuild
it, since the wrapper's own settings live with the strategy, not here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from feddiff.models import build_model
from feddiff.utils.atomic import atomic_path, write_text_atomic

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: The keys of a config: the arguments of :func:`feddiff.models.build_model`.
CONFIG_KEYS = ("model", "num_classes", "in_channels", "image_size", "width")


def classifier_config(
    model: str, num_classes: int, in_channels: int, image_size: int, width: float = 1.0
) -> dict[str, Any]:
    """The config that rebuilds a classifier with :func:`feddiff.models.build_model`."""
    return {
        "model": str(model),
        "num_classes": int(num_classes),
        "in_channels": int(in_channels),
        "image_size": int(image_size),
        "width": float(width),
    }


def _check_config(config: Mapping[str, Any], where: str) -> dict[str, Any]:
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise ValueError(f"{where}: model config lacks {missing} (it needs {list(CONFIG_KEYS)})")
    return classifier_config(**{k: config[k] for k in CONFIG_KEYS})


def build_from_config(config: Mapping[str, Any], where: str = "model config") -> nn.Module:
    """The (untrained) classifier a config describes."""
    c = _check_config(config, where)
    return build_model(c["model"], c["num_classes"], c["in_channels"], c["image_size"], c["width"])


def save_pretrained(
    model: nn.Module,
    folder: str | Path,
    config: Mapping[str, Any],
    wrapper: str | None = None,
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (CPU, contiguous) into ``folder``.

    ``config`` holds the classifier's constructor arguments (:func:`classifier_config`);
    ``wrapper`` names the strategy whose ``wrap_model`` produced ``model`` (None for a
    plain classifier). A plain model is checked against a model built from ``config``
    (same keys and shapes), so a wrong config fails here rather than at load time.
    """
    folder = Path(folder)
    arch = _check_config(config, str(folder))
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if wrapper is None:
        expected = {k: tuple(v.shape) for k, v in build_from_config(arch).state_dict().items()}
        got = {k: tuple(v.shape) for k, v in state.items()}
        if got != expected:
            bad = sorted(set(got) ^ set(expected)) or [k for k in got if got[k] != expected.get(k)]
            raise ValueError(
                f"{folder}: the model does not match its config {arch} (differs at {bad[:5]}); "
                "a strategy-wrapped model needs wrapper=<strategy>"
            )
    doc = {**arch, "wrapper": wrapper, "weights": WEIGHTS_FILE, "format": "feddiff-classifier"}
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / CONFIG_FILE, json.dumps(doc, indent=2) + "\n")
    with atomic_path(folder / WEIGHTS_FILE) as tmp:  # last: marks a complete folder
        save_file(state, str(tmp))
    return folder


def load_config(folder: str | Path) -> dict[str, Any]:
    """``config.json`` of a saved model folder."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {CONFIG_FILE} (not a save_pretrained folder)")
    return json.loads(path.read_text())


def load_pretrained(
    folder: str | Path,
    *,
    config: Mapping[str, Any] | None = None,
    wrap: Callable[[nn.Module], nn.Module] | None = None,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """The model saved in ``folder``, weights loaded (strict), in eval mode on ``device``.

    ``config`` replaces ``config.json`` for a folder written before it existed (the
    caller knows the architecture from its own metadata). ``wrap`` (a strategy's
    ``wrap_model``) is required when the config names a ``wrapper``.
    """
    folder = Path(folder)
    if not (folder / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{folder}: no {WEIGHTS_FILE}")
    doc = dict(config) if config is not None else load_config(folder)
    model = build_from_config(doc, str(folder / CONFIG_FILE))
    wrapper = doc.get("wrapper")
    if wrapper is not None:
        if wrap is None:
            raise ValueError(
                f"{folder}: the model was trained wrapped by strategy {wrapper!r}; pass "
                f"wrap=<that strategy>.wrap_model to rebuild it"
            )
        model = wrap(model)
    model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    return model.to(device).eval()


__all__ = [
    "CONFIG_FILE",
    "CONFIG_KEYS",
    "WEIGHTS_FILE",
    "build_from_config",
    "classifier_config",
    "load_config",
    "load_pretrained",
    "save_pretrained",
]
