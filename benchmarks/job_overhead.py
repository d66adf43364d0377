"""What a pipeline job costs besides its work: a 1-round FedAvg ``train`` job end to end,
and the import cost of every stage's entry module.

Each Snakemake job is a fresh ``python -m feddiff <stage>`` process, so what it pays
before and after its own work (interpreter, imports, reading inputs, provenance, writes)
is paid once per job: 67 times for the classifier runs of the default config. This
script measures that, each sample in its own process, as the median of ``--repeats``:

* ``train``: ``python -m feddiff train`` on the digits (the default config's FedAvg
  settings, ``dir0.5`` partition, seed 1, ``--threads 1`` as the rules run it) for
  ``--rounds`` rounds (default 1): job wall time, its CPU time (user + system, less
  sensitive to the load of a shared machine), the rounds' own time (the ``seconds``
  column of its metrics.csv) and the difference, the fixed cost.
* ``imports``: for each stage's entry module (what ``feddiff/cli.py`` imports for the
  stage), the interpreter start (``python -c pass``), ``import torch`` and the module
  itself after torch, in one fresh interpreter each, plus which heavy packages it
  leaves loaded (diffusers, transformers, matplotlib, sklearn, pandas, torch's compiler).

Several code trees can be compared in one session, their samples alternating (the
machine's load drifts, so "before" and "after" must share it), e.g. a copy of the
previous commit's ``workflow/`` against the working tree::

    python benchmarks/job_overhead.py                        # this tree, 5 repeats
    python benchmarks/job_overhead.py --trees before=/tmp/old/workflow,after=workflow \\
        --repeats 5 --parts train
    python benchmarks/job_overhead.py --parts imports --stages train,diffuse-train
    python benchmarks/job_overhead.py --parts train --preload  # also through a server

``--preload`` adds, per tree, the same job run by a worker of that tree's preload server
(``feddiff.preload``, as a local Snakemake run does); its CPU time is the client's plus
the worker's own (the last line the worker writes).

The digits dataset and partition are prepared once in a temporary folder with the
first tree (``--data`` / ``--partition`` take existing ones). Nothing is asserted:
the numbers depend on the machine and its load; the command, date, CPU count and load
average are printed with them.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))  # feddiff.preload: standard library only

from feddiff import preload  # noqa: E402

#: Entry module of each stage, as ``feddiff/cli.py`` imports it.
STAGES = {
    "prepare": "feddiff.data.prepare",
    "partition": "feddiff.stages",
    "train": "feddiff.fl.run",
    "fid-classifier": "feddiff.diffusion.fid_classifier",
    "diffuse-train": "feddiff.diffusion.run",
    "generate-auxiliary": "feddiff.auxiliary.generate",
    "extract-features": "feddiff.features.extract",
    "feature-figures": "feddiff.features.figures",
    "diffuse-report": "feddiff.diffusion.report",
    "report": "feddiff.report",
}
HEAVY = ("diffusers", "transformers", "matplotlib", "sklearn", "pandas", "torch._dynamo")
DATASET = {"source": "digits", "test_fraction": 0.25, "split_seed": 0}
PARTITION = {"scheme": "dirichlet", "num_clients": 10, "alpha": 0.5}
TRAINING = {
    "augment": {"crop_padding": 0, "hflip": False},
    "batch_size": 32,
    "checkpoint_every": 1,
    "clients_per_round": 5,
    "device": "auto",
    "eval_batch_size": 1024,
    "local_epochs": 2,
    "lr": 0.01,
    "model": "cnn",
    "momentum": 0.9,
    "weight_decay": 1e-05,
    "width": 1.0,
}


def _env(tree: Path, server: str = "0") -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), preload.ENV: server}


def start_server(tree: Path, sock: Path) -> tuple[subprocess.Popen, str]:
    """``tree``'s preload server (feddiff.preload), as a local Snakemake run starts it;
    the ``FEDDIFF_PRELOAD`` value that sends jobs to it."""
    server = subprocess.Popen(
        [sys.executable, "-m", "feddiff", "preload-serve", "--socket", str(sock)],
        env=_env(tree),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    while not sock.exists():
        if server.poll() is not None:
            raise RuntimeError(f"the preload server of {tree} ended ({server.returncode})")
        time.sleep(0.2)
    return server, preload.address(sock)


def _prepare(tree: Path, where: Path) -> tuple[Path, Path]:
    """The digits dataset and its dir0.5 partition (seed 1), made with ``tree``'s code."""
    data, part = where / "digits.h5", where / "part"
    for argv in (
        ["prepare", "--spec", json.dumps(DATASET), "--out", str(data)],
        ["partition", "--data", str(data), "--setting", json.dumps(PARTITION)]
        + ["--seed", "1", "--out-dir", str(part)],
    ):
        subprocess.run(
            [sys.executable, "-m", "feddiff", *argv],
            env=_env(tree),
            check=True,
            capture_output=True,
        )
    return data, part / "partition.npz"


