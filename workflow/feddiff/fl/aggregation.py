"""Arithmetic on model states shared by the strategies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch


def count_params(state: Mapping[str, torch.Tensor]) -> int:
    """Floating-point values in a state: what a client or server actually transmits.

    Integer buffers such as batch norm's ``num_batches_tracked`` are bookkeeping and
    are not counted.
    """
    return int(sum(t.numel() for t in state.values() if torch.is_floating_point(t)))


def weighted_average(
    states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]
) -> dict[str, torch.Tensor]:
    """Weighted mean of floating tensors; integer buffers from the heaviest state.

    Weights are normalised here, so callers pass raw sample counts.
    """
    if not states:
        raise ValueError("weighted_average needs at least one state")
    if len(states) != len(weights):
        raise ValueError(f"{len(states)} states but {len(weights)} weights")
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("weights must sum to a positive number")
    heaviest = max(range(len(states)), key=lambda i: weights[i])
    out: dict[str, torch.Tensor] = {}
    for key, ref in states[0].items():
        if torch.is_floating_point(ref):
            acc = torch.zeros_like(
                ref, dtype=torch.float64 if ref.dtype == torch.float64 else torch.float32
            )
            for state, w in zip(states, weights):
                acc.add_(state[key].to(acc.dtype), alpha=w / total)
            out[key] = acc.to(ref.dtype)
        else:
            out[key] = states[heaviest][key].clone()
    return out


def effective_steps(num_steps: int, momentum: float) -> float:
    """How many plain-SGD steps ``num_steps`` heavy-ball steps amount to.

    Step t's gradient keeps being applied with weight rho^(s-t) at every later step s,
    so a constant gradient moves the weights by ``lr * a`` with
    a = sum_{t=1..tau} (1 - rho^t) / (1 - rho) = (tau - rho (1 - rho^tau) / (1 - rho)) / (1 - rho);
    a = tau when rho = 0. FedNova normalises client updates by it, and SCAFFOLD's
    option II uses it to turn a client's drift back into a gradient estimate.
    """
    tau, rho = int(num_steps), float(momentum)
    if rho == 0:
        return float(tau)
    return (tau - rho * (1 - rho**tau) / (1 - rho)) / (1 - rho)
