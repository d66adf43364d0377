"""The server's calibration step on the auxiliary set, generic over the objective.

Every random draw derives from ``(seed, round)`` (batches, DDPM noise and timesteps)
and the auxiliary loss is measured on a fixed subset with fixed noise, so the same
model always gets the same loss and a resumed run repeats its calibrations exactly.
A fresh optimiser per pass: nothing but the detector's history and the count crosses
rounds (both checkpointed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from feddiff.calibration.params import CalibrationParams
from feddiff.calibration.stall import StallDetector
from feddiff.fl.sampling import derived_seed
from feddiff.utils.eager_optim import SGD
from feddiff.utils.seeding import torch_generator

_EVAL_SUBSET, _EVAL_NOISE, _CALIBRATE = 0xE7, 0xE8, 0xCA


class Objective(Protocol):
    """``(model, uint8 images NCHW, labels, generator) -> scalar loss``.

    :class:`ClassifierObjective` below; the DDPM's is
    :class:`feddiff.diffusion.ddpm.DenoisingObjective`, kept with the DDPM loss so that
    calibrating a classifier never imports diffusers.
    """

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor: ...


class ClassifierObjective:
    """Cross-entropy on auxiliary images, normalised like the real training data."""

    def __init__(self, normalize: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.normalize = normalize

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        _, logits = model(self.normalize(x))
        return F.cross_entropy(logits, y)


OptimizerFactory = Callable[[list[nn.Parameter], float], torch.optim.Optimizer]


def sgd(momentum: float, weight_decay: float = 0.0) -> OptimizerFactory:
    return lambda params, lr: SGD(  # torch.optim.SGD, no compiler import (eager_optim)
        params, lr=lr, momentum=momentum, weight_decay=weight_decay
    )


def adam() -> OptimizerFactory:
    return lambda params, lr: torch.optim.Adam(params, lr=lr)


class ServerCalibrator:
    """FedDDPM / FedDDPM+ after aggregation; :meth:`after_aggregate` is the server hook.

    ``images`` (uint8 NCHW) and ``labels`` live on the training device. The metrics
    it returns join the round's row: ``aux_loss`` (global model after aggregation),
    ``aux_loss_after`` (after this round's calibration, equal when none ran),
    ``calibrated`` (1 when a pass ran this round) and ``calibrations`` (running count).
    """

    def __init__(
        self,
        params: CalibrationParams,
        images: torch.Tensor,
        labels: torch.Tensor,
        objective: Objective,
        optimizer: OptimizerFactory,
        lr: float,
        seed: int,
        eval_batch_size: int = 256,
    ) -> None:
        if len(images) == 0:
            raise ValueError("the auxiliary set is empty; nothing to calibrate on")
        self.params = params
        self.images = images
        self.labels = labels
        self.objective = objective
        self.optimizer = optimizer
        self.lr = float(params.lr if params.lr is not None else lr)
        self.seed = int(seed)
        self.eval_batch_size = eval_batch_size
        gen = torch_generator(derived_seed(self.seed, _EVAL_SUBSET), "cpu")
        order = torch.randperm(len(images), generator=gen)[: params.eval_size]
        self.eval_index = order.sort().values.to(images.device)
        self.detector = StallDetector(params.window, params.delta)
        self.count = 0

    @torch.no_grad()
    def aux_loss(self, model: nn.Module) -> float:
        """Mean objective of ``model`` (in eval mode) on the fixed evaluation subset."""
        was_training = model.training
        model.eval()
        gen = torch_generator(derived_seed(self.seed, _EVAL_NOISE), self.images.device)
        total = torch.zeros((), device=self.images.device)
        for chunk in self.eval_index.split(self.eval_batch_size):
            total += self.objective(model, self.images[chunk], self.labels[chunk], gen) * len(chunk)
        model.train(was_training)
        return float(total) / len(self.eval_index)

    def calibrate(self, model: nn.Module, round: int) -> float:
        """One pass: ``steps`` optimiser steps on random auxiliary batches; mean batch loss."""
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = self.optimizer(params, self.lr)
        gen = torch_generator(derived_seed(self.seed, round, _CALIBRATE), self.images.device)
        n = len(self.images)
        batch = min(self.params.batch_size, n)
        loss_sum = torch.zeros((), device=self.images.device)
        for _ in range(self.params.steps):
            idx = torch.randperm(n, device=self.images.device, generator=gen)[:batch]
            loss = self.objective(model, self.images[idx], self.labels[idx], gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
        mean = float(loss_sum) / self.params.steps
        if not math.isfinite(mean):
            raise FloatingPointError(
                f"calibration loss became non-finite in round {round}; lower the calibration lr"
            )
        return mean

    def after_aggregate(self, model: nn.Module, round: int) -> dict[str, Any]:
        before = self.aux_loss(model)
        if self.params.trigger == "every_round":
            fire = True
        else:
            fire = self.detector.observe(before)
        after = before
        if fire:
            self.calibrate(model, round)
            after = self.aux_loss(model)
            self.count += 1
            if self.params.trigger == "stall":
                self.detector.reset(after)
        return {
            "aux_loss": before,
            "aux_loss_after": after,
            "calibrated": int(fire),
            "calibrations": self.count,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"detector": self.detector.state_dict(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.detector.load_state_dict(state.get("detector", {}))
        self.count = int(state.get("count", 0))
