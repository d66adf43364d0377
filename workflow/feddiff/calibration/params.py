"""Hyperparameters of the server-side calibration (FedDDPM / FedDDPM+).

One dataclass for both federations: it is the ``fedddpm`` strategy's ``Params`` and
an entry of ``diffusion.calibration``. Defaults that depend on the federation (the
learning rate, momentum) are ``None`` and fall back to that federation's local
optimiser settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from feddiff.schema import check_values, setting

TRIGGERS = ("every_round", "stall")


@dataclass(frozen=True)
class CalibrationParams:
    """``auxiliary`` names an entry of the config's ``auxiliary`` section (the run gets
    the file's path). ``steps`` optimiser steps of ``batch_size`` auxiliary images make
    one calibration pass. ``trigger: every_round`` is FedDDPM; ``trigger: stall`` is
    FedDDPM+: a pass only when the relative improvement of the auxiliary loss over the
    last ``window`` rounds falls below ``delta``. ``eval_size`` auxiliary images (a fixed
    subset) measure that loss."""

    auxiliary: str = setting(min_length=1, description="name of an entry of the auxiliary section")
    trigger: str = setting(
        "every_round",
        enum=TRIGGERS,
        description=(
            "every_round: FedDDPM; stall: FedDDPM+ (one pass when the auxiliary loss stops "
            "improving)"
        ),
    )
    steps: int = setting(10, minimum=1, description="optimiser steps per calibration pass")
    batch_size: int = setting(64, minimum=1)
    lr: float | None = setting(
        None, exclusive_minimum=0, description="null: the federation's local lr"
    )
    momentum: float | None = setting(
        None,
        minimum=0,
        exclusive_maximum=1,
        description="classifier SGD momentum; null: training.momentum",
    )
    window: int = setting(
        3, minimum=1, description="FedDDPM+: rounds w the improvement is measured over"
    )
    delta: float = setting(
        0.01,
        minimum=0,
        description="FedDDPM+: calibrate when (L[t-w] - L[t]) / L[t-w] < delta",
    )
    eval_size: int = setting(
        512,
        minimum=1,
        description="auxiliary images (a fixed subset) the auxiliary loss is measured on",
    )

    def check(self) -> None:
        """Hold a direct ``CalibrationParams(**values)`` (a run's settings) to the same
        declared ranges as a config entry (:func:`feddiff.schema.build`)."""
        check_values(self, "")
