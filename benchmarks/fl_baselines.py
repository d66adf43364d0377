"""The alternatives feddiff's engine is measured against (benchmarks only).

* :func:`run_conventional`: the way FL simulations are usually written: every client
  gets a deep copy of the global model, a ``torch.utils.data.Dataset`` with per-sample
  transforms and a fresh ``DataLoader`` each epoch; batches are moved to the device one
  at a time; the server averages ``state_dict`` s weighted by sample counts.
* :func:`run_flower`: the same client code inside Flower's simulation runtime
  (``flwr.simulation.run_simulation`` with the Ray backend, the message API's
  ``FedAvg``, a centralised ``evaluate_fn``). Flower is imported only here, and only
  when this variant runs; it is not a dependency of feddiff.

Both read the benchmark's data file (``np.savez``: uint8 NHWC images, labels, client
index arrays, normalisation mean/std) and use feddiff's model classes, so the model,
data, client sizes and hyperparameters are those of the feddiff variants. Each returns
per-round wall times (training, aggregation and a test-set evaluation, like a feddiff
round) and the final test accuracy.
"""

from __future__ import annotations

import copy
import os
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from feddiff.models import build_model

_CACHE: dict[str, Any] = {}


def load_arrays(path: str) -> dict[str, Any]:
    """The benchmark's data file, loaded once per process."""
    if _CACHE.get("path") != path:
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        num = int(arrays["num_clients"])
        arrays["clients"] = [arrays[f"client_{i}"] for i in range(num)]
        _CACHE.clear()
        _CACHE.update(path=path, arrays=arrays)
    return _CACHE["arrays"]


