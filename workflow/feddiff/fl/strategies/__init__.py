"""The strategy registry: each built-in strategy's name, hyperparameters and module.

One module per algorithm (a :class:`~feddiff.fl.strategy.Strategy` subclass, torch),
with its hyperparameters declared beside it as a frozen dataclass in
``<name>_params.py`` (no torch). This table names both. It imports only the
hyperparameter modules, so validating a config when the DAG is built
(:func:`make_params`) needs no torch, and a run imports only the algorithm it uses
(:func:`feddiff.fl.strategy.strategy_class` imports :attr:`StrategyEntry.module` on
demand): a FedAvg job never loads FedDDPM's calibration nor FedDifRC's features.

To add a strategy: its module (the class decorated with
:func:`~feddiff.fl.strategy.register`), its params module if it has hyperparameters,
and a row here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from feddiff.calibration.params import CalibrationParams
from feddiff.fl.strategies.fedavgm_params import FedAvgMParams
from feddiff.fl.strategies.feddifrc_params import FedDifRCParams
from feddiff.fl.strategies.fednh_params import FedNHParams
from feddiff.fl.strategies.fednova_params import FedNovaParams
from feddiff.fl.strategies.fedprox_params import FedProxParams
from feddiff.fl.strategies.moon_params import MoonParams
from feddiff.fl.strategies.scaffold_params import ScaffoldParams
from feddiff.schema import build


@dataclass(frozen=True)
class NoParams:
    """Hyperparameters of a strategy that has none."""


@dataclass(frozen=True)
class StrategyEntry:
    """Where a strategy lives: its hyperparameter dataclass and its algorithm's module."""

    params: type
    module: str


def _entry(params: type, name: str) -> StrategyEntry:
    return StrategyEntry(params, f"{__name__}.{name}")


#: Every built-in strategy by the name the config's ``methods.<m>.strategy`` uses.
STRATEGIES: dict[str, StrategyEntry] = {
    "fedavg": _entry(NoParams, "fedavg"),
    "fedavgm": _entry(FedAvgMParams, "fedavgm"),
    "fedbn": _entry(NoParams, "fedbn"),
    "fedddpm": _entry(CalibrationParams, "fedddpm"),  # shared with diffusion.calibration
    "feddifrc": _entry(FedDifRCParams, "feddifrc"),
    "fednh": _entry(FedNHParams, "fednh"),
    "fednova": _entry(FedNovaParams, "fednova"),
    "fedprox": _entry(FedProxParams, "fedprox"),
    "moon": _entry(MoonParams, "moon"),
    "scaffold": _entry(ScaffoldParams, "scaffold"),
}


def strategy_entry(name: Any) -> StrategyEntry:
    """The registry row of ``name``; a clear error for a name that is not registered."""
    if name not in STRATEGIES:
        raise ValueError(
            f"method.strategy: unknown strategy {name!r}; choose one of {sorted(STRATEGIES)}"
        )
    return STRATEGIES[name]


def make_params(name: Any, values: Mapping[str, Any]) -> Any:
    """Build strategy ``name``'s hyperparameters from config values and check them,
    naming any unknown or bad key (``method.<key>``). Needs no torch: the config checks
    call it. Keys, types and ranges are the params dataclass's declarations
    (:func:`feddiff.schema.build`); its ``check()``, if any, adds cross-value checks."""
    params = build(strategy_entry(name).params, values, "method")
    check = getattr(params, "check", None)
    if callable(check):
        check()
    return params


def method_params(method: Mapping[str, Any]) -> Any:
    """The checked hyperparameters of a config method ``{"strategy": name, **values}``."""
    values = dict(method)
    return make_params(values.pop("strategy", None), values)
