"""Command line: every pipeline stage runs by hand as ``python -m feddiff <stage>``.

The Snakemake rules call exactly these commands, so a stage behaves the same under
Snakemake, on a SLURM node, or typed into a shell.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from feddiff import paths, preload


def _json_arg(value: str) -> Any:
    """Inline JSON, or the path of a JSON/YAML file (a previous run.json works too)."""
    text = value.strip()
    if text.startswith(("{", "[")):
        return json.loads(text)
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"neither inline JSON nor an existing file: {value}")
    with open(path) as fh:
        if path.suffix == ".json":  # YAML 1.1 would read JSON's 1e-05 as a string
            return json.load(fh)
        return yaml.safe_load(fh)


def _run_settings(settings: Any) -> Any:
    """A run's settings, also when a previous run's run.json is given instead."""
    if "config" in settings and "seed" not in settings:
        return settings["config"]
    return settings


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def cmd_prepare(args: argparse.Namespace) -> int:
    from feddiff.data.prepare import prepare_dataset

    spec = dict(args.spec)
    if args.workers and "workers" not in spec and spec.get("source") == "imagefolder":
        spec["workers"] = args.workers
    arrays = prepare_dataset(spec, Path(args.out), resources_dir=Path(args.resources))
    print(
        f"wrote {args.out}: {len(arrays.y_train)} train / {len(arrays.y_test)} test images "
        f"{arrays.x_train.shape[1:]} , {arrays.num_classes} classes"
    )
    return 0


def cmd_partition(args: argparse.Namespace) -> int:
    from feddiff.stages import make_partition

    clients = make_partition(
        Path(args.data), args.setting, args.seed, Path(args.out_dir), args.name
    )
    sizes = [len(c) for c in clients]
    print(f"wrote {args.out_dir}: {len(clients)} clients, sizes {min(sizes)}..{max(sizes)}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from feddiff.fl.run import train_run

    settings = _run_settings(args.settings)
    _set_threads(args.threads)
    metrics = train_run(
        settings,
        Path(args.data),
        Path(args.partition),
        Path(args.out_dir),
        labels=args.labels,
        progress=not args.no_progress,
    )
    last = metrics.iloc[-1]
    print(f"wrote {args.out_dir}: round {int(last['round'])} test accuracy {last['test_acc']:.4f}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from feddiff.stages import make_report

    make_report(args.manifest, Path(args.tables_dir), Path(args.figures_dir), last_k=args.last_k)
    print(f"wrote tables under {args.tables_dir} and figures under {args.figures_dir}")
    return 0


def cmd_paper_table(args: argparse.Namespace) -> int:
    from feddiff.report.paper import make_paper_table

    groups = [g for g in (args.groups or "").split(",") if g]
    comp = make_paper_table(
        Path(args.results),
        Path(args.values),
        args.table,
        args.kind,
        Path(args.tables_dir),
        groups=groups,
        last_k=args.last_k,
    )
    with_paper = int(comp["paper"].notna().sum())
    print(
        f"wrote {args.tables_dir}/paper_{args.table}.{{csv,md,tex}}: {len(comp)} rows, "
        f"{with_paper} with a paper number"
    )
    return 0


def cmd_sample_figure(args: argparse.Namespace) -> int:
    from feddiff.report.samples import make_sample_figure

    make_sample_figure(Path(args.run_dir), Path(args.out), title=args.title)
    print(f"wrote {args.out} and its PDF")
    return 0


def cmd_extract_features(args: argparse.Namespace) -> int:
    from feddiff.features.extract import extract_features
    from feddiff.features.settings import FeatureSettings

    _set_threads(args.threads)
    where = f"features.{args.name}" if args.name else "features"
    settings = FeatureSettings.from_dict(dict(args.spec), where=where)
    result = extract_features(
        Path(args.data), settings, Path(args.out), where=where, progress=not args.no_progress
    )
    state = "up to date" if result.skipped else f"wrote in {result.seconds:.1f}s"
    print(f"{args.out}: {state}")
    return 0


def cmd_feature_figures(args: argparse.Namespace) -> int:
    from feddiff.features.figures import make_feature_figures

    table = make_feature_figures(
        Path(args.features),
        Path(args.out_dir),
        split=args.split,
        max_points=args.max_points,
        seed=args.seed,
        threads=args.threads or 1,
    )
    print(f"wrote t-SNE, PCA and K-means outputs under {args.out_dir}")
    print(table.to_string(index=False))
    return 0


def cmd_fid_classifier(args: argparse.Namespace) -> int:
    from feddiff.diffusion.fid_classifier import train_fid_classifier
    from feddiff.diffusion.settings import ClassifierSettings

    _set_threads(args.threads)
    info = train_fid_classifier(
        Path(args.data), ClassifierSettings(**dict(args.settings)), Path(args.out_dir)
    )
    print(f"wrote {args.out_dir}: FID feature classifier, test accuracy {info['test_acc']:.4f}")
    return 0


def cmd_diffuse_train(args: argparse.Namespace) -> int:
    from feddiff.diffusion.run import diffuse_train

    settings = _run_settings(args.settings)
    _set_threads(args.threads)
    metrics = diffuse_train(
        settings,
        Path(args.data),
        Path(args.partition),
        Path(args.classifier),
        Path(args.out_dir),
        labels=args.labels,
        progress=not args.no_progress,
    )
    last = metrics.iloc[-1]
    print(
        f"wrote {args.out_dir}: round {int(last['round'])} FID {last['fid']:.3f} "
        f"({last['fid_kind']})"
    )
    return 0


def cmd_diffuse_report(args: argparse.Namespace) -> int:
    from feddiff.diffusion.report import make_diffusion_report

    make_diffusion_report(args.manifest, Path(args.tables_dir), Path(args.figures_dir))
    print(
        f"wrote diffusion_fid tables under {args.tables_dir} and figures under {args.figures_dir}"
    )
    return 0


def cmd_generate_auxiliary(args: argparse.Namespace) -> int:
    from feddiff.auxiliary.generate import generate_auxiliary

    _set_threads(args.threads)
    aux = generate_auxiliary(
        args.settings,
        Path(args.data),
        Path(args.partition),
        Path(args.out),
        progress=not args.no_progress,
    )
    print(
        f"wrote {args.out}: {len(aux.labels)} auxiliary images ({aux.attrs['generator']}), "
        f"classes {sorted(set(aux.labels.tolist()))}"
    )
    return 0


def cmd_bench_summary(args: argparse.Namespace) -> int:
    from feddiff.report.benchmarks import write_benchmark_summary

    table = write_benchmark_summary(Path(args.root), Path(args.out), Path(args.logs))
    print(table.to_string(index=False))
    print(f"wrote {args.out}.csv, .md, .tex and .html")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from feddiff.config_schema import main as write_schema

    return write_schema(check=args.check)


def cmd_validate(args: argparse.Namespace) -> int:
    from feddiff.plan import build_plan, load_config

    plan = build_plan(load_config(args.config))
    print(f"{args.config}: valid; {len(plan.runs)} runs")
    if args.list:
        for run in plan.runs:
            print(f"  {run.experiment}: {run.run_dir}")
    if plan.diffusion_runs:
        print(f"{len(plan.diffusion_runs)} federated DDPM runs")
        if args.list:
            for drun in plan.diffusion_runs:
                print(f"  diffusion: {drun.run_dir}")
    if plan.auxiliary:
        print(f"{len(plan.auxiliary)} auxiliary sets")
        if args.list:
            for target in plan.auxiliary:
                print(f"  auxiliary: {target.path}")
    return 0


# What a preload server imports before it forks workers: every stage's module, so that
# no job of a local Snakemake run pays for torch, diffusers, pandas or matplotlib.
PRELOAD_MODULES = (
    "torch",
    "feddiff.data.prepare",
    "feddiff.stages",
    "feddiff.fl.run",
    "feddiff.report.paper",
    "feddiff.report.samples",
    "feddiff.features.extract",
    "feddiff.features.settings",
    "feddiff.features.figures",
    "feddiff.diffusion.fid_classifier",
    "feddiff.diffusion.settings",
    "feddiff.diffusion.run",
    "feddiff.diffusion.report",
    "feddiff.auxiliary.generate",
    "feddiff.report.benchmarks",
    "feddiff.config_schema",
    "feddiff.plan",
)


def cmd_preload_serve(args: argparse.Namespace) -> int:
    preload.serve(Path(args.socket), main, PRELOAD_MODULES, parent=args.parent)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="feddiff", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

    p = sub.add_parser("prepare", help="prepare a dataset into HDF5")
    p.add_argument(
        "--spec",
        type=_json_arg,
        required=True,
        help='dataset spec (JSON or file), e.g. \'{"source": "digits"}\'',
    )
    p.add_argument("--out", required=True, help="output .h5 path")
    p.add_argument(
        "--resources", default="resources", help="download/cache folder for torchvision sources"
    )
    p.add_argument("--workers", type=int, default=0, help="image decoding workers (imagefolder)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("partition", help="split a prepared dataset across clients")
    p.add_argument("--data", required=True, help="prepared .h5")
    p.add_argument(
        "--setting", type=_json_arg, required=True, help="partition setting (JSON or file)"
    )
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--name", default=None, help="human name used in the heatmap title")
    p.set_defaults(func=cmd_partition)

    p = sub.add_parser("train", help="run one federated training")
    p.add_argument("--data", required=True, help="prepared .h5")
    p.add_argument("--partition", required=True, help="partition.npz")
    p.add_argument(
        "--settings",
        type=_json_arg,
        required=True,
        help="run settings (JSON or file; a run.json works)",
    )
    p.add_argument("--out-dir", required=True)
    p.add_argument("--labels", type=_json_arg, default=None, help="human labels stored in run.json")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("report", help="accuracy tables and figures from finished runs")
    p.add_argument(
        "--manifest", type=_json_arg, required=True, help="list of {run_dir, labels} (JSON or file)"
    )
    p.add_argument("--tables-dir", default=paths.TABLES)
    p.add_argument("--figures-dir", default=paths.FIGURES)
    p.add_argument("--last-k", type=int, default=5)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "paper-table", help="a paper's reported numbers beside ours, with the difference"
    )
    p.add_argument(
        "--kind",
        choices=["accuracy", "fid"],
        required=True,
        help="accuracy: from accuracy.csv (experiments); fid: from diffusion_fid.csv",
    )
    p.add_argument(
        "--results", required=True, help="our results table (accuracy.csv or diffusion_fid.csv)"
    )
    p.add_argument(
        "--values",
        required=True,
        help="paper values CSV (table,dataset,partition,method,metric,value,source)",
    )
    p.add_argument(
        "--table",
        required=True,
        help="table id in the values CSV; writes paper_<table>.{csv,md,tex}",
    )
    p.add_argument(
        "--groups",
        default="",
        help="accuracy: comma-separated experiments to compare (default: all)",
    )
    p.add_argument("--tables-dir", default=paths.TABLES)
    p.add_argument("--last-k", type=int, default=5, help="the k the accuracy table was built with")
    p.set_defaults(func=cmd_paper_table)

    p = sub.add_parser(
        "sample-figure", help="a federated DDPM run's sample grids in one figure (PNG and PDF)"
    )
    p.add_argument(
        "--run-dir", required=True, help="diffusion run folder with samples/ and fid.json"
    )
    p.add_argument("--out", required=True, help="output .png (a .pdf is written beside it)")
    p.add_argument("--title", default=None)
    p.set_defaults(func=cmd_sample_figure)

    p = sub.add_parser(
        "extract-features", help="diffusion representations of a dataset, cached in HDF5 (FedDifRC)"
    )
    p.add_argument("--data", required=True, help="prepared .h5")
    p.add_argument(
        "--spec",
        type=_json_arg,
        required=True,
        help="extraction settings (JSON or file), e.g. "
        '\'{"backbone": "ddpm", "model": "path/model"}\'',
    )
    p.add_argument(
        "--out",
        required=True,
        help="features .h5 (built as <name>.partial.h5, resumed if interrupted)",
    )
    p.add_argument("--name", default=None, help="the config entry's name, used in error messages")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_extract_features)

    p = sub.add_parser(
        "feature-figures", help="t-SNE, K-means and PCA views of cached diffusion representations"
    )
    p.add_argument("--features", required=True, help="features .h5 from extract-features")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--split", choices=["train", "test"], default="test")
    p.add_argument("--max-points", type=int, default=2000, help="subsample for t-SNE and K-means")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="threads for t-SNE and K-means")
    p.set_defaults(func=cmd_feature_figures)

    p = sub.add_parser(
        "fid-classifier", help="train the classifier whose features score FID offline"
    )
    p.add_argument("--data", required=True, help="prepared .h5 (trained on its train split)")
    p.add_argument(
        "--settings",
        type=_json_arg,
        default={},
        help="diffusion.fid.classifier settings (JSON or file)",
    )
    p.add_argument("--out-dir", required=True, help="gets model.safetensors and info.json")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.set_defaults(func=cmd_fid_classifier)

    p = sub.add_parser(
        "diffuse-train", help="run one federated DDPM (FedDiffuse mode), score FID, save it"
    )
    p.add_argument("--data", required=True, help="prepared .h5")
    p.add_argument("--partition", required=True, help="partition.npz")
    p.add_argument(
        "--classifier", required=True, help="fid-classifier output folder (FID features offline)"
    )
    p.add_argument(
        "--settings",
        type=_json_arg,
        required=True,
        help="{dataset, partition, mode, seed, diffusion} (JSON or file; a run.json works)",
    )
    p.add_argument("--out-dir", required=True)
    p.add_argument("--labels", type=_json_arg, default=None, help="human labels stored in run.json")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_diffuse_train)

    p = sub.add_parser(
        "diffuse-report", help="FID x mode x partition table and FID-vs-communication figure"
    )
    p.add_argument(
        "--manifest", type=_json_arg, required=True, help="list of {run_dir, labels} (JSON or file)"
    )
    p.add_argument("--tables-dir", default=paths.TABLES)
    p.add_argument("--figures-dir", default=paths.FIGURES)
    p.set_defaults(func=cmd_diffuse_report)

    p = sub.add_parser(
        "generate-auxiliary",
        help="FedDDPM's auxiliary set: clients' DDPMs (or Stable Diffusion) -> HDF5",
    )
    p.add_argument("--data", required=True, help="prepared .h5")
    p.add_argument("--partition", required=True, help="partition.npz")
    p.add_argument(
        "--settings",
        type=_json_arg,
        required=True,
        help="{auxiliary: {...}, unet, scheduler, seed} (JSON or file)",
    )
    p.add_argument("--out", required=True, help="output .h5 (counts.csv and grid.png go beside it)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=cmd_generate_auxiliary)

    p = sub.add_parser(
        "bench-summary", help="per-rule wall time and memory from Snakemake benchmark: files"
    )
    p.add_argument(
        "--root", default=paths.BENCHMARKS, help="folder the rules' benchmark: files are in"
    )
    p.add_argument(
        "--out", default=f"{paths.TABLES}/benchmarks", help="output stem (.csv, .md, .tex, .html)"
    )
    p.add_argument(
        "--logs", default=paths.LOGS, help="the jobs' logs (CPU and memory of preload workers)"
    )
    p.set_defaults(func=cmd_bench_summary)

    p = sub.add_parser(
        "schema", help="write config/schema/config.schema.yaml from the settings dataclasses"
    )
    p.add_argument("--check", action="store_true", help="only fail if the committed file is stale")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("validate", help="validate a config and list the runs it expands to")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--list", action="store_true", help="print every run directory")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "preload-serve",
        help="import every stage once and run jobs in forked workers (feddiff.preload)",
    )
    p.add_argument("--socket", required=True, help="Unix socket to listen on")
    p.add_argument("--parent", type=int, default=None, help="end when this process ends")
    p.set_defaults(func=cmd_preload_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except (ValueError, OSError, RuntimeError) as exc:
        # Expected failures (bad config, missing file, corrupt image, NaN loss) get one
        # clear line; -v shows the traceback. Anything else is a bug and raises as is.
        if args.verbose:
            raise
        print(f"feddiff {args.stage}: error: {exc}", file=sys.stderr)
        return 1