class ClientDataset(Dataset):
    """Per-sample normalisation, random crop (zero padding) and horizontal flip."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        mean: np.ndarray,
        std: np.ndarray,
        crop_padding: int,
        hflip: bool,
    ) -> None:
        self.x, self.y = x, y
        self.mean = torch.as_tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.as_tensor(std, dtype=torch.float32)[:, None, None]
        self.pad, self.hflip = crop_padding, hflip

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = torch.from_numpy(self.x[i]).permute(2, 0, 1).float().div_(255.0)
        img = (img - self.mean) / self.std
        if self.pad > 0:
            _, h, w = img.shape
            padded = F.pad(img, (self.pad,) * 4)
            oy, ox = (int(v) for v in torch.randint(0, 2 * self.pad + 1, (2,)))
            img = padded[:, oy : oy + h, ox : ox + w]
        if self.hflip and float(torch.rand(())) < 0.5:
            img = img.flip(2)
        return img, int(self.y[i])


def make_model(spec: dict[str, Any], arrays: dict[str, Any]) -> nn.Module:
    x = arrays["x_train"]
    return build_model(
        spec["model"],
        int(arrays["num_classes"]),
        int(x.shape[3]),
        int(x.shape[1]),
        float(spec["width"]),
    )


def local_train(
    model: nn.Module,
    arrays: dict[str, Any],
    client: int,
    spec: dict[str, Any],
    device: torch.device,
) -> int:
    """Conventional local SGD on one client; returns the number of samples it holds."""
    idx = arrays["clients"][client]
    dataset = ClientDataset(
        arrays["x_train"][idx],
        arrays["y_train"][idx],
        arrays["mean"],
        arrays["std"],
        int(spec["crop_padding"]),
        bool(spec["hflip"]),
    )
    bsz = int(spec["batch_size"])
    opt = torch.optim.SGD(
        model.parameters(),
        lr=spec["lr"],
        momentum=spec["momentum"],
        weight_decay=spec["weight_decay"],
    )
    model.train()
    for _ in range(int(spec["local_epochs"])):
        # feddiff drops a trailing batch of one sample (batch norm); do the same
        loader = DataLoader(
            dataset,
            batch_size=bsz,
            shuffle=True,
            num_workers=0,
            drop_last=len(dataset) % bsz == 1 and len(dataset) > bsz,
            pin_memory=device.type == "cuda",
        )
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(model(x)[1], y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return len(dataset)


@torch.no_grad()
def evaluate(
    model: nn.Module, arrays: dict[str, Any], device: torch.device, batch_size: int = 1024
) -> float:
    model.eval()
    if _CACHE.get("test_device") != str(device):
        x = torch.from_numpy(arrays["x_test"]).permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.as_tensor(arrays["mean"], dtype=torch.float32)[None, :, None, None]
        std = torch.as_tensor(arrays["std"], dtype=torch.float32)[None, :, None, None]
        _CACHE["test"] = (
            ((x - mean) / std).to(device),
            torch.from_numpy(arrays["y_test"]).to(device),
        )
        _CACHE["test_device"] = str(device)
    x, y = _CACHE["test"]
    correct = torch.zeros((), device=device)
    for start in range(0, len(y), batch_size):
        logits = model(x[start : start + batch_size])[1]
        correct += (logits.argmax(1) == y[start : start + batch_size]).sum()
    return float(correct) / len(y)


def weighted_state_average(
    states: list[dict[str, torch.Tensor]], weights: list[float]
) -> dict[str, torch.Tensor]:
    total = float(sum(weights))
    out = {}
    for key, ref in states[0].items():
        if ref.is_floating_point():
            out[key] = sum(s[key] * (w / total) for s, w in zip(states, weights))
        else:
            out[key] = states[int(np.argmax(weights))][key].clone()
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_conventional(spec: dict[str, Any]) -> dict[str, Any]:
    device = torch.device(spec["device"])
    arrays = load_arrays(spec["data"])
    torch.manual_seed(int(spec["seed"]))
    global_model = make_model(spec, arrays).to(device)
    round_seconds = []
    acc = float("nan")
    for _ in range(int(spec["rounds"])):
        tic = time.perf_counter()
        states, weights = [], []
        for client in range(len(arrays["clients"])):
            local = copy.deepcopy(global_model)
            weights.append(float(local_train(local, arrays, client, spec, device)))
            states.append(local.state_dict())
        global_model.load_state_dict(weighted_state_average(states, weights))
        acc = evaluate(global_model, arrays, device)
        _sync(device)
        round_seconds.append(time.perf_counter() - tic)
    return {"round_seconds": round_seconds, "final_acc": acc}


# ---- Flower -----------------------------------------------------------------------------
_FLOWER: dict[str, Any] = {"eval_times": [], "accs": []}


def _flower_spec() -> dict[str, Any]:
    import json

    return json.loads(os.environ["FEDDIFF_BENCH_SPEC"])


def build_flower_apps() -> tuple[Any, Any]:
    """Flower ClientApp and ServerApp running the conventional client and FedAvg."""
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg

    client_app = ClientApp()

    @client_app.train()
    def train(msg: Message, context: Context) -> Message:
        spec = _flower_spec()
        torch.set_num_threads(int(spec["flower_cpus_per_client"]))
        device = torch.device(spec["device"])
        arrays = load_arrays(spec["data"])
        client = int(context.node_config["partition-id"])
        model = make_model(spec, arrays).to(device)
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        n = local_train(model, arrays, client, spec, device)
        gpu_peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
        content = RecordDict(
            {
                "arrays": ArrayRecord(model.state_dict()),
                "metrics": MetricRecord({"num-examples": n, "gpu-peak-bytes": int(gpu_peak)}),
            }
        )
        return Message(content=content, reply_to=msg)

    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        spec = _flower_spec()
        device = torch.device(spec["device"])
        arrays = load_arrays(spec["data"])
        torch.manual_seed(int(spec["seed"]))
        model = make_model(spec, arrays).to(device)
        k = len(arrays["clients"])

        def central_eval(server_round: int, record: ArrayRecord) -> MetricRecord:
            model.load_state_dict(record.to_torch_state_dict())
            acc = evaluate(model, arrays, device)
            _sync(device)
            _FLOWER["eval_times"].append(time.perf_counter())
            _FLOWER["accs"].append(acc)
            return MetricRecord({"accuracy": acc})

        def peak_of_clients(records: list[RecordDict], weight_key: str) -> MetricRecord:
            # the largest client peak, not FedAvg's default sample-weighted mean
            peaks = [
                float(m.get("gpu-peak-bytes", 0))
                for r in records
                for m in r.metric_records.values()
            ]
            return MetricRecord({"gpu-peak-bytes": max(peaks, default=0.0)})

        strategy = FedAvg(
            fraction_train=1.0,
            fraction_evaluate=0.0,
            min_train_nodes=k,
            min_available_nodes=k,
            train_metrics_aggr_fn=peak_of_clients,
        )
        result = strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(model.state_dict()),
            num_rounds=int(spec["rounds"]),
            evaluate_fn=central_eval,
        )
        peaks = [float(m.get("gpu-peak-bytes", 0)) for m in result.train_metrics_clientapp.values()]
        _FLOWER["client_gpu_peak_bytes"] = max(peaks, default=0.0)

    return client_app, server_app


def run_flower(spec: dict[str, Any]) -> dict[str, Any]:
    import json

    import flwr
    from flwr.simulation import run_simulation

    os.environ["FEDDIFF_BENCH_SPEC"] = json.dumps(spec)  # inherited by Ray's workers
    arrays = load_arrays(spec["data"])
    client_app, server_app = build_flower_apps()
    cpus = int(spec["flower_cpus_per_client"])
    gpus = float(spec.get("flower_gpus_per_client", 0.0)) if spec["device"] != "cpu" else 0.0
    backend_config = {
        "client_resources": {"num_cpus": cpus, "num_gpus": gpus},
        "init_args": {"num_cpus": int(spec["threads"]), "include_dashboard": False},
    }
    _FLOWER["eval_times"].clear()
    start = time.perf_counter()
    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=len(arrays["clients"]),
        backend_name="ray",
        backend_config=backend_config,
    )
    times = _FLOWER["eval_times"]
    if len(times) != int(spec["rounds"]) + 1:
        raise RuntimeError(f"Flower ran {len(times) - 1} of {spec['rounds']} rounds")
    return {
        "round_seconds": list(np.diff(times)),
        "final_acc": _FLOWER["accs"][-1],
        "startup_seconds": times[0] - start,
        "flwr_version": flwr.__version__,
        "backend": f"ray (flwr.simulation.run_simulation), {cpus} CPU(s) per client"
        + (f", {gpus} GPU per client" if gpus else ""),
        "client_gpu_peak_bytes": _FLOWER.get("client_gpu_peak_bytes", 0.0),
    }
