"""Test-split evaluation of a round: the global model or the clients' own models, per domain.

Two cases, chosen by the strategy (:meth:`Strategy.evaluation_models`):

* **One global model** (FedAvg and most methods): ``test_acc``/``test_loss`` over the
  whole test split; on a multi-domain dataset also ``test_acc_<domain>`` on each
  domain's test split, from the same single pass.
* **Per-client models** (FedBN: each client keeps its own batch norm): every client's
  model is tested on the test split of each domain it holds. Rule (FedBN's
  evaluation, Li et al. 2021, weighted by data): a domain's accuracy is the mean of its
  clients' accuracies on that domain's test split, weighted by how many *training*
  samples of that domain each client holds (so with a ``domain`` partition: the
  sample-weighted mean over the domain's clients). ``test_acc`` is then the mean of the
  domain accuracies weighted by the domains' test sizes (every test sample judged by
  its own domain's clients), ``test_loss`` likewise. On a single-domain dataset the
  whole test split is one domain, so ``test_acc`` is the sample-weighted mean over all
  clients. Every client is tested, including clients that have not taken part yet
  (with the state they would start from), so the numbers do not depend on sampling;
  the price is one test pass per client and round over the client's domains.
  A domain no client holds has no per-client model: its column is NaN and it is left
  out of ``test_acc`` and of the domain mean.

``test_acc_domain_mean`` is the unweighted mean over domains (column names:
:mod:`feddiff.fl.domain_columns`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from feddiff.fl.data import FederatedData
from feddiff.fl.domain_columns import DOMAIN_MEAN, check_domain_names, domain_column
from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategy import Strategy
from feddiff.fl.vectorized import autocast_context


@dataclass
class EvalDomains:
    """The domain of every test sample and each client's training samples per domain."""

    names: list[str]
    #: (n_test,) long, on the data's device: domain index of each test sample.
    test: torch.Tensor
    #: (num_clients, num_domains) float64 on the CPU: training samples per client and domain.
    client_weights: torch.Tensor

    @classmethod
    def from_arrays(
        cls,
        names: Sequence[str],
        domain_train: np.ndarray,
        domain_test: np.ndarray,
        clients: Sequence[np.ndarray],
        device: torch.device,
    ) -> EvalDomains:
        names = [str(n) for n in names]
        check_domain_names(names)
        d_train = np.asarray(domain_train, dtype=np.int64)
        weights = np.stack(
            [
                np.bincount(d_train[np.asarray(c, dtype=np.int64)], minlength=len(names))
                for c in clients
            ]
        ).astype(np.float64)
        return cls(
            names,
            torch.as_tensor(np.asarray(domain_test, dtype=np.int64), device=device),
            torch.from_numpy(weights),
        )

    @classmethod
    def whole(cls, data: FederatedData) -> EvalDomains:
        """The whole test split as one domain (per-client evaluation of single-domain data)."""
        sizes = torch.tensor([[float(c.numel())] for c in data.clients], dtype=torch.float64)
        return cls(
            ["all"], torch.zeros(data.y_test.numel(), dtype=torch.long, device=data.device), sizes
        )

    @property
    def num_domains(self) -> int:
        return len(self.names)


