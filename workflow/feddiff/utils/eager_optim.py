"""``torch.optim.SGD`` that does not import torch's compiler while nothing compiles.

Why: torch imports ``torch._dynamo`` (with sympy, triton and parts of torch.distributed)
the first time an optimizer is built or stepped: about 1.4 CPU seconds, a third of a
one-round ``train`` job on the digits (benchmarks/job_overhead.py), paid by every job.
``Optimizer.add_param_group`` / ``zero_grad`` / ``state_dict`` / ``load_state_dict`` are
wrapped by ``torch._disable_dynamo``, which imports the compiler on its first call to
build a "do not trace" wrapper, and every ``step`` runs ``torch._dynamo.graph_break()``
between switching gradients off and on.
Both act only while ``torch.compile`` traces, which needs ``torch._dynamo`` imported;
before that they do nothing.

So while ``torch._dynamo`` is not in ``sys.modules`` (nothing can be compiling),
:class:`SGD` runs the same update with the same gradient mode and the same hooks, and
once anything has imported the compiler it hands every call back to torch's own path.
The arithmetic is torch's own code in both cases: results are bit-identical
(tests/fl/test_eager_optim.py compares it with ``torch.optim.SGD`` step by step). If
torch's layout is not the one expected here (another torch version), it falls back to
torch's path, which is only slower. The methods of every optimizer that load the
compiler on first use (``zero_grad`` and the others above) get the same deferral when
this module is imported. Stages that import diffusers gain nothing: diffusers imports
the compiler itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch

_COMPILER = "torch._dynamo"
_DISABLED = "__dynamo_disable"  # where torch._disable_dynamo caches its wrapper
_LAZY_METHODS = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


def compiler_loaded() -> bool:
    """Whether torch's compiler is imported (only then can anything be compiling)."""
    return _COMPILER in sys.modules


def _defer_disable(method: Callable[..., Any]) -> None:
    """Let a ``torch._disable_dynamo``-wrapped method run without importing the compiler.

    The wrapper calls ``fn.__dynamo_disable`` when set; ours calls ``fn`` directly until
    the compiler is loaded, then removes itself so that torch builds its real wrapper.
    """
    fn = getattr(method, "__wrapped__", None)
    if fn is None or getattr(fn, _DISABLED, None) is not None:
        return

    def call(*args: Any, **kwargs: Any) -> Any:
        if compiler_loaded():
            if getattr(fn, _DISABLED, None) is call:
                delattr(fn, _DISABLED)
            return method(*args, **kwargs)
        return fn(*args, **kwargs)

    setattr(fn, _DISABLED, call)


def _split_step(cls: type[torch.optim.Optimizer]) -> tuple[Callable[..., Any], Any]:
    """``cls.step`` as torch defines it (``_use_grad`` around the update) and the update
    alone (``None`` when the layout is not the expected one)."""
    step = vars(cls)["step"]
    if getattr(step, "hooked", False):  # torch's profiler/hook wrapper, added on first use
        step = step.__wrapped__
    code = getattr(step, "__code__", None)
    update = getattr(step, "__wrapped__", None)
    if code is None or code.co_name != "_use_grad" or not callable(update):
        return step, None
    return step, update


for _name in _LAZY_METHODS:
    _defer_disable(getattr(torch.optim.Optimizer, _name))

_SGD_STEP, _SGD_UPDATE = _split_step(torch.optim.SGD)


def _step(
    optimizer: torch.optim.Optimizer,
    step: Callable[..., Any],
    update: Callable[..., Any] | None,
    closure: Any,
) -> Any:
    if update is None or compiler_loaded() or optimizer.defaults["differentiable"]:
        return step(optimizer, closure)
    # What torch's ``_use_grad`` does outside compilation, without its graph breaks.
    with torch.set_grad_enabled(False):
        return update(optimizer, closure)


class SGD(torch.optim.SGD):
    """``torch.optim.SGD``; its step imports no compiler (module docstring)."""

    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        return _step(self, _SGD_STEP, _SGD_UPDATE, closure)
