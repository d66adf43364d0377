"""FedNova (Wang et al., 2020, "Tackling the Objective Inconsistency Problem in
Heterogeneous Federated Optimization"): normalised averaging.

FedAvg weights a client's model change by its data share p_i, but a client that takes
more local steps tau_i also moves further, so the global model drifts towards the
optimum of a surrogate objective weighted by p_i * tau_i (the paper's objective
inconsistency). FedNova divides each change by the client's amount of local progress
a_i before averaging, then rescales by the effective step count (the paper's
generalised update rule, with FedNova's choice w_i = p_i)::

    d_i     = (w_t - w_i) / a_i
    tau_eff = sum_i p_i a_i
    w_t+1   = w_t - tau_eff * sum_i p_i d_i

With local SGD momentum rho (no dampening, no Nesterov: the engine's optimizer) the
accumulated step weights are a_i = sum_{t=1..tau} (1 - rho^t) / (1 - rho), i.e.
``||a_i||_1 = (tau - rho (1 - rho^tau) / (1 - rho)) / (1 - rho)`` (the paper's
local-momentum example; ``a_i = tau_i`` for plain SGD). This is exactly the quantity
the reference implementation accumulates step by step (JYWa/FedNova,
``distoptim/FedNova.py``: ``local_counter = local_counter * momentum + 1``, summed).
When every client takes the same number of steps, tau_eff = a and the update is
FedAvg's.

Documented choices:

* Weight decay: the engine's SGD adds ``weight_decay * w`` to the gradient before the
  momentum buffer, as the reference does; the decay is part of the local gradient
  that ``d_i`` averages and does not change ``a_i`` (the reference's normaliser ignores
  it too).
* Which tensors are normalised: parameters. The reference averages only the
  optimizer's parameters and leaves buffers on each worker; with one global model we
  give batch norm running statistics FedAvg's plain sample-weighted average (integer
  buffers from the heaviest client, see :func:`~feddiff.fl.aggregation.weighted_average`).
* ``a_i`` is computed by the client (it knows its steps and momentum) and uploaded in
  ``ClientUpdate.extras``; like ``num_samples`` it is one scalar and is not counted in
  ``params_up``.
* ``gmf`` is the reference's global (server) momentum factor, default 0 as in its
  training script. The reference keeps ``buf = gmf * buf + cum / lr`` and steps
  ``w -= lr * buf``; with a constant client lr (ours) that is :class:`ServerMomentum`
  with ``beta = gmf`` and server lr 1 on the FedNova change, which is what we run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from feddiff.fl.aggregation import effective_steps, weighted_average
from feddiff.fl.strategies.fedavgm import ServerMomentum, apply_server_step, parameter_names
from feddiff.fl.strategies.fednova_params import FedNovaParams
from feddiff.fl.strategy import ClientUpdate, LocalContext, Strategy, register

EXTRA_KEY = "fednova_a"


def normaliser(num_steps: int, momentum: float) -> float:
    """``||a_i||_1`` for ``num_steps`` of SGD with heavy-ball ``momentum`` (rho)."""
    return effective_steps(num_steps, momentum)


@register("fednova")
class FedNova(Strategy):
    """Averaging of per-step (normalised) client changes, rescaled by tau_eff."""

    vectorizable = True  # client side is FedAvg's; finish_client only reads num_steps

    def __init__(self, params: FedNovaParams, num_clients: int, num_classes: int) -> None:
        super().__init__(params, num_clients, num_classes)
        self.server = ServerMomentum(params.gmf, 1.0)

    def finish_client(self, ctx: LocalContext) -> ClientUpdate:
        update = super().finish_client(ctx)
        update.extras[EXTRA_KEY] = normaliser(ctx.num_steps, ctx.settings.momentum)
        return update

    def aggregate(self, global_model: nn.Module, updates: list[ClientUpdate], round: int) -> None:
        samples = [float(u.num_samples) for u in updates]
        averaged = weighted_average([u.weights for u in updates], samples)  # buffers' rule
        total = sum(samples)
        p = [n / total for n in samples]
        a = [_normaliser_of(u) for u in updates]
        tau_eff = sum(pi * ai for pi, ai in zip(p, a))
        current = global_model.state_dict()
        delta: dict[str, torch.Tensor] = {}
        for key in parameter_names(global_model):
            ref = current[key]
            wide = torch.float64 if ref.dtype == torch.float64 else torch.float32
            acc = torch.zeros_like(ref, dtype=wide)
            for u, pi, ai in zip(updates, p, a):
                if ai > 0:  # a client that took no step did not move: d_i = 0
                    acc.add_((ref - u.weights[key].to(ref.device)).to(acc.dtype), alpha=pi / ai)
            delta[key] = acc.mul_(tau_eff).to(ref.dtype)
        apply_server_step(global_model, averaged, delta, self.server)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "server_momentum": self.server.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.server.load_state_dict(state.get("server_momentum", {}))


def _normaliser_of(update: ClientUpdate) -> float:
    if EXTRA_KEY not in update.extras:
        raise ValueError(
            f"fednova: client {update.client_id}'s update has no {EXTRA_KEY!r}; "
            "it must come from FedNova.finish_client"
        )
    return float(update.extras[EXTRA_KEY])