@torch.no_grad()
def per_sample(
    model: nn.Module,
    data: FederatedData,
    batch_size: int,
    settings: TrainSettings | None = None,
    index: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Correctness (float 0/1) and cross-entropy of each test sample (all, or ``index``)."""
    model.eval()
    n = data.y_test.numel() if index is None else index.numel()
    correct = torch.empty(n, device=data.device)
    losses = torch.empty(n, device=data.device)
    channels_last = settings is not None and settings.channels_last and data.device.type == "cuda"
    autocast = autocast_context(settings or TrainSettings(), data.device)
    for start in range(0, n, batch_size):
        sl = slice(start, min(start + batch_size, n))
        rows = torch.arange(sl.start, sl.stop, device=data.device) if index is None else index[sl]
        x, y = data.normalize(data.x_test[rows]), data.y_test[rows]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast:
            _, logits = model(x)
        losses[sl] = F.cross_entropy(logits.float(), y, reduction="none")
        correct[sl] = (logits.argmax(1) == y).float()
    return correct, losses


@torch.no_grad()
def evaluate(
    model: nn.Module, data: FederatedData, batch_size: int, settings: TrainSettings | None = None
) -> tuple[float, float]:
    """Test accuracy (fraction) and mean cross-entropy of ``model`` on the whole test split.

    The two sums stay on the device and come back in one host sync; ``settings`` adds
    bf16 autocast / channels-last on CUDA.
    """
    model.eval()
    correct = torch.zeros((), device=data.device)
    loss_sum = torch.zeros((), device=data.device)
    channels_last = settings is not None and settings.channels_last and data.device.type == "cuda"
    autocast = autocast_context(settings or TrainSettings(), data.device)
    for x, y in data.test_batches(batch_size):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast:
            _, logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    n = data.y_test.numel()
    correct_f, loss_f = torch.stack([correct, loss_sum]).tolist()
    return correct_f / n, loss_f / n


def _by_domain(values: torch.Tensor, domains: torch.Tensor, count: int) -> torch.Tensor:
    return torch.zeros(count, dtype=torch.float64, device=values.device).index_add_(
        0, domains, values.double()
    )


def _columns(names: Sequence[str], acc: Sequence[float]) -> dict[str, float]:
    row = {domain_column(n): a for n, a in zip(names, acc)}
    covered = [a for a in acc if not math.isnan(a)]
    row[DOMAIN_MEAN] = sum(covered) / len(covered) if covered else math.nan
    return row


def _global(
    model: nn.Module,
    data: FederatedData,
    domains: EvalDomains,
    batch_size: int,
    settings: TrainSettings | None,
) -> dict[str, float]:
    correct, losses = per_sample(model, data, batch_size, settings)
    d = domains.num_domains
    sizes = _by_domain(torch.ones_like(correct), domains.test, d)
    sums = torch.cat(
        [
            _by_domain(correct, domains.test, d),
            sizes,
            torch.stack([correct.sum().double(), losses.sum().double()]),
        ]
    ).tolist()
    n = correct.numel()
    acc = [c / s if s else math.nan for c, s in zip(sums[:d], sums[d : 2 * d])]
    return {"test_acc": sums[-2] / n, "test_loss": sums[-1] / n, **_columns(domains.names, acc)}


def _per_client(
    models: Iterator[tuple[int, nn.Module]],
    data: FederatedData,
    domains: EvalDomains,
    batch_size: int,
    settings: TrainSettings | None,
) -> dict[str, float]:
    d = domains.num_domains
    members = [torch.nonzero(domains.test == k).flatten() for k in range(d)]
    sizes = torch.tensor([float(m.numel()) for m in members], dtype=torch.float64)
    acc_num = torch.zeros(d, dtype=torch.float64)
    loss_num = torch.zeros(d, dtype=torch.float64)
    den = torch.zeros(d, dtype=torch.float64)
    for client, model in models:
        weights = domains.client_weights[client]
        held = [k for k in range(d) if weights[k] > 0 and sizes[k] > 0]
        if not held:
            continue
        index = torch.cat([members[k] for k in held])
        correct, losses = per_sample(model, data, batch_size, settings, index)
        dom = domains.test[index]
        sums = torch.stack([_by_domain(correct, dom, d), _by_domain(losses, dom, d)]).cpu()
        for k in held:
            acc_num[k] += weights[k] * sums[0, k] / sizes[k]
            loss_num[k] += weights[k] * sums[1, k] / sizes[k]
            den[k] += weights[k]
    covered = den > 0
    if not bool(covered.any()):
        raise ValueError("per-client evaluation: no client holds any domain with test samples")
    acc = torch.where(covered, acc_num / den.clamp_min(1e-300), torch.full_like(den, math.nan))
    loss = torch.where(covered, loss_num / den.clamp_min(1e-300), torch.full_like(den, math.nan))
    total = float(sizes[covered].sum())
    return {
        "test_acc": float((acc[covered] * sizes[covered]).sum()) / total,
        "test_loss": float((loss[covered] * sizes[covered]).sum()) / total,
        **_columns(domains.names, acc.tolist()),
    }


def evaluate_round(
    strategy: Strategy,
    global_model: nn.Module,
    scratch: nn.Module,
    data: FederatedData,
    domains: EvalDomains | None,
    batch_size: int,
    settings: TrainSettings | None = None,
) -> dict[str, float]:
    """This round's ``test_acc``, ``test_loss`` and, with ``domains``, per-domain columns.

    ``scratch`` is a model of the global model's architecture that a per-client
    strategy may overwrite (the engine lends its local-training copy).
    """
    models = strategy.evaluation_models(global_model, scratch)
    if models is None:
        if domains is None:
            acc, loss = evaluate(global_model, data, batch_size, settings)
            return {"test_acc": acc, "test_loss": loss}
        return _global(global_model, data, domains, batch_size, settings)
    row = _per_client(models, data, domains or EvalDomains.whole(data), batch_size, settings)
    if domains is None:  # single-domain data: no per-domain columns
        return {"test_acc": row["test_acc"], "test_loss": row["test_loss"]}
    return row
