"""FedProx (Li et al., 2020, "Federated Optimization in Heterogeneous Networks").

Each client minimises its local loss plus a proximal term that keeps it near the
round's global model (Li et al., 2020, Eq. 2, objective ``h_k``)::

    h_k(w; w_t) = F_k(w) + (mu / 2) * ||w - w_t||^2

so the term's gradient is ``mu * (w - w_t)``, a pull back towards ``w_t`` that limits
client drift under heterogeneous data. Aggregation is FedAvg's. With ``mu = 0`` the
objective, and hence every step, is FedAvg's exactly.

The norm runs over the trainable parameters only: batch norm's running statistics are
not optimisation variables, and frozen parameters do not move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from feddiff.fl.strategies.fedprox_params import FedProxParams
from feddiff.fl.strategy import LocalContext, Strategy, register


def proximal_term(
    params: Sequence[torch.Tensor], anchors: Sequence[torch.Tensor], mu: float
) -> torch.Tensor:
    """``(mu / 2) * sum ||w - w_t||^2`` over paired tensors; its gradient is ``mu (w - w_t)``."""
    if len(params) != len(anchors):
        raise ValueError(f"{len(params)} parameters but {len(anchors)} anchors")
    total = params[0].new_zeros(())
    for p, a in zip(params, anchors):
        total = total + (p - a).pow(2).sum()
    return 0.5 * mu * total


@register("fedprox")
class FedProx(Strategy):
    """FedAvg with the proximal term added to every local batch loss."""

    params: FedProxParams
    vectorizable = True

    def configure_client(self, ctx: LocalContext) -> None:
        """Pair each trainable local parameter with a detached copy of its global value.

        The anchor is taken from ``ctx.global_model`` by name (not from the local model),
        so it is ``w_t`` even if something changed the local weights before this hook.
        """
        global_params = dict(ctx.global_model.named_parameters())
        trainable = [(n, p) for n, p in ctx.model.named_parameters() if p.requires_grad]
        ctx.scratch["prox_params"] = [p for _, p in trainable]
        ctx.scratch["prox_anchors"] = [global_params[n].detach().clone() for n, _ in trainable]

    def loss(
        self,
        ctx: LocalContext,
        x: torch.Tensor,
        y: torch.Tensor,
        features: torch.Tensor,
        logits: torch.Tensor,
    ) -> torch.Tensor:
        ce = super().loss(ctx, x, y, features, logits)
        params = ctx.scratch["prox_params"]
        if not params:
            return ce
        return ce + proximal_term(params, ctx.scratch["prox_anchors"], self.params.mu)

    def vectorized_loss(
        self,
        loss: torch.Tensor,
        params: Mapping[str, torch.Tensor],
        global_params: Mapping[str, torch.Tensor],
    ) -> torch.Tensor:
        """The same objective with the client's parameters as a (vmapped) function argument."""
        names = list(params)
        if not names:
            return loss
        anchors = [global_params[n] for n in names]
        return loss + proximal_term([params[n] for n in names], anchors, self.params.mu)
