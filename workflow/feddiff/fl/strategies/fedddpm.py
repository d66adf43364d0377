"""FedDDPM / FedDDPM+ for the classifier (Peng et al., 2025): FedAvg plus server calibration.

Clients train as in FedAvg. After each aggregation the server trains the global model
on the auxiliary set its clients' DDPMs generated before FL (cross-entropy on the
auxiliary images and labels, SGD with the local lr and momentum unless the method
sets its own): every round (``trigger: every_round``, FedDDPM) or only when the global
model's auxiliary loss stalls (``trigger: stall``, FedDDPM+). The calibration itself
is :class:`~feddiff.calibration.ServerCalibrator`, shared with the federated DDPM.
Each round's ``aux_loss``, ``aux_loss_after``, ``calibrated`` and ``calibrations``
go into ``metrics.csv``.

Our reading of the paper (its code is not public) is in ``docs/fedddpm.md``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from feddiff.auxiliary.store import load_auxiliary_tensors
from feddiff.calibration import CalibrationParams
from feddiff.calibration.calibrator import ClassifierObjective, ServerCalibrator, sgd
from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategy import ClientUpdate, Strategy, register


@register("fedddpm")
class FedDDPM(Strategy):
    """FedAvg on the clients, calibration on the auxiliary set on the server."""

    params: CalibrationParams
    vectorizable = True

    def __init__(self, params: CalibrationParams, num_clients: int, num_classes: int) -> None:
        super().__init__(params, num_clients, num_classes)
        self.calibrator: ServerCalibrator | None = None
        self._images: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None
        self._objective: ClassifierObjective | None = None
        self._metrics: dict[str, Any] = {}

    def bind_data(self, data: Any, dataset_fingerprint: str | None = None) -> None:
        """Load the auxiliary set onto the training device and check it fits the data."""
        self._images, self._labels = load_auxiliary_tensors(
            str(self.params.auxiliary), data.x_train, self.num_classes, dataset_fingerprint
        )
        self._objective = ClassifierObjective(data.normalize)

    def bind_run(self, settings: TrainSettings, seed: int) -> None:
        if self._images is None or self._labels is None or self._objective is None:
            raise RuntimeError(
                "fedddpm: bind_data must run before bind_run (the auxiliary set is not loaded)"
            )
        momentum = self.params.momentum if self.params.momentum is not None else settings.momentum
        self.calibrator = ServerCalibrator(
            self.params,
            self._images,
            self._labels,
            self._objective,
            sgd(momentum, settings.weight_decay),
            lr=settings.lr,
            seed=seed,
            eval_batch_size=settings.eval_batch_size,
        )

    def aggregate(self, global_model: nn.Module, updates: list[ClientUpdate], round: int) -> None:
        super().aggregate(global_model, updates, round)
        if self.calibrator is None:
            raise RuntimeError("fedddpm: bind_run was not called, so there is no calibrator")
        self._metrics = self.calibrator.after_aggregate(global_model, round)

    def round_metrics(self) -> dict[str, Any]:
        return dict(self._metrics)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["calibration"] = self.calibrator.state_dict() if self.calibrator is not None else {}
        return state

    def load_state_dict(self, state: Any) -> None:
        """Restore after :meth:`bind_run` (the engine binds a run before it restores one)."""
        super().load_state_dict(state)
        if self.calibrator is None:
            raise RuntimeError("fedddpm: bind_run must run before a checkpoint is restored")
        self.calibrator.load_state_dict(state.get("calibration", {}))
