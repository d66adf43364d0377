"""FedAvg round throughput: feddiff (vectorised, sequential) vs a conventional loop vs Flower.

Every variant trains the same model on the same data, client sizes, local epochs, batch
size and SGD hyperparameters, and a round is the same work everywhere: every client's
local training, the sample-weighted average and an evaluation on the test split.
Each variant runs in its own process (so its peak memory is its own), in the order
given, ``--repeats`` times in alternating order; the first ``--warmup-rounds`` rounds
of each run are not timed.

    python benchmarks/round_throughput.py                       # CPU, digits, small CNN
    python benchmarks/round_throughput.py --tiny --variants vectorized,sequential
    python benchmarks/round_throughput.py --device cuda --model resnet10 --dataset cifar10 \\
        --cifar-root ../shared/datasets/cifar10 --clients 5 --samples-per-client 5000 \\
        --local-epochs 1 --batch-size 64 --lr 0.01 --crop-padding 4 --hflip --rounds 3

Reported per variant: seconds per round (mean of the timed rounds), images per second
(local training samples per round / seconds per round), the ratio of its throughput to
every other variant of the same run, process-tree CPU seconds, peak memory (CPU: the
worker's peak RSS and the peak summed PSS of its whole process tree, Ray's processes
included; CUDA: ``torch.cuda.max_memory_allocated``) and the final test accuracy (a
sanity check: the variants draw different random batches, so accuracies differ a bit).

Flower (``flwr[simulation]``) is optional: with ``--flower-python`` pointing at an
interpreter that has it (e.g. a separate benchmark venv), the ``flower`` variant runs
there; when ``import flwr, ray`` fails, the variant is reported as skipped.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "workflow")]

VARIANTS = ("vectorized", "sequential", "conventional", "flower")
LABELS = {
    "vectorized": "feddiff, vectorize: on (vmap over clients)",
    "sequential": "feddiff, vectorize: off (one client at a time)",
    "conventional": "conventional loop (deepcopy + DataLoader)",
    "flower": "Flower simulation (Ray)",
}


# ---- data ---------------------------------------------------------------------------------
def _client_sizes(args: argparse.Namespace, n_train: int) -> list[int]:
    if args.client_sizes:
        sizes = [int(s) for s in args.client_sizes.split(",")]
    elif args.samples_per_client:
        sizes = [args.samples_per_client] * args.clients
    else:  # uneven by default: shares 1 : 1.5 : 2 : 2.5 : 3 : ...
        shares = [1.0 + 0.5 * i for i in range(args.clients)]
        sizes = [int(n_train * s / sum(shares)) for s in shares]
    if sum(sizes) > n_train:
        raise SystemExit(
            f"client sizes {sizes} need {sum(sizes)} training images; the data has {n_train}"
        )
    return sizes


def build_data(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    """Write the benchmark's data file; return a description of it."""
    import numpy as np

    rng = np.random.default_rng(args.seed)
    if args.dataset == "digits":
        from feddiff.data.digits import load_digits_source

        arrays = load_digits_source(test_fraction=0.25, split_seed=0)
        x_train, y_train, x_test, y_test = (
            arrays.x_train,
            arrays.y_train,
            arrays.x_test,
            arrays.y_test,
        )
        num_classes = 10
    elif args.dataset == "cifar10":
        from feddiff.data.imagefolder import load_imagefolder

        per_class = None
        if args.samples_per_client or args.client_sizes:
            need = sum(_client_sizes(args, 10**9))
            per_class = -(-need // 10)
        arrays = load_imagefolder(
            root=args.cifar_root,
            max_train_per_class=per_class,
            max_test_per_class=args.test_per_class,
        )
        x_train, y_train, x_test, y_test = (
            arrays.x_train,
            arrays.y_train,
            arrays.x_test,
            arrays.y_test,
        )
        num_classes = len(arrays.class_names)
    else:  # synthetic: uniform noise images; labels carry no signal (throughput only)
        side, ch, num_classes = args.image_size, args.channels, 10
        n_train = (
            sum(_client_sizes(args, 10**9))
            if (args.samples_per_client or args.client_sizes)
            else 2000
        )
        x_train = rng.integers(0, 256, size=(n_train, side, side, ch), dtype=np.uint8)
        y_train = rng.integers(0, num_classes, size=n_train)
        x_test = rng.integers(
            0, 256, size=(args.test_per_class * num_classes, side, side, ch), dtype=np.uint8
        )
        y_test = rng.integers(0, num_classes, size=len(x_test))
    sizes = _client_sizes(args, len(y_train))
    perm = rng.permutation(len(y_train))
    cuts = np.cumsum([0] + sizes)
    clients = [np.sort(perm[cuts[i] : cuts[i + 1]]) for i in range(len(sizes))]
    scaled = x_train.astype(np.float32) / 255.0
    mean = scaled.mean(axis=(0, 1, 2))
    std = np.maximum(scaled.std(axis=(0, 1, 2), ddof=1), 1e-3)
    np.savez(
        path,
        x_train=x_train,
        y_train=y_train.astype(np.int64),
        x_test=x_test,
        y_test=y_test.astype(np.int64),
        mean=mean,
        std=std,
        num_classes=num_classes,
        num_clients=len(sizes),
        **{f"client_{i}": c for i, c in enumerate(clients)},
    )
    return {
        "sizes": sizes,
        "image_shape": list(x_train.shape[1:]),
        "n_test": int(len(y_test)),
        "num_classes": int(num_classes),
    }


def images_per_round(sizes: list[int], batch_size: int, epochs: int) -> int:
    """Training samples one round processes (feddiff drops a trailing 1-sample batch)."""
    total = 0
    for n in sizes:
        drop = 1 if n % batch_size == 1 and n > batch_size else 0
        total += epochs * (n - drop)
    return total


# ---- workers (one process per variant) ----------------------------------------------------
def _feddiff_worker(spec: dict[str, Any], vectorize: str) -> dict[str, Any]:
    import numpy as np
    import torch

    from feddiff.fl.data import FederatedData
    from feddiff.fl.engine import run_federated
    from feddiff.fl.settings import TrainSettings
    from feddiff.fl.strategy import build_strategy
    from feddiff.models import build_model

    device = torch.device(spec["device"])
    with np.load(spec["data"]) as f:
        arrays = {k: f[k] for k in f.files}
    clients = [arrays[f"client_{i}"] for i in range(int(arrays["num_clients"]))]
    data = FederatedData.from_arrays(
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_test"],
        arrays["y_test"],
        clients,
        int(arrays["num_classes"]),
        device,
    )
    settings = TrainSettings.from_dict(
        {
            "model": spec["model"],
            "width": spec["width"],
            "rounds": spec["rounds"],
            "clients_per_round": len(clients),
            "local_epochs": spec["local_epochs"],
            "batch_size": spec["batch_size"],
            "lr": spec["lr"],
            "momentum": spec["momentum"],
            "weight_decay": spec["weight_decay"],
            "augment": {"crop_padding": spec["crop_padding"], "hflip": spec["hflip"]},
            "device": spec["device"],
            "vectorize": vectorize,
            "vectorize_chunk": spec["vectorize_chunk"],
            "bf16": spec["bf16"],
            "channels_last": spec["channels_last"],
            "compile": spec["compile"],
        }
    )
    torch.manual_seed(int(spec["seed"]))
    model = build_model(
        spec["model"], data.num_classes, data.in_channels, data.image_size, spec["width"]
    ).to(device)
    strategy = build_strategy(
        {"strategy": "fedavg"}, num_clients=len(clients), num_classes=data.num_classes
    )
    _, rows = run_federated(data, model, strategy, settings, seed=int(spec["seed"]), progress=False)
    return {"round_seconds": [r["seconds"] for r in rows], "final_acc": rows[-1]["test_acc"]}


def worker_main(variant: str, spec_path: str, out_path: str) -> None:
    t0 = time.perf_counter()
    spec = json.loads(Path(spec_path).read_text())
    import torch

    torch.set_num_threads(int(spec["threads"]))
    if variant in ("vectorized", "sequential"):
        result = _feddiff_worker(spec, "on" if variant == "vectorized" else "off")
    elif variant == "conventional":
        from fl_baselines import run_conventional

        result = run_conventional(spec)
    elif variant == "flower":
        from fl_baselines import run_flower

        result = run_flower(spec)
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    result["total_seconds"] = time.perf_counter() - t0
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if spec["device"].startswith("cuda"):
        result["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        if result.get("client_gpu_peak_bytes"):
            result["gpu_peak_mb"] = max(
                result["gpu_peak_mb"], result["client_gpu_peak_bytes"] / 2**20
            )
    result["torch_version"] = torch.__version__
    result["python"] = sys.executable
    Path(out_path).write_text(json.dumps(result))


# ---- parent -------------------------------------------------------------------------------
class TreeMonitor(threading.Thread):
    """Peak summed PSS and last-seen CPU times of a process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_pss_mb = float("nan")
        self.cpu: dict[int, float] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        self.peak_pss_mb = 0.0
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop_event.is_set():
            total = 0.0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for p in procs:
                try:
                    mem = p.memory_full_info()
                    total += getattr(mem, "pss", mem.rss)
                    t = p.cpu_times()
                    self.cpu[p.pid] = t.user + t.system
                except psutil.Error:
                    continue
            self.peak_pss_mb = max(self.peak_pss_mb, total / 2**20)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def flower_available(python: str) -> tuple[bool, str]:
    probe = subprocess.run(
        [python, "-c", "import flwr, ray; print(flwr.__version__, ray.__version__)"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return (
            False,
            f"flwr[simulation] is not installed in {python} (pip install 'flwr[simulation]')",
        )
    flwr_v, ray_v = probe.stdout.split()
    return True, f"flwr {flwr_v}, ray {ray_v} ({python})"


def run_variant(
    variant: str, spec: dict[str, Any], python: str, workdir: Path, timeout: float
) -> dict[str, Any]:
    spec_path = workdir / f"spec_{variant}.json"
    out_path = workdir / f"result_{variant}.json"
    out_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), str(REPO / "workflow"), env.get("PYTHONPATH", "")]
    )
    env.setdefault("RAY_DEDUP_LOGS", "0")
    cmd = [
        python,
        str(Path(__file__).resolve()),
        "--worker",
        variant,
        "--spec",
        str(spec_path),
        "--result",
        str(out_path),
    ]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    monitor = TreeMonitor(proc.pid)
    monitor.start()
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        monitor.stop()
        return {"error": f"timed out after {timeout:.0f} s", "log": output[-2000:]}
    monitor.stop()
    if proc.returncode != 0 or not out_path.exists():
        return {"error": f"exit code {proc.returncode}", "log": output[-3000:]}
    result = json.loads(out_path.read_text())
    result["tree_peak_pss_mb"] = monitor.peak_pss_mb
    result["tree_cpu_seconds"] = sum(monitor.cpu.values()) if monitor.cpu else float("nan")
    return result


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def summarise(variant: str, runs: list[dict[str, Any]], warmup: int, images: int) -> dict[str, Any]:
    timed = [s for r in runs for s in r["round_seconds"][warmup:]]
    sec = _mean(timed)
    row = {
        "variant": variant,
        "description": LABELS[variant],
        "runs": len(runs),
        "timed_rounds": len(timed),
        "seconds_per_round": sec,
        "seconds_per_round_min": min(timed) if timed else float("nan"),
        "images_per_second": images / sec if sec == sec and sec > 0 else float("nan"),
        "total_seconds_per_run": _mean([r["total_seconds"] for r in runs]),
        "tree_cpu_seconds_per_run": _mean([r["tree_cpu_seconds"] for r in runs]),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "tree_peak_pss_mb": max(r["tree_peak_pss_mb"] for r in runs),
        "gpu_peak_mb": max(
            (r.get("gpu_peak_mb", float("nan")) for r in runs), default=float("nan")
        ),
        "final_test_acc": _mean([r["final_acc"] for r in runs]),
        "note": runs[0].get("backend", ""),
    }
    return row


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        if value != value:
            return "n/a"
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def write_report(
    rows: list[dict[str, Any]],
    skipped: dict[str, str],
    meta: dict[str, Any],
    out_dir: Path,
    tag: str,
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    measured = [r for r in rows if "images_per_second" in r]
    for r in measured:
        for other in measured:
            r[f"ratio_vs_{other['variant']}"] = r["images_per_second"] / other["images_per_second"]
    csv_path = out_dir / f"{tag}.csv"
    fields = list(dict.fromkeys(k for r in measured for k in r))
    meta_cols = {
        "date": meta["date"],
        "device": meta["device_label"],
        "torch": meta["torch"],
        "flwr": meta["flwr"],
    }
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*meta_cols, *fields])
        writer.writeheader()
        for r in measured:
            writer.writerow({**meta_cols, **{k: r.get(k, "") for k in fields}})
    md = [f"# FedAvg round throughput ({tag})", ""]
    md += [f"- {k}: {v}" for k, v in meta.items() if k != "command"]
    md += [f"- command: `{meta['command']}`", ""]
    names = [r["variant"] for r in measured]
    head = [
        "variant",
        "s/round",
        "images/s",
        *[f"x vs {n}" for n in names],
        "CPU s/run (tree)",
        "peak RSS MB",
        "peak PSS MB (tree)",
        "GPU peak MB",
        "test acc",
    ]
    md += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in measured:
        cells = [
            f"{r['variant']} ({r['description']})",
            _fmt(r["seconds_per_round"]),
            _fmt(r["images_per_second"]),
            *[_fmt(r[f"ratio_vs_{n}"], 3) for n in names],
            _fmt(r["tree_cpu_seconds_per_run"]),
            _fmt(r["peak_rss_mb"]),
            _fmt(r["tree_peak_pss_mb"]),
            _fmt(r["gpu_peak_mb"]),
            _fmt(r["final_test_acc"]),
        ]
        md.append("| " + " | ".join(cells) + " |")
    md.append("")
    md.append(
        "`x vs B` = this row's images/s divided by B's (same run). s/round is the mean over "
        "the timed rounds (warm-up rounds excluded) of training + weighted averaging + test "
        "evaluation. CPU s/run (tree) is the CPU time of the variant's whole process tree, "
        "start-up included. Peak RSS is the worker process's own; peak PSS sums the "
        "proportional set size of the worker and all its descendants (Ray's processes)."
    )
    for variant, reason in skipped.items():
        md.append(f"\n- {variant}: skipped, {reason}")
    for r in measured:
        if r.get("note"):
            md.append(f"\n- {r['variant']}: {r['note']}")
    md_path = out_dir / f"{tag}.md"
    md_path.write_text("\n".join(md) + "\n")
    return csv_path, md_path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--model", default="cnn", choices=["cnn", "resnet10"])
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--dataset", default="digits", choices=["digits", "cifar10", "synthetic"])
    p.add_argument("--cifar-root", default=str(REPO.parent / "shared" / "datasets" / "cifar10"))
    p.add_argument("--image-size", type=int, default=32, help="synthetic data: side length")
    p.add_argument("--channels", type=int, default=3, help="synthetic data: channels")
    p.add_argument("--test-per-class", type=int, default=100)
    p.add_argument("--clients", type=int, default=5)
    p.add_argument(
        "--samples-per-client", type=int, default=0, help="equal sizes (default: uneven)"
    )
    p.add_argument("--client-sizes", default="", help="comma-separated sizes, overrides the above")
    p.add_argument("--local-epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--crop-padding", type=int, default=1)
    p.add_argument("--hflip", action="store_true")
    p.add_argument("--rounds", type=int, default=4, help="timed rounds per run")
    p.add_argument("--warmup-rounds", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1, help="runs per variant, alternating order")
    p.add_argument("--threads", type=int, default=2, help="torch threads (and Ray CPUs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument(
        "--flower-python",
        default=sys.executable,
        help="interpreter with flwr[simulation] installed (default: this one)",
    )
    p.add_argument("--flower-cpus-per-client", type=int, default=1)
    p.add_argument("--flower-gpus-per-client", type=float, default=0.2)
    p.add_argument("--vectorize-chunk", type=int, default=0)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per variant run")
    p.add_argument("--out-dir", default=str(HERE / "results"))
    p.add_argument("--tag", default="", help="result file name (default from device/model/dataset)")
    p.add_argument("--date", default=dt.date.today().isoformat())
    p.add_argument("--device-label", default="")
    p.add_argument("--tiny", action="store_true", help="smallest setting (smoke test)")
    p.add_argument("--worker", default="", help=argparse.SUPPRESS)
    p.add_argument("--spec", default="", help=argparse.SUPPRESS)
    p.add_argument("--result", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tiny:
        args.dataset, args.image_size, args.channels, args.test_per_class = "synthetic", 8, 1, 4
        args.client_sizes, args.width, args.local_epochs, args.batch_size = "20,33,47", 0.25, 1, 16
        args.rounds, args.warmup_rounds = 1, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.spec, args.result)
        return 0
    import torch

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    skipped: dict[str, str] = {}
    flwr_version = "not installed"
    if "flower" in variants:
        ok, message = flower_available(args.flower_python)
        if ok:
            flwr_version = message
        else:
            skipped["flower"] = message
            variants.remove("flower")
            print(f"flower: skipped, {message}", flush=True)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="feddiff-bench-") as tmp:
        workdir = Path(tmp)
        data_path = workdir / "data.npz"
        info = build_data(args, data_path)
        images = images_per_round(info["sizes"], args.batch_size, args.local_epochs)
        spec = {
            "data": str(data_path),
            "device": args.device,
            "model": args.model,
            "width": args.width,
            "rounds": args.rounds + args.warmup_rounds,
            "local_epochs": args.local_epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "momentum": args.momentum,
            "weight_decay": args.weight_decay,
            "crop_padding": args.crop_padding,
            "hflip": args.hflip,
            "seed": args.seed,
            "threads": args.threads,
            "vectorize_chunk": args.vectorize_chunk,
            "bf16": args.bf16,
            "channels_last": args.channels_last,
            "compile": args.compile,
            "flower_cpus_per_client": args.flower_cpus_per_client,
            "flower_gpus_per_client": args.flower_gpus_per_client,
        }
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for rep in range(args.repeats):
            order = variants if rep % 2 == 0 else variants[::-1]
            for variant in order:
                python = args.flower_python if variant == "flower" else sys.executable
                print(f"[{rep + 1}/{args.repeats}] {variant} ...", flush=True)
                result = run_variant(variant, spec, python, workdir, args.timeout)
                if "error" in result:
                    print(f"{variant} failed: {result['error']}\n{result['log']}", flush=True)
                    skipped[variant] = f"failed: {result['error']}"
                    continue
                runs[variant].append(result)
                print(f"  rounds: {[round(s, 3) for s in result['round_seconds']]}", flush=True)
    rows = [summarise(v, runs[v], args.warmup_rounds, images) for v in variants if runs[v]]
    load_end = os.getloadavg()
    device_label = args.device_label or (
        torch.cuda.get_device_name(0)
        if args.device.startswith("cuda")
        else f"CPU ({platform.processor() or platform.machine()})"
    )
    meta = {
        "date": args.date,
        "device_label": device_label,
        "torch": torch.__version__,
        "flwr": flwr_version,
        "python": platform.python_version(),
        "threads": args.threads,
        "load average (1 min) before / after": f"{load[0]:.2f} / {load_end[0]:.2f}",
        "model": f"{args.model} (width {args.width})",
        "data": f"{args.dataset}, images {info['image_shape']}, {info['n_test']} test images",
        "clients": f"{len(info['sizes'])}, sizes {info['sizes']}, all trained every round",
        "local training": (
            f"{args.local_epochs} epoch(s), batch {args.batch_size}, SGD lr {args.lr} "
            f"momentum {args.momentum} wd {args.weight_decay}, crop padding "
            f"{args.crop_padding}, hflip {args.hflip}"
        ),
        "images per round": images,
        "rounds": (
            f"{args.warmup_rounds} warm-up + {args.rounds} timed per run, "
            f"{args.repeats} run(s) per variant"
        ),
        "command": "python "
        + shlex.join(
            [os.path.relpath(__file__, REPO), *(argv if argv is not None else sys.argv[1:])]
        ),
    }
    tag = args.tag or f"round_throughput_{args.device.split(':')[0]}_{args.model}_{args.dataset}"
    if rows:
        csv_path, md_path = write_report(rows, skipped, meta, Path(args.out_dir), tag)
        print(md_path.read_text())
        print(f"wrote {csv_path} and {md_path}")
    else:
        print("no variant ran")
    for variant, reason in skipped.items():
        print(f"{variant}: skipped, {reason}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
