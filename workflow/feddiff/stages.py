"""Stage functions that glue package parts together for the CLI (and so for the rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from feddiff.data.h5 import dataset_fingerprint, load_dataset
from feddiff.partition import partition_indices, validate_setting
from feddiff.partition.io import save_partition
from feddiff.partition.report import count_matrix, plot_heatmap, write_counts_csv


def make_partition(
    data_path: Path, setting: Mapping[str, Any], seed: int, out_dir: Path, name: str | None = None
) -> list[Any]:
    """Split the training split of ``data_path`` into clients; write assignment, counts, heatmap."""
    arrays = load_dataset(data_path)
    labels = arrays.y_train
    validate_setting(setting, num_samples=len(labels), num_classes=arrays.num_classes)
    clients = partition_indices(
        labels,
        setting,
        seed=seed,
        num_classes=arrays.num_classes,
        domains=arrays.domain_train,
        domain_names=arrays.domain_names,
    )
    meta = {
        "setting": dict(setting),
        "seed": seed,
        "dataset": str(data_path),
        "dataset_fingerprint": dataset_fingerprint(data_path),
        "class_names": list(arrays.class_names),
        **({"domain_names": list(arrays.domain_names)} if arrays.domain_names is not None else {}),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = count_matrix(clients, labels, arrays.num_classes)
    write_counts_csv(out_dir / "counts.csv", counts, arrays.class_names)
    title = f"{name or setting['scheme']} (seed {seed}): samples per client and class"
    plot_heatmap(out_dir / "heatmap.png", counts, arrays.class_names, title)
    if arrays.domain_names is not None:  # multi-domain data: samples per client and domain too
        by_domain = count_matrix(clients, arrays.domain_train, len(arrays.domain_names))
        write_counts_csv(out_dir / "domain_counts.csv", by_domain, arrays.domain_names)
        plot_heatmap(
            out_dir / "domain_heatmap.png",
            by_domain,
            arrays.domain_names,
            f"{name or setting['scheme']} (seed {seed}): samples per domain",
            xlabel="domain",
        )
    # The assignment last: it is what downstream jobs consume.
    save_partition(out_dir / "partition.npz", clients, meta)
    return clients


def make_report(
    manifest: Sequence[Mapping[str, Any]],
    tables_dir: Path,
    figures_dir: Path,
    last_k: int = 5,
) -> None:
    """Accuracy table (CSV, Markdown, LaTeX, HTML) and accuracy-vs-round figures.

    ``manifest`` lists runs as ``{"run_dir": ..., "labels": {...}}``; the labels (human
    names from the config) take precedence over those stored in each run.json, since one
    cached run can serve several experiments.
    """
    from feddiff.report import accuracy_table, load_run, plot_accuracy_curves, write_accuracy_tables
    from feddiff.report.calibration import CalibratedRun, has_calibration, plot_calibration

    runs = [load_run(Path(item["run_dir"]), labels=item.get("labels")) for item in manifest]
    method_order = list(dict.fromkeys(item["labels"]["method"] for item in manifest))
    partition_order = list(dict.fromkeys(item["labels"]["partition"] for item in manifest))
    table = accuracy_table(
        runs, last_k=last_k, method_order=method_order, partition_order=partition_order
    )
    write_accuracy_tables(table, tables_dir / "accuracy", last_k=last_k)
    from feddiff.report.domains import domain_table, has_domains, write_domain_tables

    if any(has_domains(r) for r in runs):  # multi-domain datasets: accuracy per domain too
        write_domain_tables(domain_table(runs, last_k), tables_dir / "accuracy_domains")
    by_experiment: dict[str, list[Any]] = {}
    for run in runs:
        by_experiment.setdefault(run.experiment, []).append(run)
    for experiment, exp_runs in by_experiment.items():
        plot_accuracy_curves(
            exp_runs,
            figures_dir / f"accuracy_vs_round_{experiment}.png",
            method_order=method_order,
            partition_order=partition_order,
        )
        calibrated = [
            CalibratedRun(r.dataset, r.partition, f"{r.method} (seed {r.seed})", r.metrics)
            for r in exp_runs
            if has_calibration(r.metrics)
        ]
        if calibrated:  # FedDDPM / FedDDPM+ runs: their corrections
            plot_calibration(
                calibrated, figures_dir / f"calibration_{experiment}.png", "auxiliary cross-entropy"
            )
