"""An independent replay of federated training in plain torch, for the engine-level tests.

Nothing here imports ``feddiff``: client sampling, batch order, the local SGD step
(momentum, weight decay) and every method's extra terms are written out again from the
papers' formulas and the engine's documented seeding contract (``feddiff.fl.sampling``:
every stream is derived from (seed, round[, client]) with numpy's SeedSequence), so a
test comparing the engine with this replay fails when either the algorithm or the
engine's wiring of it changes.

The model is :class:`TinyNet` (a tanh MLP on 4x4 images) in float64, so differences of
1e-9 are real and not rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import nn

Params = dict[str, torch.Tensor]
LossFn = Callable[[Params, torch.Tensor, torch.Tensor], torch.Tensor]


class TinyNet(nn.Module):
    """``body`` (16 -> hidden, tanh) then ``classifier``; returns (features, logits), float64.

    It follows the model contract (``feature_dim``, a ``classifier`` attribute) so MOON and
    FedNH can wrap it; the input is cast to the weights' dtype.
    """

    def __init__(self, hidden: int = 5, num_classes: int = 4, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Linear(16, hidden)
        self.classifier = nn.Linear(hidden, num_classes)
        self.feature_dim = hidden
        self.double()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.body(x.flatten(1).to(self.body.weight.dtype)))
        return h, self.classifier(h)


# ---- forwards of the wrapped models, from their named parameters ----------------------
def tiny_features(p: Mapping[str, torch.Tensor], x: torch.Tensor, prefix: str = "") -> torch.Tensor:
    return torch.tanh(x @ p[prefix + "body.weight"].T + p[prefix + "body.bias"])


def tiny_forward(
    p: Mapping[str, torch.Tensor], x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    h = tiny_features(p, x)
    return h, h @ p["classifier.weight"].T + p["classifier.bias"]


def moon_forward(
    p: Mapping[str, torch.Tensor], x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """MOON's network: encoder, projection head Linear-ReLU-Linear, output layer on z."""
    h = tiny_features(p, x, "encoder.")
    z = torch.relu(h @ p["projection.0.weight"].T + p["projection.0.bias"])
    z = z @ p["projection.2.weight"].T + p["projection.2.bias"]
    return z, z @ p["classifier.weight"].T + p["classifier.bias"]


def cosine_forward(
    p: Mapping[str, torch.Tensor], x: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """FedNH's network: encoder features h, logits scale * cos(h, prototype)."""
    h = tiny_features(p, x, "encoder.")
    w = p["classifier.weight"]
    cos = (h / h.norm(dim=1, keepdim=True)) @ (w / w.norm(dim=1, keepdim=True)).T
    return h, scale * cos


# ---- seeding contract ------------------------------------------------------------------
def derived_seed(*coords: int) -> int:
    words = np.random.SeedSequence([int(c) for c in coords]).generate_state(2, dtype=np.uint32)
    return ((int(words[0]) << 31) ^ int(words[1])) & ((1 << 63) - 1)


def sampled(seed: int, rnd: int, num_clients: int, per_round: int) -> list[int]:
    """The clients of round ``rnd``: uniform without replacement, sorted."""
    rng = np.random.default_rng(derived_seed(seed, rnd, 0x5A))
    return sorted(int(c) for c in rng.choice(num_clients, size=per_round, replace=False))


def client_batches(
    seed: int, rnd: int, client: int, indices: torch.Tensor, batch_size: int, epochs: int
) -> list[list[torch.Tensor]]:
    """Per epoch, the client's shuffled index batches; a trailing single sample is dropped."""
    gen = torch.Generator().manual_seed(derived_seed(seed, rnd, client, 0xC1))
    out = []
    for _ in range(epochs):
        perm = indices[torch.randperm(indices.numel(), generator=gen)]
        batches = [perm[i : i + batch_size] for i in range(0, perm.numel(), batch_size)]
        if len(batches) > 1 and batches[-1].numel() == 1:
            batches.pop()
        out.append(batches)
    return out


# ---- local training -------------------------------------------------------------------
def local_sgd(
    start: Mapping[str, torch.Tensor],
    epochs: list[list[torch.Tensor]],
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    lr: float,
    momentum: float,
    weight_decay: float,
    frozen: tuple[str, ...] = (),
    correction: Mapping[str, torch.Tensor] | None = None,
    on_batch: Callable[[int, Params, torch.Tensor, torch.Tensor], None] | None = None,
) -> tuple[Params, int, float]:
    """Heavy-ball SGD (buf = g on the first step, then rho buf + g; g = grad + wd w + correction).

    Returns the final parameters, the number of steps and the sum of the batch losses.
    ``on_batch(epoch, params, xb, yb)`` sees the parameters before each step.
    """
    p = {k: v.detach().clone() for k, v in start.items()}
    bufs: Params = {}
    steps, loss_sum = 0, 0.0
    for e, batches in enumerate(epochs):
        for idx in batches:
            xb, yb = x[idx], y[idx]
            if on_batch is not None:
                on_batch(e, p, xb, yb)
            live = {k: v.clone().requires_grad_(k not in frozen) for k, v in p.items()}
            loss = loss_fn(live, xb, yb)
            names = [k for k in live if k not in frozen]
            grads = torch.autograd.grad(loss, [live[k] for k in names])
            for k, g in zip(names, grads):
                g = g + weight_decay * p[k]
                if correction is not None:
                    g = g + correction[k]
                bufs[k] = g if k not in bufs else momentum * bufs[k] + g
                p[k] = p[k] - lr * bufs[k]
            steps += 1
            loss_sum += float(loss.detach())
    return p, steps, loss_sum


def effective_steps(steps: int, momentum: float) -> float:
    """sum_{t=1..K} (1 - rho^t) / (1 - rho): how far K heavy-ball steps move under a constant
    gradient."""
    return float(sum(sum(momentum**j for j in range(t)) for t in range(1, steps + 1)))


def sample_weighted(states: list[Params], counts: list[int]) -> Params:
    total = float(sum(counts))
    return {k: sum(s[k] * (n / total) for s, n in zip(states, counts)) for k in states[0]}
