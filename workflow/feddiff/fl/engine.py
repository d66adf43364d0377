"""The simulation loop: sample clients, train locally, aggregate, evaluate, checkpoint."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from feddiff.errors import NonFiniteLossError
from feddiff.fl.checkpoint import checkpoint_due, load_checkpoint, save_checkpoint
from feddiff.fl.data import FederatedData, epoch_batches
from feddiff.fl.evaluation import EvalDomains, evaluate, evaluate_round
from feddiff.fl.sampling import client_generator, sample_clients
from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategy import ClientUpdate, LocalContext, Strategy
from feddiff.fl.vectorized import VectorizedTrainer, autocast_context, use_vectorized
from feddiff.utils.eager_optim import SGD

log = logging.getLogger(__name__)

__all__ = ["METRIC_COLUMNS", "RoundCallback", "evaluate", "run_federated", "train_client"]

METRIC_COLUMNS = [
    "round",
    "test_acc",
    "test_loss",
    "train_loss",
    "seconds",
    "params_up",
    "params_down",
]

RoundCallback = Callable[[int, dict[str, Any]], None]


def train_client(
    strategy: Strategy,
    local: nn.Module,
    global_model: nn.Module,
    data: FederatedData,
    client: int,
    round: int,
    seed: int,
    settings: TrainSettings,
) -> tuple[ClientUpdate, torch.Tensor, int]:
    """Local training of one client; returns its upload, summed batch loss and batch count."""
    local.load_state_dict(global_model.state_dict())
    for p in local.parameters():
        p.requires_grad_(True)
    local.train()
    channels_last = settings.channels_last and data.device.type == "cuda"
    if channels_last:
        local.to(memory_format=torch.channels_last)
    autocast = autocast_context(settings, data.device)
    ctx = LocalContext(
        client_id=client,
        round=round,
        model=local,
        global_model=global_model,
        num_samples=data.client_size(client),
        settings=settings,
    )
    strategy.configure_client(ctx)
    optimizer = SGD(  # torch.optim.SGD without the compiler import (feddiff.utils.eager_optim)
        [p for p in local.parameters() if p.requires_grad],
        lr=settings.lr,
        momentum=settings.momentum,
        weight_decay=settings.weight_decay,
    )
    gen = client_generator(seed, round, client, data.device)
    loss_sum = torch.zeros((), device=data.device)
    for _ in range(settings.local_epochs):
        for idx in epoch_batches(data.clients[client], settings.batch_size, gen):
            x, y = data.train_batch(idx, settings.augment, gen)
            ctx.batch_indices = idx
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast:
                features, logits = local(x)
                loss = strategy.loss(ctx, x, y, features, logits)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            strategy.before_step(ctx)
            optimizer.step()
            ctx.num_steps += 1
            loss_sum += loss.detach()
    # One host sync per client rather than per step.
    if not torch.isfinite(loss_sum):
        raise NonFiniteLossError(
            f"non-finite training loss in round {round}, client {client}; "
            "lower training.lr or check the method's hyperparameters"
        )
    return strategy.finish_client(ctx), loss_sum, ctx.num_steps


def run_federated(
    data: FederatedData,
    model: nn.Module,
    strategy: Strategy,
    settings: TrainSettings,
    seed: int,
    checkpoint_path: Path | None = None,
    fingerprint: str = "",
    on_round_end: RoundCallback | None = None,
    progress: bool = True,
    domains: EvalDomains | None = None,
) -> tuple[nn.Module, list[dict[str, Any]]]:
    """Run ``settings.rounds`` rounds of federated training; return the model and metrics.

    ``model`` must already be initialised (seeded) and on ``data.device``. With a
    ``checkpoint_path`` the run resumes from the last completed round it finds there.
    With ``domains`` (a multi-domain dataset) each row also has per-domain accuracies
    (:mod:`feddiff.fl.evaluation`, which also tests per-client models when the
    strategy has them).
    """
    num_clients = len(data.clients)
    global_model = strategy.wrap_model(model).to(data.device)
    strategy.bind_run(settings, seed)
    strategy.setup(global_model)
    rows: list[dict[str, Any]] = []
    start_round = 1
    if checkpoint_path is not None:
        ckpt = load_checkpoint(checkpoint_path, fingerprint)
        if ckpt is not None:
            global_model.load_state_dict(ckpt["model"])
            strategy.load_state_dict(ckpt["strategy"])
            rows = list(ckpt["metrics"])
            start_round = int(ckpt["round"]) + 1
            log.info("resuming from %s after round %d", checkpoint_path, ckpt["round"])
    local = copy.deepcopy(global_model)
    if settings.compile and data.device.type == "cuda":
        local.compile()
    # Clients trained together (feddiff.fl.vectorized) when the strategy allows.
    trainer = (
        VectorizedTrainer(global_model, strategy, settings, data.device)
        if use_vectorized(settings, strategy, global_model, data.device)
        else None
    )
    bar = tqdm(
        range(start_round, settings.rounds + 1),
        desc=f"{strategy.name} rounds",
        initial=start_round - 1,
        total=settings.rounds,
        disable=not progress,
    )
    for rnd in bar:
        tic = time.perf_counter()
        selected = sample_clients(seed, rnd, num_clients, settings.clients_per_round)
        updates: list[ClientUpdate] = []
        params_down = 0
        loss_total = torch.zeros((), device=data.device)
        steps_total = 0
        if trainer is not None and trainer.supports_round(data, selected):
            params_down = sum(strategy.params_down(global_model, c) for c in selected)
            updates, client_losses, client_steps = trainer.train_round(
                global_model, data, selected, rnd, seed
            )
            # One host sync per round for the NaN check.
            if not bool(torch.isfinite(client_losses).all()):
                bad = selected[int((~torch.isfinite(client_losses)).nonzero()[0, 0])]
                raise NonFiniteLossError(
                    f"non-finite training loss in round {rnd}, client {bad}; "
                    "lower training.lr or check the method's hyperparameters"
                )
            for loss_sum in client_losses:
                loss_total += loss_sum
            steps_total = sum(client_steps)
        else:
            for client in selected:
                params_down += strategy.params_down(global_model, client)
                update, loss_sum, steps = train_client(
                    strategy, local, global_model, data, client, rnd, seed, settings
                )
                updates.append(update)
                loss_total += loss_sum
                steps_total += steps
        strategy.aggregate(global_model, updates, rnd)
        scores = evaluate_round(
            strategy, global_model, local, data, domains, settings.eval_batch_size, settings
        )
        acc = scores.pop("test_acc")
        row = {
            "round": rnd,
            "test_acc": acc,
            "test_loss": scores.pop("test_loss"),
            "train_loss": float(loss_total) / max(steps_total, 1),
            "seconds": time.perf_counter() - tic,
            "params_up": sum(u.params_up for u in updates),
            "params_down": params_down,
            **scores,
            **strategy.round_metrics(),
        }
        rows.append(row)
        bar.set_postfix(acc=f"{acc:.4f}", loss=f"{row['train_loss']:.3f}")
        if checkpoint_path is not None and checkpoint_due(
            rnd, settings.checkpoint_every, settings.rounds
        ):
            save_checkpoint(
                checkpoint_path,
                {
                    "fingerprint": fingerprint,
                    "round": rnd,
                    "model": global_model.state_dict(),
                    "strategy": strategy.state_dict(),
                    "metrics": rows,
                },
            )
        if on_round_end is not None:
            on_round_end(rnd, row)
    return global_model, rows
