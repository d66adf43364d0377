"""FedDDPM's first step: every client trains a class-conditional DDPM on its own data.

Each client starts from the same seeded initialisation (the server's), trains with
the FedDiffuse local objective (:func:`feddiff.diffusion.ddpm.train_local`, label
dropout included so guidance works), and "uploads" the result once; the server then
samples it for the classes that client holds. Every random stream derives from
``(seed, client)``, so a client's model and images do not depend on the others.
"""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DModel

from feddiff.auxiliary.settings import AuxiliarySettings
from feddiff.diffusion.ddpm import train_local
from feddiff.diffusion.sampling import generate
from feddiff.diffusion.unet import null_class
from feddiff.fl.data import FederatedData
from feddiff.fl.sampling import derived_seed
from feddiff.utils.seeding import torch_generator

_TRAIN, _SAMPLE = 0xA7, 0xA8


def state_digest(unet: UNet2DModel) -> str:
    """Short content hash of a client's model (provenance: which model made which image)."""
    h = hashlib.sha256()
    for name, tensor in sorted(unet.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def train_client_model(
    template: UNet2DModel,
    scheduler: DDPMScheduler,
    data: FederatedData,
    settings: AuxiliarySettings,
    seed: int,
    client: int,
) -> tuple[UNet2DModel, float]:
    """One client's class-conditional DDPM from the shared initialisation; its mean loss."""
    unet = copy.deepcopy(template)
    gen = torch_generator(derived_seed(seed, client, _TRAIN), data.device)
    loss_sum, steps = train_local(
        unet,
        scheduler,
        data.x_train,
        data.y_train,
        data.clients[client],
        epochs=settings.local_epochs,
        batch_size=settings.batch_size,
        lr=settings.lr,
        label_dropout=settings.label_dropout,
        num_classes=data.num_classes,
        generator=gen,
        round=0,
        client=client,
    )
    return unet, float(loss_sum) / max(steps, 1)


def sample_client(
    unet: UNet2DModel,
    scheduler_config: dict,
    per_class: np.ndarray,
    settings: AuxiliarySettings,
    seed: int,
    client: int,
    num_classes: int,
) -> tuple[torch.Tensor, np.ndarray]:
    """``per_class[c]`` images of class ``c`` from one client's model: uint8 NCHW, labels."""
    labels = np.repeat(np.arange(len(per_class)), per_class).astype(np.int64)
    if len(labels) == 0:
        c, s = unet.config.in_channels, unet.config.sample_size
        return torch.zeros((0, c, s, s), dtype=torch.uint8), labels
    gen = torch_generator(derived_seed(seed, client, _SAMPLE), unet.device)
    images = generate(
        unet,
        scheduler_config,
        torch.as_tensor(labels),
        len(labels),
        sampler=settings.sampler,
        steps=settings.steps,
        guidance_scale=settings.guidance_scale,
        null_label=null_class(num_classes),
        generator=gen,
        batch_size=settings.sample_batch_size,
    )
    return images, labels
