"""The federated DDPM loop: sample clients, train locally, average part-wise, account.

One loop serves every mode (:mod:`feddiff.diffusion.modes`): a mode only says what
each client uploads and receives. The server averages each part over the clients
that uploaded it, weighted by their sample counts; a part nobody uploaded keeps its
value. Parts a mode keeps private are stored per client on the CPU, put back into the
client's model at the start of each of its rounds, and checkpointed with the run.

Extension point: ``hooks`` are objects with ``after_aggregate(global_unet, round) ->
dict``, called once per round right after aggregation; the dict is merged into that
round's metrics row. A server-side step (e.g. FedDDPM's calibration on auxiliary
data) plugs in there without touching this loop; a hook that also has
``state_dict()``/``load_state_dict()`` is checkpointed and resumed with the run.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from diffusers import DDPMScheduler, UNet2DModel
from tqdm.auto import tqdm

from feddiff.diffusion.ddpm import train_local
from feddiff.diffusion.modes import Mode
from feddiff.diffusion.parts import PARTS, names_of, payload_size, split_names
from feddiff.diffusion.settings import DiffusionTrainSettings
from feddiff.fl.aggregation import weighted_average
from feddiff.fl.checkpoint import checkpoint_due, load_checkpoint, save_checkpoint
from feddiff.fl.data import FederatedData
from feddiff.fl.sampling import client_generator, sample_clients

log = logging.getLogger(__name__)

METRIC_COLUMNS = [
    "round",
    "train_loss",
    "seconds",
    "params_up",
    "params_down",
    "bytes_up",
    "bytes_down",
    "fid",
    "fid_kind",
    "eval_seconds",
]
COMM_COLUMNS = [
    "round",
    "client",
    "parts_down",
    "parts_up",
    "params_down",
    "params_up",
    "bytes_down",
    "bytes_up",
]

State = dict[str, torch.Tensor]


class ServerHook(Protocol):
    """A server-side step after aggregation; its dict joins the round's metrics row."""

    def after_aggregate(self, global_unet: UNet2DModel, round: int) -> dict[str, Any]: ...


#: ``(round, states) -> metrics``: ``states`` maps a model name ("global" or
#: "client<k>") to the full UNet state of that model.
Evaluator = Callable[[int, dict[str, State]], dict[str, Any]]


@dataclass
class Upload:
    """What one client sent: the parts it uploaded, their tensors and its sample count."""

    parts: frozenset[str]
    state: State
    weight: float


@dataclass
class FederatedResult:
    unet: UNet2DModel
    private: dict[int, State]
    rows: list[dict[str, Any]]
    communication: list[dict[str, Any]]
    mode: Mode
    num_clients: int = 0
    model_states: dict[str, State] = field(default_factory=dict)


def aggregate_parts(
    global_state: Mapping[str, torch.Tensor],
    uploads: Sequence[Upload],
    parts_map: Mapping[str, frozenset[str]],
) -> State:
    """Average each part over exactly the clients that uploaded it (sample-weighted)."""
    out = dict(global_state)
    for part in PARTS:
        senders = [u for u in uploads if part in u.parts]
        if not senders:
            continue
        names = sorted(parts_map[part])
        sub = [{n: u.state[n] for n in names} for u in senders]
        out.update(weighted_average(sub, [u.weight for u in senders]))
    return out


def model_states(
    global_state: Mapping[str, torch.Tensor],
    private: Mapping[int, State],
    mode: Mode,
    num_clients: int,
) -> dict[str, State]:
    """The models a mode yields: the global one, or one per client (shared + private parts).

    A client that never took part still holds the private parts it would receive on
    joining, i.e. the server's (never aggregated) copy of them.
    """
    if not mode.private:
        return {"global": dict(global_state)}
    return {f"client{k}": {**global_state, **private.get(k, {})} for k in range(num_clients)}


def _parts_label(parts: frozenset[str]) -> str:
    return "+".join(p for p in PARTS if p in parts)


def _cpu_clone(state: Mapping[str, torch.Tensor], names: frozenset[str]) -> State:
    return {n: state[n].detach().to("cpu", copy=True) for n in sorted(names)}


@dataclass
class _LoopState:
    """Everything a round changes besides the global model: checkpointed as a whole."""

    private: dict[int, State] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)
    rows: list[dict[str, Any]] = field(default_factory=list)
    comm: list[dict[str, Any]] = field(default_factory=list)


def _resume(
    path: Path | None, fingerprint: str, unet: UNet2DModel, hooks: Sequence[ServerHook]
) -> tuple[_LoopState, int]:
    """Loop state and first round to run: from the checkpoint if it matches, else fresh."""
    ckpt = load_checkpoint(path, fingerprint) if path is not None else None
    if ckpt is None:
        return _LoopState(), 1
    unet.load_state_dict(ckpt["model"])
    for hook, state in zip(hooks, ckpt.get("hooks", [])):
        if state is not None and hasattr(hook, "load_state_dict"):
            hook.load_state_dict(state)
    log.info("resuming from %s after round %d", path, ckpt["round"])
    loop = _LoopState(
        {int(k): v for k, v in ckpt["private"].items()},
        set(ckpt["seen"]),
        list(ckpt["metrics"]),
        list(ckpt["communication"]),
    )
    return loop, int(ckpt["round"]) + 1


