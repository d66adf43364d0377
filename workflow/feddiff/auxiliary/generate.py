"""The ``generate-auxiliary`` stage: the server's auxiliary set for one partition and seed.

``local_ddpm``: each client trains a class-conditional DDPM (the ``diffusion``
section's UNet and schedule) on its data and uploads it once; the server samples each
model for the classes its client holds, in proportion to its counts
(:func:`~feddiff.auxiliary.allocation.allocate`), and records which model made which
image. ``stable_diffusion``: the same class mix from a text-to-image model.

Writes ``<out>.h5`` (last, atomically) and beside it ``<out>/counts.csv`` (the
allocation per client and class, with each client model's training loss and digest)
and ``<out>/grid.png`` (a few images per class). Each finished client's images wait in
``<out>.h5.partial/`` until the file is written, so a killed job resumes with the next
client and produces the same file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from feddiff.auxiliary.allocation import allocate, class_counts
from feddiff.auxiliary.local_ddpm import sample_client, state_digest, train_client_model
from feddiff.auxiliary.settings import AuxiliarySettings
from feddiff.auxiliary.store import (
    STABLE_DIFFUSION_SOURCE,
    AuxiliarySet,
    save_auxiliary,
)
from feddiff.data.h5 import dataset_fingerprint, load_dataset
from feddiff.diffusion.sampling import grid_indices, save_grid
from feddiff.diffusion.settings import SchedulerSettings, UNetSettings
from feddiff.diffusion.unet import build_scheduler, build_unet
from feddiff.fl.data import FederatedData
from feddiff.partition.io import load_partition
from feddiff.utils.atomic import atomic_path, write_text_atomic
from feddiff.utils.device import resolve_device
from feddiff.utils.provenance import git_commit, package_versions
from feddiff.utils.seeding import seed_everything


def side_dir(out_path: Path) -> Path:
    """The folder beside ``<name>.h5`` that holds its counts and grid."""
    return out_path.with_suffix("")


def generate_auxiliary(
    settings: Mapping[str, Any],
    data_path: Path,
    partition_path: Path,
    out_path: Path,
    progress: bool = True,
) -> AuxiliarySet:
    """Generate and write the auxiliary set described by ``settings``.

    ``settings``: ``auxiliary`` (an entry of the section), ``seed``, and for
    ``local_ddpm`` the ``diffusion`` section's ``unet`` and ``scheduler``.
    """
    aux = AuxiliarySettings.from_dict(dict(settings["auxiliary"]))
    seed = int(settings["seed"])
    arrays = load_dataset(data_path)
    clients, _meta = load_partition(partition_path)
    counts = class_counts(arrays.y_train, clients, arrays.num_classes)
    alloc = allocate(counts, aux.size)
    device = resolve_device(aux.device)
    size, channels = arrays.x_train.shape[1], arrays.x_train.shape[3]
    rows: list[dict[str, Any]] = []
    partial = out_path.with_name(out_path.name + ".partial")
    if aux.generator == "local_ddpm":
        fingerprint = hashlib.sha256(
            json.dumps(
                {
                    "settings": dict(settings),
                    "data": dataset_fingerprint(data_path),
                    "partition": hashlib.sha256(Path(partition_path).read_bytes()).hexdigest(),
                },
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()
        images, labels, source = _from_local_ddpms(
            settings,
            aux,
            arrays,
            clients,
            alloc,
            device,
            seed,
            rows,
            progress,
            partial,
            fingerprint,
        )
    else:
        images, labels = _from_stable_diffusion(
            aux, alloc, arrays.class_names, size, channels, seed, device
        )
        source = np.full(len(labels), STABLE_DIFFUSION_SOURCE, dtype=np.int64)
        rows = [
            {"client": k, "model": "stable_diffusion", **_per_class(alloc[k], arrays.class_names)}
            for k in range(len(clients))
        ]
    result = AuxiliarySet(
        images,
        labels,
        source,
        {
            "generator": aux.generator,
            "settings": json.dumps(dict(settings), sort_keys=True, default=str),
            "dataset_fingerprint": dataset_fingerprint(data_path),
            "partition": str(partition_path),
            "seed": seed,
            "allocation": json.dumps(alloc.tolist()),
            "class_names": json.dumps(arrays.class_names),
            "versions": json.dumps(package_versions(), default=str),
            "git_commit": git_commit() or "",
        },
    )
    extra = side_dir(out_path)
    extra.mkdir(parents=True, exist_ok=True)
    with atomic_path(extra / "counts.csv") as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    if len(images):
        nchw = torch.from_numpy(images).permute(0, 3, 1, 2)
        save_grid(
            nchw, grid_indices(labels, len(labels), 8, arrays.num_classes), extra / "grid.png"
        )
    save_auxiliary(result, out_path)
    shutil.rmtree(partial, ignore_errors=True)  # the finished file replaces the per-client pieces
    return result


def _per_class(row: np.ndarray, class_names: list[str]) -> dict[str, int]:
    return {f"n_{name}": int(n) for name, n in zip(class_names, row)}


def _from_local_ddpms(
    settings: Mapping[str, Any],
    aux: AuxiliarySettings,
    arrays: Any,
    clients: list[np.ndarray],
    alloc: np.ndarray,
    device: torch.device,
    seed: int,
    rows: list[dict[str, Any]],
    progress: bool,
    partial: Path,
    fingerprint: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each client's model trained and sampled in turn; a finished client is kept in
    ``partial`` so that a killed job resumes with the next one (same streams, same images)."""
    unet_settings = UNetSettings(**dict(settings.get("unet") or {}))
    if not unet_settings.class_conditional:
        raise ValueError(
            "auxiliary generator local_ddpm needs diffusion.unet.class_conditional: true "
            "(the server asks each model for given classes)"
        )
    data = FederatedData.from_dataset(arrays, clients, device)
    seed_everything(seed)
    template = build_unet(unet_settings, data.in_channels, data.image_size, arrays.num_classes).to(
        device
    )
    scheduler = build_scheduler(SchedulerSettings(**dict(settings.get("scheduler") or {})))
    holders = [k for k in range(len(clients)) if len(clients[k]) > 0]
    _open_partial(partial, fingerprint)
    images, labels, source = [], [], []
    for client in tqdm(holders, desc="client DDPMs", disable=not progress):
        done = partial / f"client{client}.npz"
        if done.is_file():
            with np.load(done, allow_pickle=False) as f:  # a file in results/: never unpickle
                x, y, row = f["images"], f["labels"], json.loads(str(f["row"]))
        else:
            unet, loss = train_client_model(template, scheduler, data, aux, seed, client)
            xt, y = sample_client(
                unet, dict(scheduler.config), alloc[client], aux, seed, client, arrays.num_classes
            )
            x = xt.permute(0, 2, 3, 1).numpy()
            row = {
                "client": client,
                "model": state_digest(unet),
                "train_loss": loss,
                "local_samples": len(clients[client]),
                **_per_class(alloc[client], arrays.class_names),
            }
            with atomic_path(done) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, images=x, labels=y, row=np.array(json.dumps(row)))
        images.append(x)
        labels.append(y)
        source.append(np.full(len(y), client, dtype=np.int64))
        rows.append(row)
    return np.concatenate(images), np.concatenate(labels), np.concatenate(source)


def _open_partial(partial: Path, fingerprint: str) -> None:
    """Reuse ``partial`` only if it was made with the same settings, data and partition."""
    stamp = partial / "fingerprint"
    if partial.is_dir() and (not stamp.is_file() or stamp.read_text() != fingerprint):
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    if not stamp.is_file():
        write_text_atomic(stamp, fingerprint)


def _from_stable_diffusion(
    aux: AuxiliarySettings,
    alloc: np.ndarray,
    class_names: list[str],
    size: int,
    channels: int,
    seed: int,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    from feddiff.auxiliary.stable_diffusion import generate_sd

    return generate_sd(aux, alloc.sum(axis=0), class_names, size, channels, seed, device)
