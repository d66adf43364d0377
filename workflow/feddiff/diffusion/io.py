"""Saving and loading trained diffusion models in diffusers' own format.

A run's ``model/`` folder holds ``scheduler/`` (``DDPMScheduler.save_pretrained``)
and one ``UNet2DModel.save_pretrained`` folder per model the mode yields:
``unet/`` for FULL and USPLIT (the global model), ``clients/client<k>/unet/`` for
UDEC and ULATDEC (shared parts plus client k's private parts, i.e. the model client k
actually samples with). ``model.json`` lists them. Any of them loads back with plain
``UNet2DModel.from_pretrained``; :func:`load_diffusion` is a convenience.

The folder is written under a temporary name and renamed into place
(:func:`feddiff.utils.atomic.atomic_dir`), so an interrupted job never leaves a
half-written model that looks complete.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from diffusers import DDPMScheduler, UNet2DModel

from feddiff.utils.atomic import atomic_dir

MODEL_INFO = "model.json"


def model_subdir(name: str) -> str:
    """Where model ``name`` ("global" or "client<k>") lives inside ``model/``."""
    return "unet" if name == "global" else f"clients/{name}/unet"


def save_diffusion(
    target: Path,
    template: UNet2DModel,
    scheduler: DDPMScheduler,
    states: Mapping[str, Mapping[str, torch.Tensor]],
    info: Mapping[str, Any],
) -> None:
    """Write each state of ``states`` (name -> UNet state) with ``save_pretrained``."""
    with atomic_dir(target) as tmp:
        scheduler.save_pretrained(tmp / "scheduler")
        for name, state in states.items():
            template.load_state_dict(state)
            template.save_pretrained(tmp / model_subdir(name))
        doc = {
            **info,
            "models": {name: model_subdir(name) for name in states},
            "scheduler": "scheduler",
        }
        (tmp / MODEL_INFO).write_text(json.dumps(doc, indent=2) + "\n")


def load_diffusion(model_dir: Path, name: str | None = None) -> tuple[UNet2DModel, DDPMScheduler]:
    """A saved UNet (``name``; the first listed when omitted) and the scheduler."""
    model_dir = Path(model_dir)
    doc = json.loads((model_dir / MODEL_INFO).read_text())
    models = doc["models"]
    name = name or next(iter(models))
    if name not in models:
        raise KeyError(f"{model_dir}: no model {name!r}; it holds {sorted(models)}")
    unet = UNet2DModel.from_pretrained(model_dir / models[name], low_cpu_mem_usage=False)
    scheduler = DDPMScheduler.from_pretrained(model_dir / doc["scheduler"])
    return unet, scheduler