def _train_client(
    local: UNet2DModel,
    scheduler: DDPMScheduler,
    data: FederatedData,
    client: int,
    rnd: int,
    seed: int,
    settings: DiffusionTrainSettings,
    global_state: State,
    private: State | None,
) -> tuple[State, torch.Tensor, int]:
    """One client's round: global model plus its private parts, local Adam; its new state."""
    local.load_state_dict(global_state)
    if private is not None:
        local.load_state_dict(private, strict=False)
    loss_sum, steps = train_local(
        local,
        scheduler,
        data.x_train,
        data.y_train,
        data.clients[client],
        epochs=settings.local_epochs,
        batch_size=settings.batch_size,
        lr=settings.lr,
        label_dropout=settings.label_dropout,
        num_classes=data.num_classes,
        generator=client_generator(seed, rnd, client, data.device),
        round=rnd,
        client=client,
    )
    return local.state_dict(), loss_sum, steps


def run_federated_diffusion(
    data: FederatedData,
    unet: UNet2DModel,
    scheduler: DDPMScheduler,
    mode: Mode,
    settings: DiffusionTrainSettings,
    seed: int,
    *,
    checkpoint_path: Path | None = None,
    fingerprint: str = "",
    hooks: Sequence[ServerHook] = (),
    evaluator: Evaluator | None = None,
    on_round_end: Callable[[int, dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> FederatedResult:
    """Run ``settings.rounds`` rounds; ``unet`` must be initialised and on ``data.device``.

    The evaluator runs after rounds ``fid_every, 2*fid_every, ...`` and always after
    the last. With a ``checkpoint_path`` the run resumes after the last round found there.
    """
    num_clients = len(data.clients)
    parts_map = split_names(unet)
    private_names = names_of(parts_map, mode.private)
    loop, start = _resume(checkpoint_path, fingerprint, unet, hooks)
    local = copy.deepcopy(unet)
    bar = tqdm(
        range(start, settings.rounds + 1),
        desc=f"{mode.name} rounds",
        initial=start - 1,
        total=settings.rounds,
        disable=not progress,
    )
    for rnd in bar:
        tic = time.perf_counter()
        selected = sample_clients(seed, rnd, num_clients, settings.clients_per_round)
        plan = mode.uploads(selected, seed, rnd)
        global_state = {k: v.detach().clone() for k, v in unet.state_dict().items()}
        uploads: list[Upload] = []
        this_round: list[dict[str, Any]] = []
        loss_total = torch.zeros((), device=data.device)
        steps_total = 0
        for client in selected:
            down_parts = mode.downloads(first_time=client not in loop.seen)
            state, loss_sum, steps = _train_client(
                local,
                scheduler,
                data,
                client,
                rnd,
                seed,
                settings,
                global_state,
                loop.private.get(client),
            )
            loss_total += loss_sum
            steps_total += steps
            up_names = names_of(parts_map, plan[client])
            uploads.append(
                Upload(
                    plan[client],
                    {n: state[n].detach().clone() for n in up_names},
                    float(data.client_size(client)),
                )
            )
            if private_names:
                loop.private[client] = _cpu_clone(state, private_names)
            loop.seen.add(client)
            p_down, b_down = payload_size(global_state, names_of(parts_map, down_parts))
            p_up, b_up = payload_size(state, up_names)
            this_round.append(
                {
                    "round": rnd,
                    "client": client,
                    "parts_down": _parts_label(down_parts),
                    "parts_up": _parts_label(plan[client]),
                    "params_down": p_down,
                    "params_up": p_up,
                    "bytes_down": b_down,
                    "bytes_up": b_up,
                }
            )
        unet.load_state_dict(aggregate_parts(global_state, uploads, parts_map))
        loop.comm.extend(this_round)
        row: dict[str, Any] = {
            "round": rnd,
            "train_loss": float(loss_total) / max(steps_total, 1),
            "seconds": time.perf_counter() - tic,
            **{
                k: sum(c[k] for c in this_round)
                for k in ("params_up", "params_down", "bytes_up", "bytes_down")
            },
        }
        for hook in hooks:
            row.update(hook.after_aggregate(unet, rnd))
        due = rnd == settings.rounds or (settings.fid_every and rnd % settings.fid_every == 0)
        if evaluator is not None and due:
            tic = time.perf_counter()
            row.update(
                evaluator(rnd, model_states(unet.state_dict(), loop.private, mode, num_clients))
            )
            row["eval_seconds"] = time.perf_counter() - tic
        loop.rows.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.4f}")
        if checkpoint_path is not None and checkpoint_due(
            rnd, settings.checkpoint_every, settings.rounds
        ):
            save_checkpoint(
                checkpoint_path,
                {
                    "fingerprint": fingerprint,
                    "round": rnd,
                    "model": unet.state_dict(),
                    "private": loop.private,
                    "seen": sorted(loop.seen),
                    "metrics": loop.rows,
                    "communication": loop.comm,
                    "hooks": [h.state_dict() if hasattr(h, "state_dict") else None for h in hooks],
                },
            )
        if on_round_end is not None:
            on_round_end(rnd, row)
    return FederatedResult(
        unet=unet,
        private=loop.private,
        rows=loop.rows,
        communication=loop.comm,
        mode=mode,
        num_clients=num_clients,
        model_states=model_states(unet.state_dict(), loop.private, mode, num_clients),
    )
