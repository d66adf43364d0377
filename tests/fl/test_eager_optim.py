"""feddiff.utils.eager_optim: torch.optim.SGD's update, bit for bit, without importing the compiler.

The updates are compared with ``torch.optim.SGD`` itself on asymmetric settings (two
parameter groups with their own learning rates, momentum with dampening, Nesterov, weight
decay), exactly (``torch.equal``), parameters and optimizer state, over several steps.
Which modules a process loads is read from a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from feddiff.utils.eager_optim import SGD

REPO = Path(__file__).resolve().parents[2]


def _model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 4 * 4, 5))


def _groups(model: nn.Module) -> list[dict[str, Any]]:
    conv, _, lin = model
    return [{"params": list(conv.parameters()), "lr": 0.05}, {"params": list(lin.parameters())}]


def _train(make: Callable[[list[dict[str, Any]]], torch.optim.Optimizer]) -> tuple[Any, ...]:
    model = _model()
    opt = make(_groups(model))
    gen = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(6):
        x = torch.randn(7, 2, 6, 6, generator=gen)
        y = torch.randint(0, 5, (7,), generator=gen)
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    state = [opt.state[p] for p in model.parameters()]
    return [p.detach().clone() for p in model.parameters()], state, losses


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 0.01, "momentum": 0.9, "weight_decay": 1e-3, "dampening": 0.25},
        {"lr": 0.02, "momentum": 0.8, "nesterov": True},
        {"lr": 0.03},
    ],
)
def test_sgd_matches_torch_bit_for_bit(kwargs: dict[str, Any]) -> None:
    ours = _train(lambda g: SGD(g, **kwargs))
    ref = _train(lambda g: torch.optim.SGD(g, **kwargs))
    assert _same(ours, ref)
    assert not _same(ours[0], _train(lambda g: torch.optim.SGD(g, lr=0.011))[0])  # can fail


def test_step_keeps_torch_hooks_closure_and_grad_mode() -> None:
    model = _model()
    opt = SGD(model.parameters(), lr=0.1)
    seen: list[str] = []
    opt.register_step_pre_hook(lambda o, a, k: seen.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: seen.append("post"))

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = model(torch.ones(2, 2, 6, 6)).square().mean()
        loss.backward()
        return loss

    assert isinstance(opt.step(closure), torch.Tensor)
    assert seen == ["pre", "post"] and torch.is_grad_enabled()


def _probe(code: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


_STEPS = """
    import json, sys, torch
    from torch import nn
    from feddiff.utils.eager_optim import SGD

    def steps(cls):
        torch.manual_seed(0)
        model = nn.Linear(3, 2)
        opt = cls(model.parameters(), lr=0.1)
        for _ in range(2):
            opt.zero_grad(set_to_none=True)
            model(torch.ones(4, 3)).sum().backward()
            opt.step()
        opt.load_state_dict(opt.state_dict())
        return [p.tolist() for p in model.parameters()]
"""


def test_no_compiler_import_and_torch_would_import_it() -> None:
    """Ours leave torch._dynamo unloaded; torch.optim's own optimizer loads it (the probe
    can see the difference)."""
    code = (
        _STEPS
        + """
    steps(SGD)
    ours = "torch._dynamo" in sys.modules
    steps(torch.optim.SGD)
    print(json.dumps([ours, "torch._dynamo" in sys.modules]))
    """
    )
    assert _probe(code) == [False, True]


def test_after_the_compiler_is_loaded_torch_s_own_path_runs() -> None:
    """Once torch._dynamo is imported, the methods go through torch's disable wrappers
    (ours removed itself) and the numbers stay the same."""
    code = (
        _STEPS
        + """
    before = steps(SGD)
    import torch._dynamo
    after = steps(SGD)
    fn = torch.optim.Optimizer.zero_grad.__wrapped__
    real = getattr(fn, "__dynamo_disable", None)
    torchs = real is not None and real.__module__ != "feddiff.utils.eager_optim"
    print(json.dumps([before == after, torchs]))
    """
    )
    assert _probe(code) == [True, True]
