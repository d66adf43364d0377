"""One federated run from files to files: the ``train`` stage.

Reads the prepared dataset (HDF5) and the partition, trains, and writes
``metrics.csv``, ``run.json`` and the final model (``config.json`` +
``model.safetensors``, :func:`feddiff.models.pretrained.save_pretrained`) into the run
directory, each atomically. On a multi-domain dataset ``metrics.csv`` also has per-domain accuracies
(``test_acc_<domain>``, ``test_acc_domain_mean``), computed inside the run because a
per-client method's own models (FedBN's batch norm) live only in the checkpoint. A
``checkpoint.pt`` in the same directory lets a killed run resume; it is removed once the
run's outputs are written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from feddiff.data.h5 import dataset_fingerprint, load_dataset
from feddiff.fl.data import FederatedData
from feddiff.fl.engine import METRIC_COLUMNS, RoundCallback, run_federated
from feddiff.fl.evaluation import EvalDomains
from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategy import build_strategy
from feddiff.models import build_model
from feddiff.models.pretrained import classifier_config, save_pretrained
from feddiff.partition.io import load_partition
from feddiff.utils.atomic import atomic_path, write_text_atomic
from feddiff.utils.device import resolve_device
from feddiff.utils.provenance import git_commit, package_versions
from feddiff.utils.seeding import seed_everything


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_fingerprint(settings: Mapping[str, Any], data_path: Path, partition_path: Path) -> str:
    """Hash of everything that determines the results, used to validate checkpoints."""
    payload = {
        "settings": settings,
        "data": _file_digest(data_path),
        "partition": _file_digest(partition_path),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def train_run(
    settings: Mapping[str, Any],
    data_path: Path,
    partition_path: Path,
    out_dir: Path,
    labels: Mapping[str, Any] | None = None,
    on_round_end: RoundCallback | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run the federated training described by ``settings`` and write its outputs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    train = TrainSettings.from_dict(dict(settings.get("training", {})))
    seed = int(settings["seed"])
    arrays = load_dataset(data_path)
    clients, _meta = load_partition(partition_path)
    device = resolve_device(train.device)
    data = FederatedData.from_dataset(arrays, clients, device)
    domains = None
    if arrays.has_domains:  # per-domain accuracy columns (feddiff.fl.evaluation)
        assert arrays.domain_names is not None and arrays.domain_train is not None
        assert arrays.domain_test is not None
        domains = EvalDomains.from_arrays(
            arrays.domain_names, arrays.domain_train, arrays.domain_test, clients, device
        )
    strategy = build_strategy(
        settings["method"], num_clients=len(clients), num_classes=arrays.num_classes
    )
    strategy.bind_data(data, dataset_fingerprint(data_path))
    seed_everything(seed)
    model = build_model(
        train.model, arrays.num_classes, data.in_channels, data.image_size, train.width
    ).to(device)
    built = type(model)
    model, rows = run_federated(
        data,
        model,
        strategy,
        train,
        seed,
        checkpoint_path=out_dir / "checkpoint.pt",
        fingerprint=run_fingerprint(settings, data_path, partition_path),
        on_round_end=on_round_end,
        progress=progress,
        domains=domains,
    )
    extra = [
        c for c in pd.DataFrame(rows).columns if c not in METRIC_COLUMNS
    ]  # a strategy's own columns
    metrics = pd.DataFrame(rows, columns=METRIC_COLUMNS + extra)
    save_pretrained(
        model,
        out_dir,
        classifier_config(
            train.model, arrays.num_classes, data.in_channels, data.image_size, train.width
        ),
        wrapper=None if type(model) is built else str(settings["method"]["strategy"]),
    )
    info = {
        "labels": dict(labels or {}),
        "config": dict(settings),
        "resolved_training": train.to_dict(),
        "dataset_fingerprint": dataset_fingerprint(data_path),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "versions": package_versions(),
        "git_commit": git_commit(),
    }
    write_text_atomic(out_dir / "run.json", json.dumps(info, indent=2, default=str) + "\n")
    # metrics.csv last: its presence marks a finished run.
    with atomic_path(out_dir / "metrics.csv") as tmp:
        metrics.to_csv(tmp, index=False)
    (out_dir / "checkpoint.pt").unlink(missing_ok=True)
    return metrics
