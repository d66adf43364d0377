"""The feature network of the offline FID fallback, trained centrally once per dataset.

A classifier from :mod:`feddiff.models` is trained on the whole real training split
(SGD, no augmentation) and cached as its own artifact (a
:func:`feddiff.models.pretrained.save_pretrained` folder, ``config.json`` +
``model.safetensors``, plus ``info.json`` with its test accuracy and the normalisation it
was trained with), so every diffusion run of a dataset is scored in the same feature space.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from feddiff.data.h5 import load_dataset
from feddiff.diffusion.kinds import KIND_CLASSIFIER
from feddiff.diffusion.settings import ClassifierSettings
from feddiff.fl.data import FederatedData, epoch_batches
from feddiff.fl.engine import evaluate
from feddiff.fl.sampling import client_generator
from feddiff.fl.settings import AugmentSettings
from feddiff.models import build_model
from feddiff.models.pretrained import (
    WEIGHTS_FILE,
    classifier_config,
    load_pretrained,
    save_pretrained,
)
from feddiff.utils.atomic import write_text_atomic
from feddiff.utils.device import resolve_device
from feddiff.utils.eager_optim import SGD
from feddiff.utils.provenance import package_versions
from feddiff.utils.seeding import seed_everything

MODEL_FILE = WEIGHTS_FILE
INFO_FILE = "info.json"


def train_fid_classifier(
    data_path: Path, settings: ClassifierSettings, out_dir: Path, progress: bool = False
) -> dict[str, Any]:
    """Train on the train split, write the model and info.json; returns the info."""
    arrays = load_dataset(data_path)
    device = resolve_device(settings.device)
    all_idx = np.arange(len(arrays.y_train))
    data = FederatedData.from_dataset(arrays, [all_idx], device)
    seed_everything(settings.seed)
    model = build_model(
        settings.model, arrays.num_classes, data.in_channels, data.image_size, settings.width
    ).to(device)
    optimizer = SGD(  # torch.optim.SGD, no compiler import (feddiff.utils.eager_optim)
        model.parameters(),
        lr=settings.lr,
        momentum=settings.momentum,
        weight_decay=settings.weight_decay,
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    no_aug = AugmentSettings()
    for epoch in range(1, settings.epochs + 1):
        model.train()
        gen = client_generator(settings.seed, epoch, 0, device)
        for idx in epoch_batches(data.clients[0], settings.batch_size, gen):
            x, y = data.train_batch(idx, no_aug, gen)
            loss = F.cross_entropy(model(x)[1], y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sched.step()
    acc, test_loss = evaluate(model, data, 1024)
    info = {
        "purpose": f"feature network for the {KIND_CLASSIFIER}",
        "settings": asdict(settings),
        "num_classes": arrays.num_classes,
        "in_channels": data.in_channels,
        "image_size": data.image_size,
        "feature_dim": int(model.feature_dim),
        "mean": data.mean.cpu().tolist(),
        "std": data.std.cpu().tolist(),
        "test_acc": acc,
        "test_loss": test_loss,
        "dataset_fingerprint": arrays.attrs.get("fingerprint"),
        "versions": package_versions(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / INFO_FILE, json.dumps(info, indent=2) + "\n")
    # The weights last: their presence marks a finished artifact.
    save_pretrained(model, out_dir, _config(info))
    return info


def _config(info: dict[str, Any]) -> dict[str, Any]:
    """The classifier's constructor arguments, from its info.json."""
    s = info["settings"]
    return classifier_config(
        s["model"], info["num_classes"], info["in_channels"], info["image_size"], s["width"]
    )


class ClassifierFeatures:
    """Penultimate features of the cached classifier for uint8 NCHW images."""

    kind = KIND_CLASSIFIER

    def __init__(
        self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor, info: dict[str, Any]
    ) -> None:
        self.model = model.eval()
        self.mean, self.std, self.info = mean, std, info

    @classmethod
    def load(cls, directory: Path, device: torch.device) -> ClassifierFeatures:
        directory = Path(directory)
        if not (directory / MODEL_FILE).is_file():
            raise FileNotFoundError(
                f"{directory}: no {MODEL_FILE}; run the fid-classifier stage first"
            )
        info = json.loads((directory / INFO_FILE).read_text())
        # a folder written before config.json existed: its architecture is in info.json
        legacy = None if (directory / "config.json").is_file() else _config(info)
        model = load_pretrained(directory, config=legacy)
        mean = torch.tensor(info["mean"], device=device)[None, :, None, None]
        std = torch.tensor(info["std"], device=device)[None, :, None, None]
        return cls(model.to(device), mean, std, info)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
        device = self.mean.device
        out = []
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(device).float() / 255.0
            feats, _ = self.model((x - self.mean) / self.std)
            out.append(feats.double().cpu().numpy())
        return np.concatenate(out)
