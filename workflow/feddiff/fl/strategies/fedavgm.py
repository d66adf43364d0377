"""FedAvgM (Hsu et al., 2019, "Measuring the Effects of Non-Identical Data
Distribution for Federated Visual Classification", the FedAvgM server update).

The server treats the round's model change as a pseudo-gradient and applies heavy-ball
momentum to it::

    delta = w_t - sum_i p_i w_i        (p_i = n_i / sum_j n_j over the sampled clients)
    v     = beta * v + delta
    w_t+1 = w_t - server_lr * v

Momentum smooths the global trajectory when each round's sampled clients pull in
different directions (non-IID data). With ``beta = 0`` and ``server_lr = 1`` this is
FedAvg.

Which tensors get momentum: the *parameters* only. Batch norm running statistics (and
any other float buffer) take the plain sample-weighted average, as in FedAvg, and
integer buffers (``num_batches_tracked``) come from the average's rule (heaviest
client). Running statistics are estimates of activation moments, not optimisation
variables; extrapolating them with momentum (or ``server_lr > 1``) can drive
``running_var`` negative. This matches common PyTorch server-optimizer implementations
(e.g. FedML's FedOpt), which put the pseudo-gradient on ``model.parameters()`` and copy
the averaged buffers.

The velocity ``v`` is server state: it is in :meth:`FedAvgM.state_dict`, so a resumed
run continues exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from feddiff.fl.aggregation import weighted_average
from feddiff.fl.strategies.fedavgm_params import FedAvgMParams
from feddiff.fl.strategy import ClientUpdate, Strategy, register


def parameter_names(model: nn.Module) -> list[str]:
    """State-dict keys that are parameters (tied aliases included), not buffers."""
    return [name for name, _ in model.named_parameters(remove_duplicate=False)]


class ServerMomentum:
    """Heavy-ball SGD on a server pseudo-gradient: ``v = beta v + delta; w = w - lr v``.

    Shared by FedAvgM and FedNova's global momentum (``gmf``). With ``beta = 0`` no
    buffer is kept, so there is nothing to checkpoint.
    """

    def __init__(self, beta: float, lr: float) -> None:
        self.beta = beta
        self.lr = lr
        self.buffers: dict[str, torch.Tensor] = {}

    def step(
        self, current: Mapping[str, torch.Tensor], delta: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """New values ``current[k] - lr * v[k]`` for every key of ``delta``."""
        out: dict[str, torch.Tensor] = {}
        for name, d in delta.items():
            if self.beta > 0:
                v = self.buffers.get(name)
                # v starts at 0, so the first round's velocity is delta itself.
                v = d.clone() if v is None else v.to(d.device).mul_(self.beta).add_(d)
                self.buffers[name] = v
            else:
                v = d
            out[name] = current[name] - self.lr * v
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.buffers.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        # Moved to the model's device on the next step.
        self.buffers = {k: v.clone() for k, v in state.items()}


def apply_server_step(
    global_model: nn.Module,
    averaged: Mapping[str, torch.Tensor],
    delta: Mapping[str, torch.Tensor],
    server: ServerMomentum,
) -> None:
    """Load ``averaged`` into the model, with parameters replaced by the momentum step."""
    current = global_model.state_dict()
    new_state = dict(averaged)
    new_state.update(server.step(current, delta))
    global_model.load_state_dict(new_state)


@register("fedavgm")
class FedAvgM(Strategy):
    """FedAvg whose server applies momentum to the averaged model change."""

    vectorizable = True  # client side is FedAvg's

    def __init__(self, params: FedAvgMParams, num_clients: int, num_classes: int) -> None:
        super().__init__(params, num_clients, num_classes)
        self.server = ServerMomentum(params.server_momentum, params.server_lr)

    def aggregate(self, global_model: nn.Module, updates: list[ClientUpdate], round: int) -> None:
        samples = [float(u.num_samples) for u in updates]
        averaged = weighted_average([u.weights for u in updates], samples)
        current = global_model.state_dict()
        delta = {
            k: current[k] - averaged[k].to(current[k].device) for k in parameter_names(global_model)
        }
        apply_server_step(global_model, averaged, delta, self.server)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "server_momentum": self.server.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.server.load_state_dict(state.get("server_momentum", {}))
