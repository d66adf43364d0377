"""The DDPM objective and one client's local training.

Training data stays a uint8 tensor on the device; a batch is a gather by index from
:func:`feddiff.fl.data.epoch_batches`, and noise, timesteps and label dropout draw
from the client's generator for ``(seed, round, client)``, so a client's update does
not depend on the order clients are simulated in and a resumed run repeats it exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel

from feddiff.diffusion.unet import is_conditional
from feddiff.errors import NonFiniteLossError
from feddiff.fl.data import epoch_batches


def to_model_range(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range the DDPM is trained in."""
    return x_uint8.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8, quantised like real images so both feed FID alike."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def drop_labels(
    labels: torch.Tensor, p: float, null: int, generator: torch.Generator
) -> torch.Tensor:
    """Replace each label by ``null`` with probability ``p`` (classifier-free guidance training)."""
    if p <= 0:
        return labels
    keep = torch.rand(labels.shape, device=labels.device, generator=generator) >= p
    return torch.where(keep, labels, torch.full_like(labels, null))


def ddpm_loss(
    unet: UNet2DModel,
    scheduler: DDPMScheduler,
    x0: torch.Tensor,
    labels: torch.Tensor | None,
    generator: torch.Generator,
) -> torch.Tensor:
    """MSE between the true and the predicted noise at uniformly drawn timesteps."""
    n = x0.shape[0]
    noise = torch.randn(x0.shape, device=x0.device, generator=generator)
    t = torch.randint(
        0, scheduler.config.num_train_timesteps, (n,), device=x0.device, generator=generator
    )
    noisy = scheduler.add_noise(x0, noise, t)
    pred = unet(noisy, t, class_labels=labels).sample
    return F.mse_loss(pred, noise)


class DenoisingObjective:
    """The DDPM loss on auxiliary images: the objective of the federated DDPM's server
    calibration (:class:`feddiff.calibration.calibrator.ServerCalibrator`, FedDDPM)."""

    def __init__(self, scheduler: DDPMScheduler, conditional: bool) -> None:
        self.scheduler = scheduler
        self.conditional = conditional

    def __call__(
        self, model: UNet2DModel, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        return ddpm_loss(
            model, self.scheduler, to_model_range(x), y if self.conditional else None, generator
        )


def train_local(
    unet: UNet2DModel,
    scheduler: DDPMScheduler,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    indices: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    label_dropout: float,
    num_classes: int,
    generator: torch.Generator,
    round: int = 0,
    client: int = 0,
) -> tuple[torch.Tensor, int]:
    """Adam over a client's data; returns the summed batch loss and the step count.

    The optimizer is built here, fresh for every client and round, so no optimizer
    state crosses rounds or leaks between clients (as in the classifier runs). Its
    multi-tensor (``foreach``) update is CUDA's default; on a CPU it gives the
    per-tensor loop's results bit for bit (tests/diffusion/test_ddpm_adam.py) at a
    third less of the update's cost, one call per step instead of one per tensor.
    """
    unet.train()
    optimizer = torch.optim.Adam(unet.parameters(), lr=lr, foreach=True)
    conditional = is_conditional(unet)
    loss_sum = torch.zeros((), device=x_train.device)
    steps = 0
    for _ in range(epochs):
        for idx in epoch_batches(indices, batch_size, generator):
            x0 = to_model_range(x_train[idx])
            labels = (
                drop_labels(y_train[idx], label_dropout, num_classes, generator)
                if conditional
                else None
            )
            loss = ddpm_loss(unet, scheduler, x0, labels, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            steps += 1
    if not torch.isfinite(loss_sum):
        raise NonFiniteLossError(
            f"non-finite diffusion loss in round {round}, client {client}; lower "
            "diffusion.training.lr"
        )
    return loss_sum, steps
