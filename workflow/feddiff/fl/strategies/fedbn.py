"""FedBN (Li et al., ICLR 2021): batch norm stays local, everything else is FedAvg.

Under feature shift (clients whose images come from different domains) the clients'
batch-norm statistics describe their own domain; averaging them mixes the domains.
FedBN therefore keeps every batch-norm layer's parameters (``weight``, ``bias``) *and*
statistics (``running_mean``, ``running_var``, ``num_batches_tracked``) on the client
and never averages them; all other weights are averaged by sample count, as in FedAvg.

Choices:

* "Batch norm" is every module that is a ``torch.nn.modules.batchnorm._BatchNorm``
  (BatchNorm1d/2d/3d, SyncBatchNorm) in the trained model; its entries of the state dict
  are the local ones (:func:`bn_keys`).
* A client's batch norm is kept on the CPU for clients that have taken part and is in
  :meth:`FedBN.state_dict`, so a resumed run continues exactly (like SCAFFOLD's control
  variates). A client taking part for the first time starts from the global model's
  *initial* batch norm, saved in :meth:`FedBN.setup`.
* Communication counts what FedBN transmits: the non-batch-norm floats, both ways.
* Evaluation as in the paper: every client's own model (the shared weights with the
  client's batch norm; a client that has not taken part yet: the initial batch norm it
  would start from) is tested on the test split of its own domain
  (:meth:`FedBN.evaluation_models`; the weighting rule is in
  :mod:`feddiff.fl.evaluation`). So ``test_acc`` and the per-domain columns of
  ``metrics.csv`` are per-client numbers.
* The saved global model (``model.safetensors``) needs *some* batch norm: it gets the
  sample-weighted mean of the latest batch norm of every client that has taken part.
  This is never sent to a client and is not what the metrics evaluate; it is a
  reasonable start for a new client and keeps the file a complete model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from feddiff.fl.aggregation import count_params, weighted_average
from feddiff.fl.strategy import ClientUpdate, LocalContext, Strategy, register

State = dict[str, torch.Tensor]


def bn_keys(model: nn.Module) -> frozenset[str]:
    """State-dict keys of every batch-norm layer of ``model`` (parameters and buffers)."""
    keys: set[str] = set()
    for prefix, module in model.named_modules():
        if isinstance(module, _BatchNorm):
            head = f"{prefix}." if prefix else ""
            keys.update(head + name for name, _ in module.named_parameters(recurse=False))
            keys.update(head + name for name, _ in module.named_buffers(recurse=False))
    return frozenset(keys)


def _cpu_copy(state: Mapping[str, torch.Tensor], keys: frozenset[str]) -> State:
    return {k: state[k].detach().to("cpu", copy=True) for k in sorted(keys)}


@register("fedbn")
class FedBN(Strategy):
    """Sample-weighted averaging of everything but batch norm, which each client keeps."""

    def __init__(self, params: Any, num_clients: int, num_classes: int) -> None:
        super().__init__(params, num_clients, num_classes)
        self.bn: frozenset[str] = frozenset()
        self.initial_bn: State = {}

    # ---- server ----------------------------------------------------------------
    def setup(self, global_model: nn.Module) -> None:
        self.bn = bn_keys(global_model)
        self.initial_bn = _cpu_copy(global_model.state_dict(), self.bn)

    def _shared(self, state: Mapping[str, torch.Tensor]) -> State:
        return {k: v for k, v in state.items() if k not in self.bn}

    def params_down(self, global_model: nn.Module, client_id: int) -> int:
        return count_params(self._shared(global_model.state_dict()))

    def aggregate(self, global_model: nn.Module, updates: list[ClientUpdate], round: int) -> None:
        shared = weighted_average(
            [self._shared(u.weights) for u in updates], [float(u.num_samples) for u in updates]
        )
        state = global_model.state_dict()
        state.update(shared)
        if self.bn and self.client_states:  # the saved model's batch norm only (module docstring)
            seen = [self.client_states[c] for c in sorted(self.client_states)]
            mean_bn = weighted_average(
                [s["bn"] for s in seen], [float(s["num_samples"]) for s in seen]
            )
            state.update({k: v.to(state[k].device) for k, v in mean_bn.items()})
        global_model.load_state_dict(state)

    # ---- evaluation ----------------------------------------------------------------
    def client_bn(self, client: int) -> State:
        """The batch norm ``client`` trains and is tested with: its own, else the initial one."""
        own = self.client_states.get(client)
        return own["bn"] if own is not None else self.initial_bn

    def evaluation_models(
        self, global_model: nn.Module, scratch: nn.Module
    ) -> Iterator[tuple[int, nn.Module]] | None:
        """Every client's own model: the shared weights with that client's batch norm."""
        return self._client_models(global_model, scratch)

    def _client_models(
        self, global_model: nn.Module, scratch: nn.Module
    ) -> Iterator[tuple[int, nn.Module]]:
        scratch.load_state_dict(global_model.state_dict())
        state = scratch.state_dict()
        for client in range(self.num_clients):
            with torch.no_grad():
                for k, v in self.client_bn(client).items():
                    state[k].copy_(v)
            yield client, scratch

    # ---- client ----------------------------------------------------------------
    def configure_client(self, ctx: LocalContext) -> None:
        """Replace the global batch norm just loaded into the local model by the client's own."""
        bn = self.client_bn(ctx.client_id)
        if not bn:
            return
        state = ctx.model.state_dict()
        with torch.no_grad():
            for k, v in bn.items():
                state[k].copy_(v)

    def finish_client(self, ctx: LocalContext) -> ClientUpdate:
        update = super().finish_client(ctx)
        self.client_states[ctx.client_id] = {
            "bn": _cpu_copy(update.weights, self.bn),
            "num_samples": int(ctx.num_samples),
        }
        update.params_up = count_params(self._shared(update.weights))
        return update

    # ---- checkpointing -------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"client_states": self.client_states, "initial_bn": self.initial_bn}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.initial_bn = {k: v.to("cpu") for k, v in state["initial_bn"].items()}
