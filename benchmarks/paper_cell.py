"""One paper-scale cell end to end: FedAvg, ResNet-10, CIFAR-10 (GPU).

The FedDifRC main-table setting (config/paper/feddifrc_baselines.yaml): 10 clients of
5,000 CIFAR-10 training images (an iid split of the 50,000), 5 sampled per round, 50
rounds, 10 local epochs, batch 64, SGD lr 0.01 / momentum 0.9 / wd 1e-5, random crop
(padding 4) and horizontal flip, a test-set evaluation after every round: 12.5 M image
passes through ResNet-10. Timed from data on the device to the last evaluation.

    python benchmarks/paper_cell.py --device cuda --cifar-root ../shared/datasets/cifar10 \\
        --vectorize on --bf16 --channels-last --out benchmarks/results/paper_cell_gpu.csv

``--scale s`` multiplies rounds, local epochs and images per client (each at least 1)
for a quick check; ``--scale 0.002 --dataset synthetic --width 0.125 --device cpu`` runs
in seconds on a CPU (the test suite's smoke run). Results are appended to ``--out`` (CSV)
with the date, device and versions; nothing is written without ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "workflow"))

PAPER = {"rounds": 50, "local_epochs": 10, "images_per_client": 5000}


def load_arrays(args: argparse.Namespace, n_train: int) -> tuple[Any, Any, Any, Any, int]:
    import numpy as np

    if args.dataset == "synthetic":
        rng = np.random.default_rng(args.seed)
        n_test = max(10, int(10000 * args.scale))
        return (
            rng.integers(0, 256, size=(n_train, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, 10, size=n_train),
            rng.integers(0, 256, size=(n_test, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, 10, size=n_test),
            10,
        )
    if args.h5:
        from feddiff.data.h5 import load_dataset

        arrays = load_dataset(args.h5)
    else:
        from feddiff.data.imagefolder import load_imagefolder

        per_class = -(-n_train // 10) if args.scale < 1 else None
        arrays = load_imagefolder(root=args.cifar_root, max_train_per_class=per_class)
    return arrays.x_train, arrays.y_train, arrays.x_test, arrays.y_test, int(arrays.num_classes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cuda")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--dataset", default="cifar10", choices=["cifar10", "synthetic"])
    p.add_argument("--cifar-root", default=str(REPO.parent / "shared" / "datasets" / "cifar10"))
    p.add_argument(
        "--h5", default="", help="a prepared dataset file (results/data/cifar10.h5) instead"
    )
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--num-clients", type=int, default=10)
    p.add_argument("--clients-per-round", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--vectorize", default="on", choices=["auto", "on", "off"])
    p.add_argument("--vectorize-chunk", type=int, default=0)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="", help="CSV to append the result row to")
    p.add_argument("--date", default=dt.date.today().isoformat())
    p.add_argument("--device-label", default="")
    args = p.parse_args(argv)
    if not 0 < args.scale <= 1:
        p.error("--scale must be in (0, 1]")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import numpy as np
    import torch

    from feddiff.fl.data import FederatedData
    from feddiff.fl.engine import run_federated
    from feddiff.fl.settings import TrainSettings
    from feddiff.fl.strategy import build_strategy
    from feddiff.models import build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    rounds = max(1, round(PAPER["rounds"] * args.scale))
    epochs = max(1, round(PAPER["local_epochs"] * args.scale))
    per_client = max(2, round(PAPER["images_per_client"] * args.scale))
    n_train = per_client * args.num_clients
    t_load = time.perf_counter()
    x_train, y_train, x_test, y_test, num_classes = load_arrays(args, n_train)
    if len(y_train) < n_train:
        raise SystemExit(f"{n_train} training images needed, the data has {len(y_train)}")
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(y_train))[:n_train]
    clients = [
        np.sort(perm[i * per_client : (i + 1) * per_client]) for i in range(args.num_clients)
    ]
    device = torch.device(args.device)
    data = FederatedData.from_arrays(x_train, y_train, x_test, y_test, clients, num_classes, device)
    load_seconds = time.perf_counter() - t_load
    settings = TrainSettings.from_dict(
        {
            "model": "resnet10",
            "width": args.width,
            "rounds": rounds,
            "clients_per_round": args.clients_per_round,
            "local_epochs": epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "momentum": 0.9,
            "weight_decay": 1e-5,
            "augment": {"crop_padding": 4, "hflip": True},
            "eval_batch_size": 2000,
            "device": args.device,
            "vectorize": args.vectorize,
            "vectorize_chunk": args.vectorize_chunk,
            "bf16": args.bf16,
            "channels_last": args.channels_last,
            "compile": args.compile,
        }
    )
    torch.manual_seed(args.seed)
    model = build_model("resnet10", num_classes, data.in_channels, data.image_size, args.width).to(
        device
    )
    strategy = build_strategy(
        {"strategy": "fedavg"}, num_clients=args.num_clients, num_classes=num_classes
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.cuda.synchronize(device)
    tic = time.perf_counter()
    _, rows = run_federated(data, model, strategy, settings, seed=args.seed, progress=True)
    total = time.perf_counter() - tic
    images = rounds * args.clients_per_round * epochs * per_client
    result = {
        "date": args.date,
        "device": args.device_label
        or (
            torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else f"CPU ({platform.machine()})"
        ),
        "torch": torch.__version__,
        "scale": args.scale,
        "rounds": rounds,
        "local_epochs": epochs,
        "images_per_client": per_client,
        "clients_per_round": args.clients_per_round,
        "width": args.width,
        "dataset": args.dataset,
        "vectorize": args.vectorize,
        "bf16": args.bf16,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "data_load_seconds": round(load_seconds, 3),
        "train_seconds": round(total, 3),
        "seconds_per_round": round(total / rounds, 4),
        "images_per_second": round(images / total, 1),
        "final_test_acc": rows[-1]["test_acc"],
        "gpu_peak_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        if device.type == "cuda"
        else "",
    }
    print(json.dumps(result, indent=2))
    if args.out:
        out = Path(args.out)
        new = not out.exists()
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(result))
            if new:
                writer.writeheader()
            writer.writerow(result)
    return result


if __name__ == "__main__":
    main()
