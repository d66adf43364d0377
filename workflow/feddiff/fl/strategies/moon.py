"""MOON: model-contrastive federated learning (Li, He & Song, CVPR 2021).

Local training adds a contrastive term that pulls the representation ``z`` of the
local model towards the frozen global model's ``z_glob`` and pushes it away from the
client's previous local model's ``z_prev`` (paper Sec. 3, local objective)::

    l_con = -log( e^{sim(z, z_glob)/tau} / (e^{sim(z, z_glob)/tau} + e^{sim(z, z_prev)/tau}) )
    loss  = CE(logits, y) + mu * l_con

with ``sim`` the cosine similarity. Choices, relative to the paper and its reference
code (github.com/QinbinLi/MOON):

* Network (paper Sec. 3): base encoder -> projection head (Linear-ReLU-Linear to
  ``projection_dim``) -> output layer. As in the reference ``ModelFedCon`` the output
  layer sits on the projection ``z``, so the base model's own classifier is replaced by
  an identity; head and output layer are aggregated like the rest of the model.
* ``mu = 1``: the reference code's default and the paper's value for CIFAR-100 and
  Tiny-ImageNet; the paper tunes ``mu = 5`` for CIFAR-10 (set it in the config).
* A client with no previous local model yet (its first participation) uses the global
  model as the negative. Then both similarities are the same function of ``z``, so
  ``l_con = log 2`` with zero gradient (up to rounding): the same updates as the
  reference's first round, which has no negative and so a zero term. (For a client
  first sampled later, the reference contrasts with that client's never-trained,
  separately initialised network, an artefact we do not reproduce.)
* The frozen models are evaluated in eval mode (batch norm on running statistics) and
  without gradients, as in the reference code.
* The previous local model is kept per client on the CPU (one state dict per client
  that has participated, i.e. up to ``num_clients`` model copies in host memory) and
  goes into the checkpoint. The reference keeps one for every client (model buffer 1).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from feddiff.fl.strategies.moon_params import MoonParams
from feddiff.fl.strategy import ClientUpdate, LocalContext, Strategy, register


class ProjectedModel(nn.Module):
    """Base encoder, projection head and an output layer on the projection (MOON Sec. 3).

    ``forward`` returns ``(z, logits)``, so strategies see the projected representation
    as the features; ``feature_dim`` and ``classifier`` follow the model contract.
    """

    def __init__(self, base: nn.Module, projection_dim: int, num_classes: int) -> None:
        super().__init__()
        dim = int(base.feature_dim)
        self.encoder = copy.deepcopy(base)
        self.encoder.classifier = nn.Identity()  # the base forward then returns (h, h)
        self.projection = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, projection_dim)
        )
        self.classifier = nn.Linear(projection_dim, num_classes)
        self.feature_dim = projection_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, _ = self.encoder(x)
        z = self.projection(h)
        return z, self.classifier(z)


def model_contrastive_loss(
    z: torch.Tensor, z_glob: torch.Tensor, z_prev: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Batch mean of MOON's l_con: cross-entropy with the global model as the positive."""
    pos = F.cosine_similarity(z, z_glob, dim=1)
    neg = F.cosine_similarity(z, z_prev, dim=1)
    logits = torch.stack([pos, neg], dim=1) / temperature
    target = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
    return F.cross_entropy(logits, target)


@torch.no_grad()
def frozen_representation(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``z`` of a frozen model: eval mode, so its batch-norm statistics stay untouched."""
    was_training = model.training
    model.eval()
    try:
        z, _ = model(x)
    finally:
        model.train(was_training)
    return z


@register("moon")
class Moon(Strategy):
    """FedAvg aggregation with MOON's model-contrastive local objective."""

    params: MoonParams

    def __init__(self, params: MoonParams, num_clients: int, num_classes: int) -> None:
        super().__init__(params, num_clients, num_classes)
        self._prev_net: nn.Module | None = None  # reusable device copy for z_prev

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """Add the projection head; a model that already has one is returned as is."""
        if isinstance(model, ProjectedModel):
            return model
        return ProjectedModel(model, self.params.projection_dim, self.num_classes)

    def configure_client(self, ctx: LocalContext) -> None:
        state = self.client_states.get(ctx.client_id)
        ctx.scratch["prev"] = None
        if state is None:
            return
        if self._prev_net is None:
            self._prev_net = copy.deepcopy(ctx.model)
            for p in self._prev_net.parameters():
                p.requires_grad_(False)
                p.grad = None
        self._prev_net.load_state_dict(state["model"])
        ctx.scratch["prev"] = self._prev_net

    def loss(
        self,
        ctx: LocalContext,
        x: torch.Tensor,
        y: torch.Tensor,
        features: torch.Tensor,
        logits: torch.Tensor,
    ) -> torch.Tensor:
        z_glob = frozen_representation(ctx.global_model, x)
        prev = ctx.scratch["prev"]
        z_prev = z_glob if prev is None else frozen_representation(prev, x)
        con = model_contrastive_loss(features, z_glob, z_prev, self.params.temperature)
        return F.cross_entropy(logits, y) + self.params.mu * con

    def finish_client(self, ctx: LocalContext) -> ClientUpdate:
        update = super().finish_client(ctx)
        self.client_states[ctx.client_id] = {
            "model": {k: v.to("cpu", copy=True) for k, v in update.weights.items()}
        }
        return update