def train_once(
    tree: Path, data: Path, partition: Path, rounds: int, out: Path, server: str = "0"
) -> dict:
    """One ``train`` job: its wall time, its rounds' time (metrics.csv) and the rest.

    With ``server`` (a ``FEDDIFF_PRELOAD`` value) a server's worker runs it; the job's
    CPU time is then the worker's, from the last line it writes (feddiff.preload).
    """
    settings = {
        "dataset": "digits",
        "method": {"strategy": "fedavg"},
        "partition": PARTITION,
        "seed": 1,
        "training": {**TRAINING, "rounds": rounds},
    }
    argv = [sys.executable, "-m", "feddiff", "train", "--data", str(data)]
    argv += ["--partition", str(partition), "--settings", json.dumps(settings)]
    argv += ["--threads", "1", "--no-progress", "--out-dir", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    tic = time.perf_counter()
    done = subprocess.run(
        argv, env=_env(tree, server), check=True, capture_output=True, cwd=REPO, text=True
    )
    wall = time.perf_counter() - tic
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if server != "0":
        usage = preload.worker_usage(done.stderr)
        if usage is None:
            raise RuntimeError(f"no preload worker ran the job:\n{done.stderr[-2000:]}")
        cpu += usage[0]
    with open(out / "metrics.csv") as fh:
        rounds_s = sum(float(r["seconds"]) for r in csv.DictReader(fh))
    return {"wall": wall, "cpu": cpu, "rounds": rounds_s, "fixed": wall - rounds_s}


_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import {module}
t2 = time.perf_counter()
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"torch": t1 - t0, "module": t2 - t1, "heavy": heavy}}))
"""


def import_once(tree: Path, module: str) -> dict:
    """Interpreter start, ``import torch`` and ``import module`` in a fresh interpreter."""
    tic = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=_env(tree), check=True)
    start = time.perf_counter() - tic
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PROBE.format(module=module, heavy=HEAVY))],
        env=_env(tree),
        check=True,
        capture_output=True,
        text=True,
    )
    return {"start": start, **json.loads(out.stdout.strip().splitlines()[-1])}


def _median(samples: list[dict], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trees",
        default=f"current={REPO / 'workflow'}",
        help="NAME=PATH of a feddiff package's parent folder, comma-separated",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--parts", default="train,imports", help="train and/or imports")
    parser.add_argument("--stages", default=",".join(STAGES), help="stages for imports")
    parser.add_argument("--data", type=Path, help="an existing digits .h5 (else prepared)")
    parser.add_argument("--partition", type=Path, help="its partition.npz (with --data)")
    parser.add_argument(
        "--preload", action="store_true", help="train also through each tree's preload server"
    )
    args = parser.parse_args(argv)
    trees = {}
    for item in args.trees.split(","):
        name, _, path = item.partition("=")
        trees[name] = Path(path).resolve()
    parts = set(args.parts.split(","))
    print(f"# job overhead, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"command: {' '.join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])}")
    print(f"cpus: {os.cpu_count()}, load average at start: {os.getloadavg()}")
    print(f"median of {args.repeats}, samples of the trees alternating\n")
    with tempfile.TemporaryDirectory(prefix="job_overhead_") as tmp:
        if "train" in parts:
            data, partition = (
                (args.data, args.partition)
                if args.data
                else _prepare(next(iter(trees.values())), Path(tmp))
            )
            variants = {name: (tree, "0") for name, tree in trees.items()}
            servers = []
            if args.preload:
                for name, tree in trees.items():
                    server, address = start_server(tree, Path(tmp) / f"{name}.sock")
                    servers.append(server)
                    variants[f"{name}+preload"] = (tree, address)
            samples: dict[str, list[dict]] = {name: [] for name in variants}
            for i in range(args.repeats):
                for name, (tree, address) in variants.items():
                    out = Path(tmp) / f"run_{name}_{i}"
                    samples[name].append(
                        train_once(tree, data, partition, args.rounds, out, address)
                    )
            for server in servers:
                server.terminate()
                server.wait()
            print(f"## `train`, FedAvg, {args.rounds} round(s), digits, 1 thread\n")
            print(
                "| tree | job wall s | job CPU s | rounds s | fixed s (wall - rounds) "
                "| min wall s |"
            )
            print("|---|---|---|---|---|---|")
            for name, rows in samples.items():
                print(
                    f"| {name} | {_median(rows, 'wall'):.2f} | {_median(rows, 'cpu'):.2f} | "
                    f"{_median(rows, 'rounds'):.2f} | "
                    f"{_median(rows, 'fixed'):.2f} | {min(r['wall'] for r in rows):.2f} |"
                )
            print()
        if "imports" in parts:
            stages = [s for s in args.stages.split(",") if s]
            imports = {(n, s): [] for n in trees for s in stages}
            for _ in range(args.repeats):
                for stage in stages:
                    for name, tree in trees.items():
                        imports[name, stage].append(import_once(tree, STAGES[stage]))
            print("## imports (fresh interpreter each)\n")
            print("| tree | stage | module | start s | torch s | module s | heavy loaded |")
            print("|---|---|---|---|---|---|---|")
            for (name, stage), rows in imports.items():
                print(
                    f"| {name} | {stage} | `{STAGES[stage]}` | {_median(rows, 'start'):.2f} | "
                    f"{_median(rows, 'torch'):.2f} | {_median(rows, 'module'):.2f} | "
                    f"{', '.join(rows[-1]['heavy']) or '-'} |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
