"""FedNH (Dai et al., AAAI 2023): fixed, uniformly spread class prototypes, smoothed.

The classifier is a set of unit-norm class prototypes mu_c; logits are
``scale * cos(h, mu_c)`` (a cosine classifier). Clients train the body with the
prototypes frozen, then upload, for each class c they hold, the direction of the mean
of their normalised features m_{i,c} = normalise(mean_{x in c} h(x)/|h(x)|) and the
class count n_{i,c}. The server infuses these class semantics into the prototypes
(the paper's server-side prototype update, ``FedNHServer.aggregate`` in the
reference code)::

    mu_c <- normalise( rho * mu_c + (1 - rho) * normalise( sum_i n_{i,c} m_{i,c} / sum_i n_{i,c} ) )

for every class some participant holds; the others keep their prototype. The body is
averaged as in FedAvg. Choices, relative to the reference code
(github.com/Yutong-Dai/FedNH):

* Initialisation: the reference's ``orthogonal`` head init (``orthogonal_`` on a
  random matrix), i.e. mutually orthogonal unit prototypes when classes <= feature
  dimension (rows renormalised otherwise). Drawn from torch's global RNG, which the run
  seeds before building the model, so it is reproducible per seed.
* ``scale = 30``, fixed: the reference's ``FedNH_fix_scaling`` value ("a common choice
  in the paper"); its default instead learns a scalar initialised at 1. A fixed scale
  keeps the whole classifier server-owned, and is a hyperparameter here.
* Client class means come from the normalised features of the batches of the client's
  last local epoch (train-mode forward passes while the body still moves), not from an
  extra eval-mode pass over the client's data after training as in the reference: the
  strategy hooks see no data outside the training batches. Epochs are told apart by
  counting samples (an epoch covers the client's indices, less at most one dropped
  trailing sample).
* The body is sample-weighted (the engine's FedAvg); the reference takes the plain mean.
  The reference's gradient clipping (norm 10) is not applied.
* Communication: the download is the whole model, prototypes included; the upload is
  the model without the frozen prototypes plus, per held class, a mean and a count.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from feddiff.fl.strategies.fednh_params import FedNHParams
from feddiff.fl.strategy import ClientUpdate, LocalContext, Strategy, register


def init_prototypes(num_classes: int, dim: int) -> torch.Tensor:
    """Unit-norm prototypes, mutually orthogonal when ``num_classes <= dim``."""
    weight = nn.init.orthogonal_(torch.empty(num_classes, dim))
    return F.normalize(weight, dim=1)


class CosineClassifierModel(nn.Module):
    """Base encoder with a bias-free cosine classifier whose weight rows are prototypes."""

    def __init__(self, base: nn.Module, num_classes: int, scale: float) -> None:
        super().__init__()
        dim = int(base.feature_dim)
        self.encoder = copy.deepcopy(base)
        self.encoder.classifier = nn.Identity()  # the base forward then returns (h, h)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        with torch.no_grad():
            self.classifier.weight.copy_(init_prototypes(num_classes, dim))
        self.feature_dim = dim
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, _ = self.encoder(x)
        cos = F.linear(F.normalize(h, dim=1), F.normalize(self.classifier.weight, dim=1))
        return h, self.scale * cos


def update_prototypes(
    prototypes: torch.Tensor,
    class_means: Sequence[torch.Tensor],
    class_counts: Sequence[torch.Tensor],
    smoothing: float,
) -> torch.Tensor:
    """FedNH's server prototype update; classes no client holds keep their prototype."""
    counts = torch.stack([c.to(prototypes) for c in class_counts]).sum(0)
    weighted = sum(
        m.to(prototypes) * c.to(prototypes)[:, None] for m, c in zip(class_means, class_counts)
    )
    avg = F.normalize(weighted / counts.clamp_min(1e-12)[:, None], dim=1)
    mixed = F.normalize(smoothing * prototypes + (1.0 - smoothing) * avg, dim=1)
    return torch.where((counts > 0)[:, None], mixed, prototypes)


@register("fednh")
class FedNH(Strategy):
    """Cosine classifier on server-owned prototypes, updated from client class means."""

    params: FedNHParams

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """Install the cosine classifier; a model that already has one is returned as is."""
        if isinstance(model, CosineClassifierModel):
            return model
        return CosineClassifierModel(model, self.num_classes, self.params.scale)

    def configure_client(self, ctx: LocalContext) -> None:
        weight = ctx.model.classifier.weight
        weight.requires_grad_(False)  # excluded from the optimizer: prototypes stay fixed
        ctx.scratch["seen"] = 0
        ctx.scratch["sums"] = torch.zeros_like(weight)
        ctx.scratch["counts"] = torch.zeros(weight.shape[0], device=weight.device)

    def loss(
        self,
        ctx: LocalContext,
        x: torch.Tensor,
        y: torch.Tensor,
        features: torch.Tensor,
        logits: torch.Tensor,
    ) -> torch.Tensor:
        self._accumulate(ctx, features.detach(), y)
        return F.cross_entropy(logits, y)

    def _accumulate(self, ctx: LocalContext, features: torch.Tensor, y: torch.Tensor) -> None:
        """Sum normalised features per class over the current epoch only."""
        s = ctx.scratch
        if s["seen"] >= max(ctx.num_samples - 1, 1):  # the previous epoch is complete
            s["seen"] = 0
            s["sums"].zero_()
            s["counts"].zero_()
        # a one-hot matmul rather than index_add_, which is nondeterministic on CUDA
        onehot = F.one_hot(y, s["sums"].shape[0]).to(s["sums"].dtype)
        s["sums"].add_(onehot.T @ F.normalize(features, dim=1).to(s["sums"].dtype))
        s["counts"].add_(onehot.sum(0).to(s["counts"].dtype))
        s["seen"] += int(y.numel())

    def finish_client(self, ctx: LocalContext) -> ClientUpdate:
        update = super().finish_client(ctx)
        counts = ctx.scratch["counts"]
        means = F.normalize(ctx.scratch["sums"], dim=1)  # unit directions; zero if unheld
        update.extras["class_means"] = means
        update.extras["class_counts"] = counts.clone()
        held = int((counts > 0).sum())
        prototypes = ctx.model.classifier.weight
        update.params_up = update.params_up - prototypes.numel() + held * (prototypes.shape[1] + 1)
        return update

    def aggregate(self, global_model: nn.Module, updates: list[ClientUpdate], round: int) -> None:
        prototypes = global_model.classifier.weight.detach().clone()
        super().aggregate(global_model, updates, round)  # body: sample-weighted mean
        new = update_prototypes(
            prototypes,
            [u.extras["class_means"] for u in updates],
            [u.extras["class_counts"] for u in updates],
            self.params.smoothing,
        )
        with torch.no_grad():
            global_model.classifier.weight.copy_(new)
