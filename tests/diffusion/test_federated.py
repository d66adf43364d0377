"""The round loop: UDEC privacy (accounting and tensors), FULL accounting, hooks, resume."""

from pathlib import Path
from typing import Any

import pytest
import torch

from feddiff.diffusion import federated
from feddiff.diffusion.federated import run_federated_diffusion
from feddiff.diffusion.modes import build_mode
from feddiff.diffusion.parts import names_of, payload_size, split_names
from feddiff.fl.checkpoint import load_checkpoint
from feddiff.fl.data import FederatedData

from .conftest import tiny_settings, tiny_unet


def _run(data: FederatedData, scheduler: Any, mode: str, **kw: Any) -> federated.FederatedResult:
    settings = tiny_settings(**kw.pop("training", {}))
    return run_federated_diffusion(
        data,
        tiny_unet(),
        scheduler,
        build_mode(mode),
        settings.training,
        seed=kw.pop("seed", 3),
        progress=False,
        **kw,
    )


def test_udec_never_sends_down_or_mid(
    toy_data: FederatedData, scheduler: Any, monkeypatch: Any, tmp_path: Path
) -> None:
    received: list[federated.Upload] = []
    real = federated.aggregate_parts

    def spy(global_state, uploads, parts_map):  # type: ignore[no-untyped-def]
        received.extend(uploads)
        return real(global_state, uploads, parts_map)

    monkeypatch.setattr(federated, "aggregate_parts", spy)
    init = tiny_unet().state_dict()
    parts = split_names(tiny_unet())
    private = names_of(parts, {"down", "mid"})
    snapshots: dict[int, dict[int, dict[str, torch.Tensor]]] = {}
    ckpt = tmp_path / "checkpoint.pt"  # written every round, before on_round_end: the private store

    def snapshot(rnd: int, row: dict[str, Any]) -> None:
        snapshots[rnd] = load_checkpoint(ckpt, "f")["private"]  # type: ignore[index]

    result = _run(
        toy_data,
        scheduler,
        "udec",
        training={"rounds": 4},
        checkpoint_path=ckpt,
        fingerprint="f",
        on_round_end=snapshot,
    )
    # --- the server never receives a private tensor
    assert received and all(
        set(u.state) == set(parts["up"]) and u.parts == {"up"} for u in received
    )
    # --- so its copy of down/mid is still the initialisation
    final = result.unet.state_dict()
    assert all(torch.equal(final[n], init[n]) for n in private)
    assert any(not torch.equal(final[n], init[n]) for n in parts["up"])
    # --- accounting: up only ever the up part; down the whole model once per client, then up
    up_size = payload_size(init, parts["up"])
    whole = payload_size(init, init)
    seen: set[int] = set()
    for row in result.communication:
        assert row["parts_up"] == "up" and (row["params_up"], row["bytes_up"]) == up_size
        first = row["client"] not in seen
        seen.add(row["client"])
        assert row["parts_down"] == ("down+mid+up" if first else "up")
        assert row["params_down"] == (whole[0] if first else up_size[0])
    # --- a client's private parts change only in rounds it takes part in
    by_round: dict[int, set[int]] = {}
    for row in result.communication:
        by_round.setdefault(row["round"], set()).add(row["client"])
    checked = 0
    for rnd in range(2, 5):
        for client, state in snapshots[rnd - 1].items():
            assert set(state) == private
            same = all(torch.equal(state[n], snapshots[rnd][client][n]) for n in state)
            assert same == (client not in by_round[rnd])  # changes exactly when it trains
            checked += client not in by_round[rnd]
    assert checked > 0
    # --- per-client models: shared up part + own private parts
    models = result.model_states
    assert set(models) == {f"client{k}" for k in range(4)}
    for k, state in result.private.items():
        assert all(torch.equal(models[f"client{k}"][n], state[n]) for n in private)
        assert all(torch.equal(models[f"client{k}"][n], final[n]) for n in parts["up"])


def test_full_and_ulatdec_accounting(toy_data: FederatedData, scheduler: Any) -> None:
    whole = payload_size(tiny_unet().state_dict(), tiny_unet().state_dict())
    full = _run(toy_data, scheduler, "full")
    for row in full.rows:
        assert row["params_up"] == row["params_down"] == 2 * whole[0]
        assert row["bytes_up"] == 2 * whole[1]
    ulat = _run(toy_data, scheduler, "ulatdec")
    parts = split_names(tiny_unet())
    shared = payload_size(tiny_unet().state_dict(), names_of(parts, {"mid", "up"}))[0]
    assert all(r["params_up"] == shared for r in ulat.communication)
    assert sum(r["params_up"] for r in ulat.rows) < sum(r["params_up"] for r in full.rows)


class CountingHook:
    """A server step after aggregation, with state that must survive a resume."""

    def __init__(self) -> None:
        self.calls = 0

    def after_aggregate(self, global_unet: Any, round: int) -> dict[str, Any]:
        self.calls += 1
        return {
            "hook_calls": self.calls,
            "hook_norm": float(sum(p.detach().sum() for p in global_unet.parameters())),
        }

    def state_dict(self) -> dict[str, int]:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.calls = state["calls"]


def _strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "eval_seconds")} for r in rows]


@pytest.mark.parametrize("mode", ["udec", "usplit"])
def test_resume_after_interruption_is_exact(
    toy_data: FederatedData, scheduler: Any, tmp_path: Path, mode: str
) -> None:
    def evaluator(rnd: int, states: dict[str, dict[str, torch.Tensor]]) -> dict[str, Any]:
        return {
            "fid": float(sum(s["conv_out.weight"].sum() for s in states.values())),
            "fid_kind": "test",
        }

    training = {"rounds": 4, "fid_every": 2}
    ref_hook = CountingHook()
    ref = _run(toy_data, scheduler, mode, training=training, hooks=[ref_hook], evaluator=evaluator)
    ckpt = tmp_path / "checkpoint.pt"

    def interrupt(rnd: int, row: dict[str, Any]) -> None:
        if rnd == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(
            toy_data,
            scheduler,
            mode,
            training=training,
            hooks=[CountingHook()],
            evaluator=evaluator,
            checkpoint_path=ckpt,
            fingerprint="f",
            on_round_end=interrupt,
        )
    hook = CountingHook()
    resumed = _run(
        toy_data,
        scheduler,
        mode,
        training=training,
        hooks=[hook],
        evaluator=evaluator,
        checkpoint_path=ckpt,
        fingerprint="f",
    )
    assert _strip(resumed.rows) == _strip(ref.rows)
    assert resumed.communication == ref.communication
    assert [r["hook_calls"] for r in resumed.rows] == [1, 2, 3, 4] and hook.calls == 4
    assert [r["round"] for r in resumed.rows if "fid" in r] == [2, 4]
    for name, state in ref.model_states.items():
        for key, value in state.items():
            assert torch.equal(resumed.model_states[name][key], value), (name, key)
    # another fingerprint: the checkpoint is ignored, not resumed
    fresh = _run(
        toy_data, scheduler, mode, training=training, checkpoint_path=ckpt, fingerprint="other"
    )
    assert [r["round"] for r in fresh.rows] == [1, 2, 3, 4]
