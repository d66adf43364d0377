"""The strategy interface every federated algorithm implements.

An algorithm is a subclass of :class:`Strategy` in its own module under
``feddiff.fl.strategies``, registered by name with :func:`register`. Its
hyperparameters are a frozen dataclass beside it (defaults from the method's paper),
named with the module in the registry table (:data:`feddiff.fl.strategies.STRATEGIES`),
and it overrides only the hooks it needs:

* client side: :meth:`Strategy.configure_client` (before local training),
  :meth:`Strategy.loss` (CE plus any extra terms), :meth:`Strategy.before_step`
  (gradient corrections), :meth:`Strategy.finish_client` (what is uploaded);
* server side: :meth:`Strategy.setup` (server state), :meth:`Strategy.aggregate`;
* evaluation: :meth:`Strategy.evaluation_models` (the global model, or each client's own).

Per-client state lives in ``self.client_states`` on the CPU (only for clients that
have any), and everything in :meth:`Strategy.state_dict` goes into the checkpoint, so
a resumed run continues exactly.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from feddiff.fl.aggregation import count_params, weighted_average
from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategies import NoParams, method_params, strategy_entry


@dataclass
class LocalContext:
    """What a strategy sees of one client's local training in one round.

    ``settings`` carries the local optimiser's lr and momentum, which SCAFFOLD and
    FedNova need; ``batch_indices`` are the dataset indices of the current batch (for
    per-sample side data such as cached diffusion features); ``scratch`` holds whatever
    a strategy keeps for the current client.
    """

    client_id: int
    round: int
    model: nn.Module
    global_model: nn.Module
    num_samples: int
    settings: TrainSettings
    num_steps: int = 0
    batch_indices: torch.Tensor | None = None
    scratch: dict[str, Any] = field(default_factory=dict)


@dataclass
class ClientUpdate:
    """What one client uploads after local training."""

    client_id: int
    num_samples: int
    num_steps: int
    weights: dict[str, torch.Tensor]
    params_up: int
    extras: dict[str, Any] = field(default_factory=dict)


class Strategy:
    """FedAvg behaviour; subclasses override the hooks that differ."""

    name: ClassVar[str] = "base"
    #: The hyperparameter dataclass; :func:`register` sets it from the registry table.
    Params: ClassVar[type] = NoParams
    #: True when the local objective is :meth:`vectorized_loss` and no other client
    #: hook does anything, so the engine may train a round's clients together
    #: (``feddiff.fl.vectorized``); declared per class, not inherited by a subclass
    #: that overrides a client hook.
    vectorizable: ClassVar[bool] = False

    def __init__(self, params: Any, num_clients: int, num_classes: int) -> None:
        self.params = params
        self.num_clients = num_clients
        self.num_classes = num_classes
        self.client_states: dict[int, dict[str, Any]] = {}

    # ---- model -----------------------------------------------------------------
    def wrap_model(self, model: nn.Module) -> nn.Module:
        """Return the model this algorithm trains (e.g. with a projection head)."""
        return model

    def bind_data(self, data: Any, dataset_fingerprint: str | None = None) -> None:
        """Called once by a run before training, with its ``FederatedData`` and dataset
        fingerprint: a strategy with side data keyed by dataset index (FedDifRC's cached
        diffusion features) loads and checks it here."""

    def bind_run(self, settings: TrainSettings, seed: int) -> None:
        """Called by the engine before :meth:`setup` (and before a checkpoint is restored)
        with the run's training settings and seed: a server step that trains (FedDDPM's
        calibration) takes its optimiser defaults and random streams from here."""

    # ---- server ----------------------------------------------------------------
    def setup(self, global_model: nn.Module) -> None:
        """Initialise server state from the initial global model."""

    def params_down(self, global_model: nn.Module, client_id: int) -> int:
        """Number of parameters the server sends to ``client_id`` this round."""
        return count_params(global_model.state_dict())

    def aggregate(self, global_model: nn.Module, updates: list[ClientUpdate], round: int) -> None:
        """Replace the global weights by the sample-weighted mean of the uploads."""
        weights = [float(u.num_samples) for u in updates]
        new_state = weighted_average([u.weights for u in updates], weights)
        global_model.load_state_dict(new_state)

    def evaluation_models(
        self, global_model: nn.Module, scratch: nn.Module
    ) -> Iterator[tuple[int, nn.Module]] | None:
        """The models the engine tests each round: ``None`` for the global model alone.

        A method whose clients keep part of the model (FedBN's batch norm) returns an
        iterator of ``(client, model)`` over every client, each client's own model
        loaded into ``scratch`` (a copy of the global model the engine lends, valid
        until the next item). :mod:`feddiff.fl.evaluation` then tests each client on
        its domains' test splits and weights the results (its module docstring).
        """
        return None

    def round_metrics(self) -> dict[str, Any]:
        """Extra columns for this round's row of ``metrics.csv`` (asked after :meth:`aggregate`)."""
        return {}

    # ---- client ----------------------------------------------------------------
    def configure_client(self, ctx: LocalContext) -> None:
        """Prepare the local model (already holding the global weights) for training."""

    def loss(
        self,
        ctx: LocalContext,
        x: torch.Tensor,
        y: torch.Tensor,
        features: torch.Tensor,
        logits: torch.Tensor,
    ) -> torch.Tensor:
        """Local objective for one batch; the default is plain cross-entropy."""
        return F.cross_entropy(logits, y)

    def before_step(self, ctx: LocalContext) -> None:
        """Called after ``backward`` and before the optimizer step."""

    def vectorized_loss(
        self,
        loss: torch.Tensor,
        params: Mapping[str, torch.Tensor],
        global_params: Mapping[str, torch.Tensor],
    ) -> torch.Tensor:
        """The vectorised path's objective from one client's batch cross-entropy ``loss``.

        A pure function of the client's ``params`` and the round's ``global_params``
        (run under ``torch.func.vmap``); it must equal what :meth:`loss` gives.
        """
        return loss

    def finish_client(self, ctx: LocalContext) -> ClientUpdate:
        """Package the local model for upload."""
        weights = {k: v.detach().clone() for k, v in ctx.model.state_dict().items()}
        return ClientUpdate(
            client_id=ctx.client_id,
            num_samples=ctx.num_samples,
            num_steps=ctx.num_steps,
            weights=weights,
            params_up=count_params(weights),
        )

    # ---- checkpointing -----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Server and per-client state, for the checkpoint."""
        return {"client_states": self.client_states}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.client_states = dict(state.get("client_states", {}))


_REGISTERED: dict[str, type[Strategy]] = {}


def register(name: str) -> Callable[[type[Strategy]], type[Strategy]]:
    """Class decorator naming the algorithm of registry row ``name``.

    The class must be defined in the row's module; it gets the row's ``Params``.
    """

    def deco(cls: type[Strategy]) -> type[Strategy]:
        entry = strategy_entry(name)
        if cls.__module__ != entry.module:
            raise ValueError(
                f"strategy {name!r} is registered to {entry.module}, not {cls.__module__}"
            )
        if name in _REGISTERED:
            raise ValueError(f"strategy {name!r} registered twice")
        cls.name = name
        cls.Params = entry.params
        _REGISTERED[name] = cls
        return cls

    return deco


def strategy_class(name: str) -> type[Strategy]:
    """The algorithm registered as ``name``, importing its module on first use.

    A dynamic import by design: the registry table names modules, so building one
    strategy loads that algorithm (and what it imports) only.
    """
    module = strategy_entry(name).module
    if name not in _REGISTERED:
        importlib.import_module(module)
    if name not in _REGISTERED:
        raise ValueError(
            f"strategy {name!r}: {module} defines no class decorated with @register({name!r})"
        )
    return _REGISTERED[name]


def build_strategy(method: Mapping[str, Any], num_clients: int, num_classes: int) -> Strategy:
    """Instantiate the strategy named by ``method["strategy"]`` with its hyperparameters."""
    params = method_params(method)  # checks the name and the values first
    cls = strategy_class(str(method["strategy"]))
    return cls(params, num_clients=num_clients, num_classes=num_classes)
