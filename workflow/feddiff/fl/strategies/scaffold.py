"""SCAFFOLD (Karimireddy et al., ICML 2020): control variates against client drift.

Algorithm 1 of the paper, with c the server and c_i the client control variates:

* local step: y_i <- y_i - eta_l (g_i(y_i) + c - c_i), done here by adding ``c - c_i``
  to the gradient after ``backward``;
* option II: c_i+ = c_i - c + (x - y_i) / (K eta_l), with K the client's local steps
  and eta_l = ``training.lr`` (K becomes the momentum-aware effective step count, below);
* server: x <- x + eta_g mean_i(y_i - x) and c <- c + |S|/N mean_i(c_i+ - c_i).

Choices and differences from the paper and common reference code (NIID-Bench):

* The model average is the paper's plain mean over the participants, not FedAvg's
  sample-weighted one; with unequal client sizes SCAFFOLD with c = c_i = 0 is thus not
  FedAvg. Batch-norm running statistics are not optimisation variables: they get no
  control variate and are set to the plain mean of the uploads (``global_lr`` is not
  applied to them).
* Control variates cover exactly the model's parameters (all trainable in the engine).
* The correction enters the gradient before ``optimizer.step``, so with momentum it
  also enters the momentum buffer (NIID-Bench subtracts ``lr (c - c_i)`` after the
  step instead). Option II divides the drift by ``a(K, rho) * lr``, where
  ``a`` (:func:`~feddiff.fl.aggregation.effective_steps`) is the number of plain-SGD
  steps that K heavy-ball steps with momentum rho amount to; the paper's K is the
  rho = 0 case. Dividing by ``K * lr`` under momentum 0.9, as NIID-Bench does,
  overestimates c_i about tenfold and diverged on the digits default within 15 rounds.
* A client with no local steps (an empty client) keeps c_i and uploads delta c_i = 0.
* Communication: the server sends the model and c, a client returns its model and
  delta c_i = c_i+ - c_i, so both directions carry one extra copy of the parameters.
* c lives on the CPU and c_i on the CPU for clients that have participated; both are
  in :meth:`state_dict`, so a resumed run continues exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from feddiff.fl.aggregation import count_params, effective_steps, weighted_average
from feddiff.fl.strategies.scaffold_params import ScaffoldParams
from feddiff.fl.strategy import ClientUpdate, LocalContext, Strategy, register

State = dict[str, torch.Tensor]


def _zeros_like_params(model: nn.Module) -> State:
    return {name: torch.zeros_like(p, device="cpu") for name, p in model.named_parameters()}


@register("scaffold")
class Scaffold(Strategy):
    """Stochastic controlled averaging with option II control-variate updates."""

    params: ScaffoldParams

    def __init__(self, params: ScaffoldParams, num_clients: int, num_classes: int) -> None:
        super().__init__(params, num_clients, num_classes)
        self.c: State = {}

    # ---- server ----------------------------------------------------------------
    def setup(self, global_model: nn.Module) -> None:
        self.c = _zeros_like_params(global_model)

    def params_down(self, global_model: nn.Module, client_id: int) -> int:
        return count_params(global_model.state_dict()) + count_params(self.c)

    def aggregate(self, global_model: nn.Module, updates: list[ClientUpdate], round: int) -> None:
        mean = weighted_average([u.weights for u in updates], [1.0] * len(updates))
        x = global_model.state_dict()
        eta_g = self.params.global_lr
        new_state = {}
        for key, avg in mean.items():
            if key in self.c and eta_g != 1.0:
                new_state[key] = x[key] + eta_g * (avg - x[key])
            else:  # eta_g = 1 is the plain mean; buffers are always plainly averaged
                new_state[key] = avg
        global_model.load_state_dict(new_state)
        share = len(updates) / self.num_clients
        for name, c in self.c.items():  # new tensors: a saved state_dict stays as it was
            delta = torch.stack([u.extras["delta_c"][name] for u in updates]).mean(0)
            self.c[name] = c + share * delta

    # ---- client ----------------------------------------------------------------
    def _client_c(self, client_id: int) -> State:
        state = self.client_states.get(client_id)
        return (
            state["c"] if state is not None else {k: torch.zeros_like(v) for k, v in self.c.items()}
        )

    def configure_client(self, ctx: LocalContext) -> None:
        c_i = self._client_c(ctx.client_id)
        pairs = []
        for name, p in ctx.model.named_parameters():
            pairs.append((p, (self.c[name] - c_i[name]).to(p.device, p.dtype)))
        ctx.scratch["correction"] = pairs

    def before_step(self, ctx: LocalContext) -> None:
        for p, corr in ctx.scratch["correction"]:
            if p.grad is not None:
                p.grad.add_(corr)

    def finish_client(self, ctx: LocalContext) -> ClientUpdate:
        update = super().finish_client(ctx)
        c_i = self._client_c(ctx.client_id)
        x = dict(ctx.global_model.named_parameters())
        steps_lr = effective_steps(ctx.num_steps, ctx.settings.momentum) * ctx.settings.lr
        delta: State = {}
        for name, y in ctx.model.named_parameters():
            if ctx.num_steps == 0:
                delta[name] = torch.zeros_like(self.c[name])
            else:  # c_i+ - c_i = -c + (x - y_i) / (K eta_l)
                drift = (x[name].detach() - y.detach()).to("cpu")
                delta[name] = drift / steps_lr - self.c[name]
        self.client_states[ctx.client_id] = {"c": {k: c_i[k] + delta[k] for k in delta}}
        update.extras["delta_c"] = delta
        update.params_up += count_params(delta)
        return update

    # ---- checkpointing -------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"client_states": self.client_states, "c": self.c}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.c = {k: v.to("cpu") for k, v in state["c"].items()}
