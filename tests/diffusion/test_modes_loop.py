"""The four FedDiffuse modes through the federated DDPM loop, replayed round by round.

Setting: four clients of unequal size (9, 15, 23, 33), three sampled per round (an odd
count, so USPLIT has a pair and an odd one out), two rounds, so some clients train
twice and must start their second round from their own private parts. For every
round the test recomputes, from the loop's global state before the round and its own
record of each client's private parts:

* each sampled client's local training (the package's ``train_local`` with the
  client's generator: the building block, not the exchange under test), starting from
  the shared parts it receives plus its private parts;
* the parts each client uploads (hard-coded from the paper for FULL, UDEC, ULATDEC;
  read from the accounting for USPLIT, whose random pairing is checked here too) and
  the sample-weighted average of each part over exactly its uploaders, in float64;
* the parameters sent up and down, counted from the UNet's own tensors.

It then checks: the server received only the uploaded parts' tensors (never a private
one), the global model equals the recomputed averages (private parts still at their
initialisation), each client's stored private parts equal what its own training
produced (and differ across clients), and the accounting equals the counts.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from feddiff.diffusion import federated
from feddiff.diffusion.ddpm import train_local
from feddiff.diffusion.modes import build_mode
from feddiff.fl.checkpoint import load_checkpoint
from feddiff.fl.data import FederatedData
from feddiff.fl.sampling import client_generator

from .conftest import tiny_settings, tiny_unet

SIZES = (9, 15, 23, 33)
ROUNDS, PER_ROUND, SEED = 2, 3, 11
# The paper's split of the UNet, by top-level module (independent of feddiff.diffusion.parts).
HEADS = {
    "down": {"conv_in", "time_proj", "time_embedding", "class_embedding", "down_blocks"},
    "mid": {"mid_block"},
    "up": {"up_blocks", "conv_norm_out", "conv_act", "conv_out"},
}
ALL = frozenset(HEADS)
SHARED = {
    "full": ALL,
    "udec": frozenset({"up"}),
    "ulatdec": frozenset({"mid", "up"}),
    "usplit": ALL,
}

State = dict[str, torch.Tensor]


def _keys(state: State, parts: frozenset[str] | set[str]) -> set[str]:
    return {k for k in state if any(k.split(".")[0] in HEADS[p] for p in parts)}


def _count(state: State, parts: frozenset[str] | set[str]) -> int:
    return sum(state[k].numel() for k in _keys(state, parts) if state[k].is_floating_point())


@pytest.fixture
def data() -> FederatedData:
    rng = np.random.default_rng(4)
    n = sum(SIZES)
    y = rng.integers(0, 4, size=n)
    x = rng.integers(0, 40, size=(n, 8, 8, 1))
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        x[i, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4, 0] += 200
    bounds = np.cumsum((0,) + SIZES)
    clients = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    return FederatedData.from_arrays(
        x.astype(np.uint8), y, x[:8].astype(np.uint8), y[:8], clients, 4, torch.device("cpu")
    )


def _label(parts: frozenset[str] | set[str]) -> str:
    return "+".join(p for p in ("down", "mid", "up") if p in parts)


def _parts(label: str) -> frozenset[str]:
    return frozenset(label.split("+"))


@pytest.mark.parametrize("mode_name", ["full", "usplit", "udec", "ulatdec"])
def test_each_mode_exchanges_exactly_its_parts(
    data: FederatedData, scheduler: Any, monkeypatch: Any, tmp_path: Path, mode_name: str
) -> None:
    received: list[list[federated.Upload]] = []
    real = federated.aggregate_parts

    def spy(global_state: State, uploads: list[federated.Upload], parts_map: Any) -> State:
        received.append([copy.deepcopy(u) for u in uploads])
        return real(global_state, uploads, parts_map)

    monkeypatch.setattr(federated, "aggregate_parts", spy)
    unet = tiny_unet()
    init = {k: v.clone() for k, v in unet.state_dict().items()}
    assert set().union(*(_keys(init, {p}) for p in ALL)) == set(
        init
    )  # the split covers every tensor
    settings = tiny_settings(rounds=ROUNDS, clients_per_round=PER_ROUND, batch_size=8).training
    ckpt = tmp_path / "checkpoint.pt"
    globals_after: list[State] = []
    private_after: list[dict[int, State]] = []

    def on_round_end(rnd: int, row: dict[str, Any]) -> None:
        globals_after.append({k: v.clone() for k, v in unet.state_dict().items()})
        private_after.append(load_checkpoint(ckpt, "f")["private"])  # type: ignore[index]

    result = federated.run_federated_diffusion(
        data,
        unet,
        scheduler,
        build_mode(mode_name),
        settings,
        seed=SEED,
        checkpoint_path=ckpt,
        fingerprint="f",
        on_round_end=on_round_end,
        progress=False,
    )
    shared = SHARED[mode_name]
    private_parts = ALL - shared
    whole = _count(init, ALL)
    my_private: dict[int, State] = {}
    seen: set[int] = set()
    trained_twice = 0
    for rnd in range(1, ROUNDS + 1):
        before = init if rnd == 1 else globals_after[rnd - 2]
        comm = [c for c in result.communication if c["round"] == rnd]
        clients = [c["client"] for c in comm]
        assert len(set(clients)) == PER_ROUND  # partial participation: 3 of 4
        plan = {c["client"]: _parts(c["parts_up"]) for c in comm}
        if mode_name == "usplit":  # every client one of up/down; mid once per pair plus the odd one
            assert all(len(p & {"up", "down"}) == 1 for p in plan.values())
            assert sum("mid" in p for p in plan.values()) == PER_ROUND // 2 + PER_ROUND % 2
            assert {"up", "down"} <= set().union(*plan.values())
        else:
            assert all(p == shared for p in plan.values())
        states: dict[int, State] = {}
        for c in clients:
            trained_twice += c in seen
            local = tiny_unet()
            local.load_state_dict({**before, **my_private.get(c, {})})
            train_local(
                local,
                scheduler,
                data.x_train,
                data.y_train,
                data.clients[c],
                epochs=settings.local_epochs,
                batch_size=settings.batch_size,
                lr=settings.lr,
                label_dropout=settings.label_dropout,
                num_classes=4,
                generator=client_generator(SEED, rnd, c, data.device),
                round=rnd,
                client=c,
            )
            states[c] = {k: v.detach().clone() for k, v in local.state_dict().items()}
            if private_parts:
                my_private[c] = {k: states[c][k] for k in _keys(states[c], private_parts)}
        # --- what the server received: the planned parts' tensors, weighted by sample count
        ups = received[rnd - 1]
        assert len(ups) == PER_ROUND
        for c, u in zip(clients, ups):
            assert u.parts == plan[c] and set(u.state) == _keys(init, plan[c]), (rnd, c)
            assert u.weight == SIZES[c]
            assert not set(u.state) & _keys(init, private_parts)
            for k, v in u.state.items():
                assert torch.equal(v, states[c][k]), (rnd, c, k)
        # --- the global model: each part averaged over exactly its uploaders
        after = globals_after[rnd - 1]
        for part in ALL:
            senders = [c for c in clients if part in plan[c]]
            for k in _keys(init, {part}):
                if not senders or not init[k].is_floating_point():
                    if not senders:
                        assert torch.equal(after[k], before[k]), (rnd, k)
                    continue
                expected = sum(states[c][k].double() * SIZES[c] for c in senders) / sum(
                    SIZES[c] for c in senders
                )
                torch.testing.assert_close(
                    after[k], expected.float(), rtol=1e-5, atol=1e-6, msg=f"{rnd} {k}"
                )
        for k in _keys(init, private_parts):
            assert torch.equal(after[k], init[k])  # the server never saw a private part
        # --- private parts: what each client's own training produced; the others kept theirs
        stored = private_after[rnd - 1]
        assert set(stored) == (set(my_private) if private_parts else set())
        for c, mine in my_private.items():
            assert set(stored[c]) == set(mine)
            assert all(torch.equal(stored[c][k], v) for k, v in mine.items()), (rnd, c)
        # --- accounting, from the tensors
        for row in comm:
            c = row["client"]
            down = ALL if c not in seen else (ALL if mode_name in ("full", "usplit") else shared)
            assert row["parts_down"] == _label(down) and row["params_down"] == _count(init, down)
            assert (
                row["params_up"] == _count(init, plan[c])
                and row["bytes_up"] == 4 * row["params_up"]
            )
        seen.update(clients)
        total = result.rows[rnd - 1]
        assert total["params_up"] == sum(_count(init, plan[c]) for c in clients)
        assert total["params_down"] == sum(r["params_down"] for r in comm)
        if mode_name == "full":
            assert total["params_up"] == total["params_down"] == PER_ROUND * whole
    assert trained_twice > 0  # some client came back and resumed from its own private parts
    if private_parts:
        assert set(result.private) == set(my_private) and len(my_private) >= 2
        a, b = sorted(my_private)[:2]
        assert any(not torch.equal(my_private[a][k], my_private[b][k]) for k in my_private[a])
        for c, state in result.model_states.items():
            k = int(c.removeprefix("client"))
            for name, value in state.items():
                ref = my_private.get(k, {}).get(name, globals_after[-1][name])
                assert torch.equal(value, ref), (c, name)
