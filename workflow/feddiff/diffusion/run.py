"""One federated DDPM run from files to files: the ``diffuse-train`` stage.

Reads the prepared dataset and the partition, trains with the mode's sharing rule,
scores FID, and writes into the run directory (each atomically, ``metrics.csv`` last
since it marks a finished run):

- ``metrics.csv``: per round ``round, train_loss, seconds, params_up, params_down,
  bytes_up, bytes_down`` and, where evaluated, ``fid, fid_kind, eval_seconds``
  (plus whatever server hooks add);
- ``communication.csv``: per round and client, the parts and the values/bytes sent;
- ``fid.json``: the final FID per model, their mean and std, and its kind;
- ``model/``: diffusers folders (see :mod:`feddiff.diffusion.io`);
- ``samples/<model>.png``: a grid per model (one row per class when conditional);
- ``run.json``: settings, labels, provenance.

A ``checkpoint.pt`` lets a killed run resume exactly; it is removed at the end.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from feddiff.auxiliary.store import load_auxiliary_tensors
from feddiff.calibration import CalibrationParams
from feddiff.calibration.calibrator import ServerCalibrator, adam
from feddiff.data.h5 import dataset_fingerprint, load_dataset
from feddiff.diffusion.ddpm import DenoisingObjective
from feddiff.diffusion.federated import (
    COMM_COLUMNS,
    METRIC_COLUMNS,
    Evaluator,
    ServerHook,
    State,
    run_federated_diffusion,
)
from feddiff.diffusion.fid import (
    FeatureExtractor,
    frechet_distance,
    load_feature_extractor,
)
from feddiff.diffusion.io import save_diffusion
from feddiff.diffusion.modes import build_mode
from feddiff.diffusion.parts import PARTS, payload_size, split_names
from feddiff.diffusion.sampling import fid_labels, generate, grid_indices, save_grid
from feddiff.diffusion.settings import DiffusionSettings
from feddiff.diffusion.unet import (
    build_scheduler,
    build_unet,
    is_conditional,
    null_class,
)
from feddiff.fl.data import FederatedData
from feddiff.fl.run import run_fingerprint
from feddiff.fl.sampling import derived_seed
from feddiff.partition.io import load_partition
from feddiff.utils.atomic import atomic_path, write_text_atomic
from feddiff.utils.device import resolve_device
from feddiff.utils.provenance import git_commit, package_versions
from feddiff.utils.seeding import seed_everything, torch_generator


class FIDEvaluator:
    """Samples ``num_samples`` images from each model and scores them against the test split.

    Every model draws from the same noise (seeded by run seed and round), so models
    of one run are compared on common random numbers; the last round's images and
    per-model distances are kept for the grids and ``fid.json``.
    """

    def __init__(
        self,
        template: torch.nn.Module,
        scheduler_config: dict,
        settings: DiffusionSettings,
        extractor: FeatureExtractor,
        test_images: torch.Tensor,
        test_labels: np.ndarray,
        num_classes: int,
        seed: int,
    ) -> None:
        self.scratch = copy.deepcopy(template)
        self.scheduler_config = dict(scheduler_config)
        self.sampling = settings.sampling
        self.extractor = extractor
        self.reference = extractor(test_images)
        self.num_classes = num_classes
        self.seed = seed
        n = self.sampling.num_samples
        self.labels = fid_labels(test_labels, n) if is_conditional(template) else None
        self.results: dict[int, dict[str, float]] = {}
        self.samples: dict[str, torch.Tensor] = {}

    def __call__(self, round: int, states: dict[str, State]) -> dict[str, Any]:
        s = self.sampling
        per_model: dict[str, float] = {}
        for name, state in states.items():
            self.scratch.load_state_dict(state)
            gen = torch_generator(derived_seed(self.seed, round, 0xF1D), self.scratch.device)
            labels = torch.as_tensor(self.labels) if self.labels is not None else None
            images = generate(
                self.scratch,
                self.scheduler_config,
                labels,
                s.num_samples,
                sampler=s.sampler,
                steps=s.steps,
                eta=s.eta,
                guidance_scale=s.guidance_scale,
                null_label=null_class(self.num_classes),
                generator=gen,
                batch_size=s.batch_size,
            )
            per_model[name] = frechet_distance(self.extractor(images), self.reference)
            self.samples[name] = images
        self.results[round] = per_model
        return {"fid": float(np.mean(list(per_model.values()))), "fid_kind": self.extractor.kind}


def diffusion_calibrator(
    calibration: Mapping[str, Any],
    data: FederatedData,
    unet: torch.nn.Module,
    scheduler: Any,
    cfg: DiffusionSettings,
    seed: int,
    data_fingerprint: str,
) -> ServerCalibrator:
    """FedDDPM's server step for the federated DDPM: the denoising loss on the auxiliary
    images (with their labels when the UNet is class-conditional), Adam at the local lr
    unless the calibration sets its own."""
    params = CalibrationParams(**dict(calibration))
    params.check()
    images, labels = load_auxiliary_tensors(
        str(params.auxiliary), data.x_train, data.num_classes, data_fingerprint
    )
    objective = DenoisingObjective(scheduler, is_conditional(unet))
    return ServerCalibrator(
        params,
        images,
        labels,
        objective,
        adam(),
        lr=cfg.training.lr,
        seed=seed,
        eval_batch_size=cfg.training.batch_size * 4,
    )


def diffuse_train(
    settings: Mapping[str, Any],
    data_path: Path,
    partition_path: Path,
    classifier_dir: Path,
    out_dir: Path,
    labels: Mapping[str, Any] | None = None,
    hooks: Sequence[ServerHook] = (),
    on_round_end: Callable[[int, dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run the federated DDPM described by ``settings`` and write its outputs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = DiffusionSettings.from_dict(dict(settings["diffusion"]))
    mode = build_mode(settings["mode"])
    seed = int(settings["seed"])
    arrays = load_dataset(data_path)
    clients, _meta = load_partition(partition_path)
    device = resolve_device(cfg.training.device)
    data = FederatedData.from_dataset(arrays, clients, device)
    seed_everything(seed)
    unet = build_unet(cfg.unet, data.in_channels, data.image_size, arrays.num_classes).to(device)
    scheduler = build_scheduler(cfg.scheduler)
    extractor = load_feature_extractor(cfg.fid.backend, classifier_dir, device)
    evaluator = FIDEvaluator(
        unet,
        dict(scheduler.config),
        cfg,
        extractor,
        data.x_test,
        arrays.y_test,
        arrays.num_classes,
        seed,
    )
    hooks = list(hooks)
    if settings.get("calibration"):  # FedDDPM / FedDDPM+ on the global model after aggregation
        hooks.append(
            diffusion_calibrator(
                settings["calibration"],
                data,
                unet,
                scheduler,
                cfg,
                seed,
                dataset_fingerprint(data_path),
            )
        )
    fingerprint = run_fingerprint(
        {
            **dict(settings),
            "fid_kind": extractor.kind,
            "classifier": hashlib.sha256(
                (Path(classifier_dir) / "model.safetensors").read_bytes()
            ).hexdigest(),
        },
        data_path,
        partition_path,
    )
    result = run_federated_diffusion(
        data,
        unet,
        scheduler,
        mode,
        cfg.training,
        seed,
        checkpoint_path=out_dir / "checkpoint.pt",
        fingerprint=fingerprint,
        hooks=hooks,
        evaluator=evaluator,
        on_round_end=on_round_end,
        progress=progress,
    )
    last = cfg.training.rounds
    if last not in evaluator.results:  # killed after the last checkpoint: re-score (deterministic)
        evaluator(last, result.model_states)
    _write_outputs(
        out_dir, cfg, settings, labels, result, evaluator, unet, scheduler, arrays, device
    )
    metrics = pd.DataFrame(result.rows)
    extra = [c for c in metrics.columns if c not in METRIC_COLUMNS]
    metrics = metrics.reindex(columns=METRIC_COLUMNS + extra)
    with atomic_path(out_dir / "metrics.csv") as tmp:
        metrics.to_csv(tmp, index=False)
    (out_dir / "checkpoint.pt").unlink(missing_ok=True)
    return metrics


def _write_outputs(
    out_dir: Path,
    cfg: DiffusionSettings,
    settings: Mapping[str, Any],
    labels: Mapping[str, Any] | None,
    result: Any,
    evaluator: FIDEvaluator,
    unet: torch.nn.Module,
    scheduler: Any,
    arrays: Any,
    device: torch.device,
) -> None:
    mode = result.mode
    parts_map = split_names(unet)
    state = unet.state_dict()
    part_sizes = {p: payload_size(state, parts_map[p])[0] for p in PARTS}
    layout = {
        "mode": mode.name,
        "shared_parts": sorted(mode.shared),
        "private_parts": sorted(mode.private),
    }
    save_diffusion(out_dir / "model", copy.deepcopy(unet), scheduler, result.model_states, layout)
    for name, images in evaluator.samples.items():
        rows = grid_indices(
            evaluator.labels, len(images), cfg.sampling.grid_per_class, arrays.num_classes
        )
        save_grid(images, rows, out_dir / "samples" / f"{name}.png")
    final = evaluator.results[cfg.training.rounds]
    values = np.array(list(final.values()))
    participation = pd.Series([c["client"] for c in result.communication]).value_counts()
    fid_doc = {
        "kind": evaluator.extractor.kind,
        "round": cfg.training.rounds,
        "num_samples": cfg.sampling.num_samples,
        "sampler": cfg.sampling.sampler,
        "steps": cfg.sampling.steps,
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else None,
        "per_model": final,
        "rounds_participated": {
            f"client{k}": int(participation.get(k, 0)) for k in range(result.num_clients)
        },
    }
    write_text_atomic(out_dir / "fid.json", json.dumps(fid_doc, indent=2) + "\n")
    with atomic_path(out_dir / "communication.csv") as tmp:
        pd.DataFrame(result.communication, columns=COMM_COLUMNS).to_csv(tmp, index=False)
    info = {
        "labels": dict(labels or {}),
        "config": dict(settings),
        "fid_kind": evaluator.extractor.kind,
        "model_layout": layout,
        "part_params": part_sizes,
        "dataset_fingerprint": arrays.attrs.get("fingerprint"),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "versions": package_versions(),
        "git_commit": git_commit(),
    }
    write_text_atomic(out_dir / "run.json", json.dumps(info, indent=2, default=str) + "\n")


__all__ = ["Evaluator", "FIDEvaluator", "diffuse_train"]
