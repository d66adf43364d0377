"""Train a round's clients together: one vmapped SGD step for all of them.

The sequential path (:func:`feddiff.fl.engine.train_client`) trains one client after
the other with a module and ``torch.optim.SGD``. Here the clients of a round (or of a
chunk of ``training.vectorize_chunk`` of them) keep their weights, batch-norm buffers
and momentum buffers stacked along a leading client axis, and one call of
``vmap(grad(...))`` over that axis computes every client's step at once:
``torch.func.stack_module_state`` builds the stacked state from the global model,
``torch.func.functional_call`` runs the model on one client's slice, and the SGD update
runs on the stacked tensors.

What makes it the *same* computation as the sequential path:

* Batches and augmentation: every client has its own generator
  ``client_generator(seed, round, client)``, consumed in exactly the sequential order
  (``epoch_batches`` at the start of each epoch, then the crop/flip draws of each
  batch, through :meth:`FederatedData.train_batch` itself). Each client's stream is
  independent of the others, so interleaving clients step by step changes nothing.
* Uneven clients: client k takes ``steps_k = local_epochs * batches_k`` steps; the
  chunk runs ``max_k steps_k`` steps. Clients are stacked longest first, so a client
  that has finished simply drops out of the vmapped call (the leading slice of the
  stacked state shrinks) and its weights, buffers and momentum are never touched
  again. (``VectorizedTrainer(compact=False)`` instead keeps every client in every
  step and discards a finished client's padded steps with ``torch.where``: the same
  numbers, more compute.) A partially filled last batch (size b < batch_size) is
  padded to batch_size with a per-sample mask: the loss is the mean over its b real
  samples (what ``F.cross_entropy`` gives the sequential path's smaller batch) and
  batch norm's statistics are taken over the real samples only.
* Batch norm: ``torch.func.replace_all_batch_norm_modules_`` would drop the running
  statistics altogether; here every ``_BatchNorm`` is swapped (in a private template
  copy of the model) for :class:`FunctionalBatchNorm`, which computes the batch
  statistics itself (masked when the batch is padded) and *returns* the updated
  ``running_mean``/``running_var``/``num_batches_tracked`` instead of writing them in
  place, so each client's running statistics come from its own batches.
* SGD: :func:`sgd_step_` is ``torch.optim.SGD``'s update (momentum, weight decay, no
  dampening, no Nesterov, the first step's ``buf = d_p`` initialisation) applied with
  ``torch._foreach_*`` ops to the stacked tensors, which is every client's own step
  because the update is elementwise.
* Aggregation: each client's final state is loaded into a module and handed to the
  strategy's own ``finish_client`` and ``aggregate``, as in the sequential path.

Results agree with the sequential path to floating-point tolerance, not bitwise: the
vmapped convolutions and the hand-written batch norm and masked loss reduce in a
different order (tests/fl/test_vectorized.py checks weights and metrics; after a few
rounds differences of ~1e-7 are typical, and chaotic training, e.g. a max-pool near a
tie, can grow them). A vectorised run is itself deterministic on CPU: the same
settings give the same metrics, bit for bit.

Host syncs: one per round for the NaN check (in the engine) and one for evaluation;
the per-chunk batch schedule is built on the host from the client sizes and copied to
the device once (pinned, non-blocking), so nothing inside the step loop waits on the
device.

When: ``training.vectorize: on``, or ``auto`` (the default) on CUDA; ``auto`` on a CPU
trains one client at a time, which measured faster there (:func:`use_vectorized`).

What is vectorised: strategies whose class sets ``vectorizable = True`` (FedAvg,
FedProx, FedAvgM, FedNova); a subclass that overrides a client-side hook
(``configure_client``, ``loss``, ``before_step``, ``vectorized_loss``) without
declaring ``vectorizable`` itself falls back to the sequential path. Models may hold
batch norm but no other module with buffers, and no dropout; every parameter is
trained, as in the sequential path (which sets ``requires_grad`` on all of them before
the vectorizable strategies' no-op ``configure_client``). A round in which a selected
client holds fewer than two samples runs sequentially (the sequential path's behaviour
there is the reference).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd

from feddiff.fl.data import FederatedData, epoch_batches
from feddiff.fl.sampling import client_generator
from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategy import ClientUpdate, LocalContext, Strategy

log = logging.getLogger(__name__)

VECTORIZE_MODES = ("auto", "on", "off")

#: Client-side hooks the vectorised path does not call (or calls in functional form);
#: overriding one of them makes a strategy sequential unless it re-declares
#: ``vectorizable``.
CLIENT_HOOKS = ("configure_client", "loss", "before_step", "vectorized_loss")

State = dict[str, torch.Tensor]


# ---- eligibility --------------------------------------------------------------------
def strategy_fallback_reason(strategy: Strategy) -> str | None:
    """Why ``strategy`` cannot be vectorised, or None when it can."""
    cls = type(strategy)
    declarer = next((k for k in cls.__mro__ if "vectorizable" in vars(k)), None)
    if declarer is None or not getattr(declarer, "vectorizable", False):
        return f"strategy {strategy.name!r} trains its clients one at a time"
    for hook in CLIENT_HOOKS:
        if getattr(cls, hook, None) is not getattr(declarer, hook, None):
            return (
                f"{cls.__name__} overrides {hook}() of the vectorizable {declarer.__name__} "
                "without declaring vectorizable itself"
            )
    return None


def model_fallback_reason(model: nn.Module) -> str | None:
    """Why ``model`` cannot be trained by the vectorised path, or None when it can."""
    for name, module in model.named_modules():
        if isinstance(module, _DropoutNd):
            return (
                f"module {name!r} is dropout "
                "(its random draws would differ from the sequential path)"
            )
        if isinstance(module, _BatchNorm):
            continue
        if any(True for _ in module.buffers(recurse=False)):
            return (
                f"module {name!r} ({type(module).__name__}) "
                "has buffers only batch norm's are handled"
            )
    return None


def use_vectorized(
    settings: TrainSettings, strategy: Strategy, model: nn.Module, device: torch.device
) -> bool:
    """Resolve ``training.vectorize`` for this strategy, model and device.

    ``off``: never. ``on``: always, or an error naming why it cannot be. ``auto``: when
    the strategy and model allow it and the device is CUDA. On a CPU the vmapped step
    measured slower than one client at a time (0.81x on the digits CNN, 0.43x on a
    CIFAR-sized CNN; benchmarks/results/), so ``auto`` keeps CPU runs sequential.
    """
    mode = settings.vectorize
    if mode == "off":
        return False
    reason = strategy_fallback_reason(strategy) or model_fallback_reason(model)
    if reason is None and (mode == "on" or device.type == "cuda"):
        return True
    if mode == "on":
        raise ValueError(f"training.vectorize is 'on' but {reason}; use 'auto' or 'off'")
    log.info(
        "training clients sequentially: %s",
        reason or f"vectorize is auto and the device is {device.type}",
    )
    return False


# ---- batch schedule -----------------------------------------------------------------
def batch_sizes(num_samples: int, batch_size: int) -> list[int]:
    """Sizes of the batches :func:`~feddiff.fl.data.epoch_batches` cuts ``num_samples`` into."""
    sizes = [batch_size] * (num_samples // batch_size)
    if num_samples % batch_size:
        sizes.append(num_samples % batch_size)
    if len(sizes) > 1 and sizes[-1] == 1:
        sizes.pop()
    return sizes


def client_stream(
    data: FederatedData, client: int, round: int, seed: int, settings: TrainSettings
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One client's training batches, drawn exactly as the sequential path draws them."""
    gen = client_generator(seed, round, client, data.device)
    for _ in range(settings.local_epochs):
        for idx in epoch_batches(data.clients[client], settings.batch_size, gen):
            yield data.train_batch(idx, settings.augment, gen)


