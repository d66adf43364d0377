"""Mutation check of the federated-learning tests (issue #12); not collected by pytest, not in CI.

Each mutant is one single-line change to a file under ``workflow/feddiff/fl/`` (a
swapped rho / 1 - rho, weights by count -> uniform, a dropped partial-participation
factor, a sign flip, an off-by-one in step counts, global vs local state, ...). For
each mutant the script changes the file in a *copy* of the repository, runs the
targeted tests there with ``pytest -x -q``, and restores the file (``try/finally``, so
also on Ctrl-C). The working repository is never touched: the copy is made with
``shutil.copytree`` (without ``.venv``, ``results`` and ``.git``) under ``--workdir``,
its ``workflow/`` taken from the last commit (``--source head``, the default: others may
be mid-edit in a shared tree) or from the working tree (``--source worktree``), and the
tests run with ``PYTHONPATH`` pointing at the copy. A pytest exit other than pass/fail
(collection or usage error) stops the script rather than counting as a kill.

A mutant is *killed* when the tests fail, *survived* when they pass, and counted as
*timeout* (killed, but reported apart) when they run past ``--timeout`` seconds.

Usage (from the repository root, with the project's venv active)::

    nice -n 10 python tests/mutation/run_mutations.py                 # all mutants
    nice -n 10 python tests/mutation/run_mutations.py --only fednh,moon   # ids containing either
    nice -n 10 python tests/mutation/run_mutations.py --without tests/fl/test_engine_properties.py
        # the same mutants against the suite without the engine-level property tests

Results: a table on stdout and ``<workdir>/mutation-results.json``. The score and the
command last run are recorded in ``tests/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FL = "workflow/feddiff/fl"
PROPS = "tests/fl/test_engine_properties.py"
CORE = [
    PROPS,
    "tests/fl/test_engine.py",
    "tests/fl/test_aggregation.py",
    "tests/fl/test_vectorized.py",
]


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]


def _m(id: str, file: str, old: str, new: str, *tests: str) -> Mutant:
    return Mutant(id, f"{FL}/{file}", old, new, tests or tuple(CORE))


def _t(method: str) -> tuple[str, str]:
    return (PROPS, f"tests/fl/test_{method}.py")


S = "strategies/"
MUTANTS: list[Mutant] = [
    # ---- FedAvg: the base strategy, aggregation, engine, sampling, data ---------------
    _m(
        "fedavg-uniform-weights",
        "strategy.py",
        "weights = [float(u.num_samples) for u in updates]",
        "weights = [1.0 for u in updates]",
    ),
    _m(
        "aggregation-uniform-alpha",
        "aggregation.py",
        "alpha=w / total)",
        "alpha=1.0 / len(states))",
    ),
    _m("aggregation-heaviest-is-lightest", "aggregation.py", "heaviest = max(", "heaviest = min("),
    _m("effective-steps-ignore-momentum", "aggregation.py", "    if rho == 0:\n", "    if True:\n"),
    _m("effective-steps-off-by-one", "aggregation.py", "(1 - rho**tau)", "(1 - rho**(tau - 1))"),
    _m("context-steps-start-at-one", "strategy.py", "num_steps: int = 0", "num_steps: int = 1"),
    _m(
        "engine-no-before-step",
        "engine.py",
        "            strategy.before_step(ctx)\n",
        "            pass\n",
    ),
    _m(
        "engine-local-not-reset-to-global",
        "engine.py",
        "local.load_state_dict(global_model.state_dict())",
        "pass",
    ),
    _m("engine-momentum-off", "engine.py", "momentum=settings.momentum,", "momentum=0.0,"),
    _m(
        "engine-weight-decay-off",
        "engine.py",
        "weight_decay=settings.weight_decay,",
        "weight_decay=0.0,",
    ),
    _m(
        "engine-full-participation",
        "engine.py",
        "for client in selected:",
        "for client in range(num_clients):",
    ),
    _m(
        "engine-one-epoch",
        "engine.py",
        "for _ in range(settings.local_epochs):",
        "for _ in range(1):",
    ),
    _m("sampling-with-replacement", "sampling.py", "replace=False", "replace=True"),
    _m(
        "data-keep-trailing-singleton",
        "data.py",
        "if len(batches) > 1 and batches[-1].numel() == 1:",
        "if False:",
    ),
    # (``if first:`` -> ``if False:`` is equivalent: the momentum buffers start at zero)
    _m(
        "vectorized-step-without-momentum",
        "vectorized.py",
        "torch._foreach_add_(params, step, alpha=-lr)",
        "torch._foreach_add_(params, grads, alpha=-lr)",
    ),
    _m(
        "engine-num-samples-is-batch-size",
        "engine.py",
        "num_samples=data.client_size(client),",
        "num_samples=settings.batch_size,",
    ),
    _m(
        "vectorized-no-strategy-loss",
        "vectorized.py",
        "loss = self.strategy.vectorized_loss(loss, params, self.anchors)",
        "loss = loss",
    ),
    _m(
        "vectorized-weight-decay-sign",
        "vectorized.py",
        "torch._foreach_add_(grads, params, alpha=weight_decay)",
        "torch._foreach_add_(grads, params, alpha=-weight_decay)",
    ),
    # ---- FedProx ----------------------------------------------------------------------
    _m(
        "fedprox-half-dropped",
        S + "fedprox.py",
        "return 0.5 * mu * total",
        "return mu * total",
        *_t("fedprox"),
    ),
    _m(
        "fedprox-l1",
        S + "fedprox.py",
        "total = total + (p - a).pow(2).sum()",
        "total = total + (p - a).abs().sum()",
        *_t("fedprox"),
    ),
    _m(
        "fedprox-vectorized-anchor-is-self",
        S + "fedprox.py",
        "anchors = [global_params[n] for n in names]",
        "anchors = [params[n].detach() for n in names]",
        *_t("fedprox"),
    ),
    _m(
        "fedprox-no-term",
        S + "fedprox.py",
        "return ce + proximal_term(",
        "return ce - 0 * proximal_term(",
        *_t("fedprox"),
    ),
    # ---- MOON -------------------------------------------------------------------------
    _m(
        "moon-negative-always-global",
        S + "moon.py",
        "z_prev = z_glob if prev is None else frozen_representation(prev, x)",
        "z_prev = z_glob",
        *_t("moon"),
    ),
    _m(
        "moon-swap-positive-negative",
        S + "moon.py",
        "torch.stack([pos, neg], dim=1)",
        "torch.stack([neg, pos], dim=1)",
        *_t("moon"),
    ),
    _m(
        "moon-temperature-multiplies",
        S + "moon.py",
        "dim=1) / temperature",
        "dim=1) * temperature",
        *_t("moon"),
    ),
    _m(
        "moon-previous-is-global",
        S + "moon.py",
        "for k, v in update.weights.items()}",
        "for k, v in ctx.global_model.state_dict().items()}",
        *_t("moon"),
    ),
    _m(
        "moon-positive-is-local",
        S + "moon.py",
        "z_glob = frozen_representation(ctx.global_model, x)",
        "z_glob = frozen_representation(ctx.model, x)",
        *_t("moon"),
    ),
    _m(
        "moon-someone-elses-previous",
        S + "moon.py",
        "state = self.client_states.get(ctx.client_id)",
        "state = next(iter(self.client_states.values()), None)",
        *_t("moon"),
    ),
    _m(
        "moon-frozen-models-in-train-mode",
        S + "moon.py",
        "    model.eval()\n",
        "    model.train()\n",
        *_t("moon"),
    ),
    _m(
        "moon-mu-sign",
        S + "moon.py",
        "+ self.params.mu * con",
        "- self.params.mu * con",
        *_t("moon"),
    ),
    # ---- SCAFFOLD ---------------------------------------------------------------------
    _m(
        "scaffold-sample-weighted-model",
        S + "scaffold.py",
        "[1.0] * len(updates))",
        "[float(u.num_samples) for u in updates])",
        *_t("scaffold"),
    ),
    _m(
        "scaffold-no-participation-share",
        S + "scaffold.py",
        "share = len(updates) / self.num_clients",
        "share = 1.0",
        *_t("scaffold"),
    ),
    _m(
        "scaffold-global-lr-ignored",
        S + "scaffold.py",
        "new_state[key] = x[key] + eta_g * (avg - x[key])",
        "new_state[key] = avg",
        *_t("scaffold"),
    ),
    _m(
        "scaffold-correction-sign",
        S + "scaffold.py",
        "(self.c[name] - c_i[name])",
        "(c_i[name] - self.c[name])",
        *_t("scaffold"),
    ),
    _m(
        "scaffold-option-ii-without-c",
        S + "scaffold.py",
        "delta[name] = drift / steps_lr - self.c[name]",
        "delta[name] = drift / steps_lr",
        *_t("scaffold"),
    ),
    _m(
        "scaffold-plain-step-count",
        S + "scaffold.py",
        "steps_lr = effective_steps(ctx.num_steps, ctx.settings.momentum) * ctx.settings.lr",
        "steps_lr = ctx.num_steps * ctx.settings.lr",
        *_t("scaffold"),
    ),
    _m(
        "scaffold-client-c-not-accumulated",
        S + "scaffold.py",
        '{"c": {k: c_i[k] + delta[k] for k in delta}}',
        '{"c": {k: delta[k] for k in delta}}',
        *_t("scaffold"),
    ),
    _m(
        "scaffold-server-c-not-accumulated",
        S + "scaffold.py",
        "self.c[name] = c + share * delta",
        "self.c[name] = share * delta",
        *_t("scaffold"),
    ),
    _m(
        "scaffold-client-c-shared",
        S + "scaffold.py",
        "state = self.client_states.get(client_id)",
        "state = self.client_states.get(0)",
        *_t("scaffold"),
    ),
    # ---- FedNova ----------------------------------------------------------------------
    _m(
        "fednova-normaliser-ignores-momentum",
        S + "fednova.py",
        "normaliser(ctx.num_steps, ctx.settings.momentum)",
        "normaliser(ctx.num_steps, 0.0)",
        *_t("fednova"),
    ),
    _m(
        "fednova-tau-eff-unweighted",
        S + "fednova.py",
        "tau_eff = sum(pi * ai for pi, ai in zip(p, a))",
        "tau_eff = sum(a) / len(a)",
        *_t("fednova"),
    ),
    _m(
        "fednova-no-normalisation",
        S + "fednova.py",
        "alpha=pi / ai)",
        "alpha=pi / tau_eff)",
        *_t("fednova"),
    ),
    _m(
        "fednova-gmf-ignored",
        S + "fednova.py",
        "ServerMomentum(params.gmf, 1.0)",
        "ServerMomentum(0.0, 1.0)",
        *_t("fednova"),
    ),
    _m(
        "fednova-no-tau-eff",
        S + "fednova.py",
        "delta[key] = acc.mul_(tau_eff).to(ref.dtype)",
        "delta[key] = acc.to(ref.dtype)",
        *_t("fednova"),
    ),
    _m(
        "fednova-uniform-p",
        S + "fednova.py",
        "p = [n / total for n in samples]",
        "p = [1 / len(samples)] * len(samples)",
        *_t("fednova"),
    ),
    # ---- FedNH ------------------------------------------------------------------------
    _m(
        "fednh-rho-swapped",
        S + "fednh.py",
        "smoothing * prototypes + (1.0 - smoothing) * avg",
        "(1.0 - smoothing) * prototypes + smoothing * avg",
        *_t("fednh"),
    ),
    _m(
        "fednh-means-not-count-weighted",
        S + "fednh.py",
        "m.to(prototypes) * c.to(prototypes)[:, None]",
        "m.to(prototypes) * (c.to(prototypes)[:, None] > 0)",
        *_t("fednh"),
    ),
    _m(
        "fednh-means-over-all-epochs",
        S + "fednh.py",
        'if s["seen"] >= max(ctx.num_samples - 1, 1):',
        "if False:",
        *_t("fednh"),
    ),
    _m(
        "fednh-seen-counts-batches",
        S + "fednh.py",
        's["seen"] += int(y.numel())',
        's["seen"] += 1',
        *_t("fednh"),
    ),
    _m(
        "fednh-prototypes-trained-locally",
        S + "fednh.py",
        "weight.requires_grad_(False)",
        "weight.requires_grad_(True)",
        *_t("fednh"),
    ),
    _m(
        "fednh-features-not-normalised",
        S + "fednh.py",
        "F.normalize(features, dim=1)",
        "features",
        *_t("fednh"),
    ),
    _m(
        "fednh-prototypes-not-updated",
        S + "fednh.py",
        "global_model.classifier.weight.copy_(new)",
        "global_model.classifier.weight.copy_(prototypes)",
        *_t("fednh"),
    ),
    # ---- FedAvgM (and the server momentum FedNova shares) -----------------------------
    _m(
        "fedavgm-no-momentum",
        S + "fedavgm.py",
        "v = d.clone() if v is None else v.to(d.device).mul_(self.beta).add_(d)",
        "v = d.clone()",
        *_t("fedavgm"),
    ),
    _m(
        "fedavgm-server-lr-ignored",
        S + "fedavgm.py",
        "out[name] = current[name] - self.lr * v",
        "out[name] = current[name] - v",
        *_t("fedavgm"),
    ),
    _m(
        "fedavgm-delta-sign",
        S + "fedavgm.py",
        "k: current[k] - averaged[k].to(current[k].device)",
        "k: averaged[k].to(current[k].device) - current[k]",
        *_t("fedavgm"),
    ),
    _m(
        "fedavgm-uniform-weights",
        S + "fedavgm.py",
        "samples = [float(u.num_samples) for u in updates]",
        "samples = [1.0 for u in updates]",
        *_t("fedavgm"),
    ),
]


def copy_repo(dest: Path, source: str) -> None:
    """Copy the working tree (no venv, results, git, caches) to a fresh ``dest``.

    With ``source="head"`` the package (``workflow/``) comes from the last commit
    instead, the tests from the working tree.
    """
    if dest.resolve().is_relative_to(REPO):
        raise SystemExit(f"--workdir must lie outside the repository ({REPO})")
    if dest.exists():
        shutil.rmtree(dest)
    skip = shutil.ignore_patterns(
        ".venv", "results", ".git", "__pycache__", ".snakemake", ".pytest_cache"
    )
    shutil.copytree(REPO, dest, ignore=skip)
    if source == "head":  # the package as committed: others may be mid-edit in the working tree
        shutil.rmtree(dest / "workflow")
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "HEAD", "workflow"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def run_tests(copy: Path, tests: list[str], timeout: float) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": f"{copy / 'workflow'}{os.pathsep}{copy}",
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        proc = subprocess.run(
            cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    if proc.returncode == 0:
        return "survived"
    if proc.returncode == 1:
        return "killed"
    raise RuntimeError(
        "pytest could not run (exit "
        f"{proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/feddiff-mutation"))
    ap.add_argument(
        "--only",
        default="",
        help="run the mutants whose id contains one of these (comma-separated)",
    )
    ap.add_argument(
        "--without", action="append", default=[], help="leave this test file out (repeatable)"
    )
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument(
        "--source",
        choices=("head", "worktree"),
        default="head",
        help="where workflow/ comes from: the last commit (default) or the working tree",
    )
    args = ap.parse_args()

    copy = args.workdir / "repo"
    copy_repo(copy, args.source)
    # The copy, not the working tree, must be what the tests import.
    check = subprocess.run(
        [sys.executable, "-c", "import feddiff; print(feddiff.__file__)"],
        env={**os.environ, "PYTHONPATH": str(copy / "workflow")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not check.startswith(str(copy)):
        raise SystemExit(f"feddiff imports from {check}, not from the copy {copy}")

    wanted = args.only.split(",")
    mutants = [m for m in MUTANTS if any(w in m.id for w in wanted)]
    results: list[dict[str, object]] = []
    for m in mutants:
        target = copy / m.path
        original = target.read_text()
        if original.count(m.old) != 1:
            raise SystemExit(f"{m.id}: {m.old!r} occurs {original.count(m.old)} times in {m.path}")
        tests = [t for t in m.tests if t not in args.without]
        tic = time.perf_counter()
        try:
            target.write_text(original.replace(m.old, m.new))
            outcome = run_tests(copy, tests, args.timeout)
        finally:
            target.write_text(original)
        secs = time.perf_counter() - tic
        results.append({"id": m.id, "file": m.path, "outcome": outcome, "seconds": round(secs, 1)})
        print(f"{outcome:9s} {secs:6.1f}s  {m.id}", flush=True)
    # a clean copy must pass, or every "killed" above means nothing
    baseline = run_tests(
        copy,
        sorted({t for m in mutants for t in m.tests if t not in args.without}),
        args.timeout * 4,
    )
    killed = sum(r["outcome"] != "survived" for r in results)
    print(f"\nunmutated tests: {'pass' if baseline == 'survived' else baseline.upper()}")
    print(f"score: {killed} / {len(results)} killed")
    for r in results:
        if r["outcome"] == "survived":
            print(f"  survived: {r['id']} ({r['file']})")
    out = {
        "killed": killed,
        "total": len(results),
        "unmutated": baseline,
        "without": args.without,
        "results": results,
    }
    (args.workdir / "mutation-results.json").write_text(json.dumps(out, indent=1))
    return 0 if baseline == "survived" else 1


if __name__ == "__main__":
    sys.exit(main())