# ---- functional batch norm ------------------------------------------------------------
class _StepScratch:
    """Per-call side channel between the vmapped loss and the batch-norm modules."""

    def __init__(self) -> None:
        self.mask: torch.Tensor | None = None
        self.updates: State = {}


class FunctionalBatchNorm(nn.Module):
    """Batch norm that returns its new running statistics instead of updating in place.

    Same parameter and buffer names as the module it replaces, so ``functional_call``
    with the original state dict keys drives it. In training mode the statistics are
    taken over the samples whose mask is 1 (all of them when no mask is set); the
    running statistics follow ``torch.nn.BatchNorm``: ``(1 - m) r + m s`` with the
    unbiased batch variance, ``m = momentum`` or ``1 / num_batches_tracked`` when
    momentum is None.
    """

    def __init__(self, bn: _BatchNorm, prefix: str, scratch: _StepScratch) -> None:
        super().__init__()
        self.prefix = prefix
        self.eps = bn.eps
        self.momentum = bn.momentum
        self.track_running_stats = bn.track_running_stats
        self._scratch = scratch
        self.weight = bn.weight
        self.bias = bn.bias
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(name, getattr(bn, name, None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and self.running_mean is not None:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        if self._scratch.mask is None:
            # The fused kernel on batch statistics, without running statistics (nothing
            # in place); it also returns the batch mean and 1/sqrt(var + eps), from which
            # the running statistics are updated out of place.
            # The affine part is applied separately: vmap's rule for the backward of a
            # batch norm with a batched weight decomposes into many elementwise ops
            # (measured 6x slower on CPU), while the weight-free one stays fused.
            out, mean, invstd = torch.native_batch_norm(
                x, None, None, None, None, True, 0.0, self.eps
            )
            if self.running_mean is not None:
                invstd = invstd.detach().float()
                var = (1.0 / (invstd * invstd) - self.eps).clamp_min(0.0)
                self._record_running_stats(mean.detach().float(), var, x.numel() // x.shape[1])
            if self.weight is not None:
                shape = [1, -1] + [1] * (x.dim() - 2)
                out = torch.addcmul(self.bias.reshape(shape), out, self.weight.reshape(shape))
            return out
        # A padded batch: statistics over the real samples only, written out.
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()  # statistics in fp32 also under bf16 autocast, as cuDNN does
        mean, var, n = self._batch_stats(xf)
        if self.running_mean is not None:
            self._record_running_stats(mean, var, n)
        out = (xf - mean.reshape(shape)) * torch.rsqrt(var + self.eps).reshape(shape)
        if self.weight is not None:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        return out.to(x.dtype)

    def _batch_stats(self, xf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Any]:
        dims = [0, *range(2, xf.dim())]
        mask = self._scratch.mask
        if mask is None:
            var, mean = torch.var_mean(xf, dim=dims, correction=0)
            return mean, var, xf.numel() // xf.shape[1]
        m = mask.to(xf.dtype).reshape([-1] + [1] * (xf.dim() - 1))
        per_sample = xf[0, 0].numel()
        count = (mask.to(xf.dtype).sum() * per_sample).clamp_min(1.0)
        mean = (xf * m).sum(dims) / count
        centred = xf - mean.reshape([1, -1] + [1] * (xf.dim() - 2))
        var = (centred * centred * m).sum(dims) / count
        return mean, var, count

    def _record_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: Any) -> None:
        tracked = self.num_batches_tracked + 1
        factor: Any = self.momentum if self.momentum is not None else 1.0 / tracked.double()
        if isinstance(n, torch.Tensor):
            unbiased = var * (n / (n - 1.0).clamp_min(1.0))
        else:
            unbiased = var * (n / max(n - 1, 1))
        rm = self.running_mean * (1 - factor) + mean.detach() * factor
        rv = self.running_var * (1 - factor) + unbiased.detach() * factor
        updates = self._scratch.updates
        updates[self.prefix + "running_mean"] = rm.to(self.running_mean.dtype)
        updates[self.prefix + "running_var"] = rv.to(self.running_var.dtype)
        updates[self.prefix + "num_batches_tracked"] = tracked


def functional_template(model: nn.Module, scratch: _StepScratch) -> nn.Module:
    """A copy of ``model`` with every batch norm replaced by :class:`FunctionalBatchNorm`."""
    template = copy.deepcopy(model)
    for name, module in list(template.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, _BatchNorm):
                full = f"{name}.{child_name}" if name else child_name
                setattr(module, child_name, FunctionalBatchNorm(child, full + ".", scratch))
    return template.train()


# ---- SGD ------------------------------------------------------------------------------
def sgd_step_(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    momenta: list[torch.Tensor],
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    first: bool,
) -> None:
    """``torch.optim.SGD``'s step (no dampening, no Nesterov) on stacked tensors, in place.

    The update is elementwise, so applying it to (clients, ...) stacks is every client's
    own step. As in ``torch.optim.SGD``: ``d = g + wd * w``; with momentum the buffer is
    ``d`` itself on the first step and ``m * buf + d`` after; then ``w -= lr * buf``.
    ``grads`` is overwritten.
    """
    if weight_decay != 0:
        torch._foreach_add_(grads, params, alpha=weight_decay)
    step = grads
    if momentum != 0:
        if first:
            torch._foreach_copy_(momenta, grads)
        else:
            torch._foreach_mul_(momenta, momentum)
            torch._foreach_add_(momenta, grads)
        step = momenta
    torch._foreach_add_(params, step, alpha=-lr)


def sgd_update(
    param: torch.Tensor,
    grad_: torch.Tensor,
    buf: torch.Tensor | None,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    first: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The same step out of place: the new parameter and momentum buffer."""
    d_p = grad_.add(param, alpha=weight_decay) if weight_decay != 0 else grad_
    new_buf = None
    if momentum != 0:
        new_buf = d_p.clone() if first or buf is None else buf.mul(momentum).add(d_p)
        d_p = new_buf
    return param.add(d_p, alpha=-lr), new_buf


# ---- the trainer ----------------------------------------------------------------------
def autocast_context(
    settings: TrainSettings, device: torch.device
) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast when ``training.bf16`` is set and the device is CUDA, else nothing."""
    if settings.bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class VectorizedTrainer:
    """Local training of many clients at once for a vectorizable strategy.

    ``compact`` (default): clients are stacked in decreasing order of their step count,
    so the ones still training are always the leading rows; a client that has taken all
    its steps simply drops out of the vmapped call (the state's leading slice shrinks,
    a view, no copy) and its rows are never touched again. With ``compact=False`` every
    client takes part in every step of the chunk and a finished client's steps are
    padded ones whose results ``torch.where`` discards: the same numbers, more compute;
    kept as the reference for the padding logic (tests) and for fixed shapes.
    """

    def __init__(
        self,
        global_model: nn.Module,
        strategy: Strategy,
        settings: TrainSettings,
        device: torch.device,
        compact: bool = True,
    ) -> None:
        self.strategy = strategy
        self.settings = settings
        self.device = device
        self.compact = compact
        self.scratch = _StepScratch()
        self.template = functional_template(global_model, self.scratch)
        self.local = copy.deepcopy(global_model)  # receives each client's final state
        self.anchors: State = {}
        self._grad_fns: dict[bool, Callable[..., Any]] = {}
        self._compile = settings.compile and device.type == "cuda"
        self._channels_last = settings.channels_last and device.type == "cuda"

    # -- the per-client function that vmap lifts over the client axis -------------------
    def _loss(
        self,
        params: State,
        buffers: State,
        x: torch.Tensor,
        y: torch.Tensor,
        mask: torch.Tensor,
        masked: bool,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, State]]:
        self.scratch.mask = mask if masked else None
        self.scratch.updates = {}
        try:
            with autocast_context(self.settings, self.device):
                _, logits = functional_call(self.template, (params, buffers), (x,))
            if masked:
                per_sample = F.cross_entropy(logits.float(), y, reduction="none")
                weights = mask.to(per_sample.dtype)
                loss = (per_sample * weights).sum() / weights.sum().clamp_min(1.0)
            else:
                loss = F.cross_entropy(logits.float(), y)
            loss = self.strategy.vectorized_loss(loss, params, self.anchors)
            new_buffers = dict(self.scratch.updates)
        finally:
            self.scratch.updates = {}
            self.scratch.mask = None
        return loss, (loss.detach(), new_buffers)

    def _grad_fn(self, masked: bool) -> Callable[..., Any]:
        """``vmap(grad(loss))``: per-client gradients, losses and new batch-norm buffers."""
        fn = self._grad_fns.get(masked)
        if fn is None:

            def per_client(
                params: State, buffers: State, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor
            ) -> Any:
                return grad(self._loss, has_aux=True)(params, buffers, x, y, mask, masked)

            fn = vmap(per_client)
            if self._compile:
                fn = torch.compile(fn)
            self._grad_fns[masked] = fn
        return fn

    # -- rounds --------------------------------------------------------------------------
    def supports_round(self, data: FederatedData, clients: Sequence[int]) -> bool:
        """False when a client is too small for the padded schedule (run those sequentially)."""
        return all(data.client_size(c) >= 2 for c in clients)

    def train_round(
        self,
        global_model: nn.Module,
        data: FederatedData,
        clients: Sequence[int],
        round: int,
        seed: int,
    ) -> tuple[list[ClientUpdate], torch.Tensor, list[int]]:
        """Train ``clients``; return their uploads, per-client loss sums (K,) and step counts,
        all in the order of ``clients``."""
        self.anchors = {n: p.detach() for n, p in global_model.named_parameters()}
        bsz, epochs = self.settings.batch_size, self.settings.local_epochs
        steps = {c: epochs * len(batch_sizes(data.client_size(c), bsz)) for c in clients}
        # Longest first: chunks group clients of similar length, and within a chunk the
        # clients still training are the leading rows.
        order = sorted(clients, key=lambda c: -steps[c])
        chunk = self.settings.vectorize_chunk or len(order)
        updates: dict[int, ClientUpdate] = {}
        losses: dict[int, torch.Tensor] = {}
        with torch.no_grad():
            for start in range(0, len(order), chunk):
                part = order[start : start + chunk]
                for client, update, loss in self._train_chunk(
                    global_model, data, part, round, seed
                ):
                    updates[client] = update
                    losses[client] = loss
        return (
            [updates[c] for c in clients],
            torch.stack([losses[c] for c in clients]),
            [steps[c] for c in clients],
        )

    def _train_chunk(
        self,
        global_model: nn.Module,
        data: FederatedData,
        clients: list[int],
        round: int,
        seed: int,
    ) -> list[tuple[int, ClientUpdate, torch.Tensor]]:
        s = self.settings
        k_count, bsz, dev = len(clients), s.batch_size, data.device
        schedules = [batch_sizes(data.client_size(c), bsz) * s.local_epochs for c in clients]
        steps = [len(sched) for sched in schedules]  # non-increasing
        table = [
            [sched[t] if t < len(sched) else 0 for sched in schedules] for t in range(steps[0])
        ]
        sizes_host = torch.tensor(table, dtype=torch.long)
        if dev.type == "cuda":  # pinned + non_blocking: the copy does not wait for the GPU
            sizes_host = sizes_host.pin_memory()
        sizes = sizes_host.to(dev, non_blocking=True)  # the chunk's one host->device copy
        sample_masks = torch.arange(bsz, device=dev)[None, None, :] < sizes[:, :, None]
        active_rows = (sizes > 0).reshape(len(table), k_count, *([1] * 4))

        stacked_params, stacked_buffers = stack_module_state([global_model] * k_count)
        names = list(stacked_params)
        params = [stacked_params[n].detach() for n in names]
        buffers = {k: v.detach() for k, v in stacked_buffers.items()}
        momenta = [torch.zeros_like(p) for p in params] if s.momentum != 0 else []

        c, h, w = data.in_channels, data.image_size, data.image_size
        if self._channels_last:  # each client's (B, C, H, W) slice in NHWC layout
            xbuf = torch.zeros(k_count, bsz, h, w, c, device=dev).permute(0, 1, 4, 2, 3)
        else:
            xbuf = torch.zeros(k_count, bsz, c, h, w, device=dev)
        ybuf = torch.zeros(k_count, bsz, dtype=torch.long, device=dev)
        streams = [client_stream(data, cl, round, seed, s) for cl in clients]
        loss_sum = torch.zeros(k_count, device=dev)
        hyper = dict(lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
        for t, row in enumerate(table):
            n = sum(1 for b in row if b > 0) if self.compact else k_count
            for k in range(n):
                if row[k] == 0:
                    continue
                x, y = next(streams[k])
                if x.shape[0] != row[k]:  # shapes are metadata: no device sync
                    raise RuntimeError(
                        f"vectorised schedule mismatch for client {clients[k]}: "
                        f"batch of {x.shape[0]} where {row[k]} was expected"
                    )
                xbuf[k, : row[k]] = x
                ybuf[k, : row[k]] = y
            masked = any(0 < b < bsz for b in row[:n])
            cur_params = {name: p[:n] for name, p in zip(names, params)}
            cur_buffers = {name: b[:n] for name, b in buffers.items()}
            grads, (loss, new_buffers) = self._grad_fn(masked)(
                cur_params, cur_buffers, xbuf[:n], ybuf[:n], sample_masks[t, :n]
            )
            grad_list = [grads[name] for name in names]
            if all(b > 0 for b in row[:n]):
                sgd_step_(
                    [p[:n] for p in params],
                    grad_list,
                    [m[:n] for m in momenta],
                    first=t == 0,
                    **hyper,
                )
                for name, value in new_buffers.items():
                    buffers[name][:n].copy_(value)
                loss_sum[:n] += loss
            else:  # padded steps (compact=False): finished clients keep their state
                self._masked_update(
                    params,
                    grad_list,
                    momenta,
                    buffers,
                    new_buffers,
                    active_rows[t],
                    first=t == 0,
                    hyper=hyper,
                )
                loss_sum += torch.where(active_rows[t].reshape(-1), loss, torch.zeros_like(loss))

        keys = list(self.local.state_dict())
        out = []
        for k, client in enumerate(clients):
            merged = {name: p[k] for name, p in zip(names, params)}
            merged.update({name: b[k] for name, b in buffers.items()})
            self.local.load_state_dict({key: merged[key] for key in keys})
            ctx = LocalContext(
                client_id=client,
                round=round,
                model=self.local,
                global_model=global_model,
                num_samples=data.client_size(client),
                settings=s,
                num_steps=steps[k],
            )
            out.append((client, self.strategy.finish_client(ctx), loss_sum[k]))
        return out

    @staticmethod
    def _masked_update(
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        momenta: list[torch.Tensor],
        buffers: State,
        new_buffers: State,
        active: torch.Tensor,
        *,
        first: bool,
        hyper: dict[str, float],
    ) -> None:
        """The SGD step and buffer update for active clients only (``active``: (K,1,1,1,1))."""

        def keep(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
            return torch.where(active.reshape(-1, *([1] * (old.dim() - 1))), new, old)

        for i, (p, g) in enumerate(zip(params, grads)):
            new_p, new_buf = sgd_update(p, g, momenta[i] if momenta else None, first=first, **hyper)
            p.copy_(keep(new_p, p))
            if new_buf is not None:
                momenta[i].copy_(keep(new_buf, momenta[i]))
        for name, value in new_buffers.items():
            buffers[name].copy_(keep(value, buffers[name]))


def stacked_state(updates: Sequence[ClientUpdate]) -> Mapping[str, torch.Tensor]:
    """The uploads' weights stacked along a client axis (for tests and diagnostics)."""
    return {k: torch.stack([u.weights[k] for u in updates]) for k in updates[0].weights}
