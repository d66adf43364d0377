"""The ``extract-features`` stage: diffusion representations of every image, cached in HDF5.

For each image: resize, encode (VAE for Stable Diffusion, none for the DDPM), add
noise at ``timestep`` with the model's scheduler, run the UNet once per condition up
to the deepest requested decoder block (:mod:`feddiff.features.blocks`), and keep the
requested blocks' outputs, averaged over ``ensemble`` noise draws (as the reference
code's ``forward_ensemble``). Per block, a PCA fitted once on training hypercolumns
reduces each hypercolumn; the result is pooled over space and the blocks are
concatenated (:mod:`feddiff.features.pca`).

Two passes: the PCA fit over ``pca_fit_images`` training images (0: all), then the
projection of every train and test image. Training images are run under every
condition (TDCL and NDCR need them); test images only under the denoising one (the
figures and probes use that label-free representation), which saves C UNet passes
per test image. Choices:

* The noise of image ``i`` and draw ``e`` is drawn from a generator seeded by
  ``(seed, split, i, e)``: results do not depend on batch size, order or on being
  resumed, and all conditions of one image see the same noise (common random numbers:
  the representations of one image differ only by the prompt). The reference draws
  fresh noise per call.
* VAE posterior mean rather than a sample (the reference samples; the difference is
  the VAE's small posterior noise, which only adds variance).
* The PCA is fitted on the hypercolumns of every condition (class prompts and the
  denoising one), in one basis for all, fitted once; the reference fits a new PCA on
  every batch, so its coordinates are not comparable across batches.

Resuming: the in-progress file holds a ``done`` mask per split and, during the fit,
the running moments (saved every few batches); a rerun with the same settings picks
up where the last one stopped. A file made with other settings is rebuilt.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from feddiff.data.h5 import dataset_fingerprint, load_dataset
from feddiff.features.backbones import (
    DDPM_PARTS,
    SD_PARTS,
    Backbone,
    ddpm_model_dir,
    default_image_size,
    load_backbone,
    model_fingerprint,
    resolve_dtype,
    resolve_model_dir,
)
from feddiff.features.blocks import BlockCapture
from feddiff.features.pca import LayerPCA, MomentAccumulator, fit_pca, reduce_maps
from feddiff.features.prompts import Conditions, build_conditions
from feddiff.features.settings import FeatureSettings
from feddiff.features.store import (
    FORMAT,
    SPLITS,
    canonical,
    create_file,
    is_current,
    load_fit_state,
    load_pca,
    partial_path,
    read_identity,
    save_fit_state,
    save_pca,
)
from feddiff.fl.sampling import derived_seed
from feddiff.utils.device import resolve_device

log = logging.getLogger(__name__)

#: Save the PCA fit's running moments every this many batches.
FIT_SAVE_EVERY = 10
#: Called after every batch with (phase, images done in this phase).
BatchCallback = Callable[[str, int], None]


@dataclass
class ExtractionResult:
    """What one call did: ``skipped`` when the cache was already current."""

    path: Path
    skipped: bool = False
    fit_images: int = 0
    extracted: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Plan:
    """Everything resolved before any model is loaded (cheap: hashes, configs)."""

    settings: FeatureSettings
    model_dir: Path
    image_size: int
    dtype: torch.dtype
    device: torch.device
    conditions: Conditions
    identity: dict[str, Any]
    info: dict[str, Any]


def make_plan(
    data_path: Path, settings: FeatureSettings, class_names: list[str], where: str = "features"
) -> Plan:
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    model_dir = resolve_model_dir(settings.model_ref, settings.backbone, key=f"{where}.model")
    if settings.backbone == "ddpm":
        model_dir = ddpm_model_dir(model_dir)
    fingerprint = model_fingerprint(
        model_dir, DDPM_PARTS if settings.backbone == "ddpm" else SD_PARTS
    )
    image_size = int(settings.image_size or default_image_size(settings.backbone, model_dir))
    conditions = build_conditions(settings, class_names)
    dtype_name = str(dtype).removeprefix("torch.")
    identity = {
        "format": FORMAT,
        "settings": settings.identity(),
        "model_fingerprint": fingerprint,
        "image_size": image_size,
        "dtype": dtype_name,
        "conditions": [str(c) for c in conditions.names],
        "dataset_fingerprint": dataset_fingerprint(data_path),
        "class_names": list(class_names),
    }
    info = {
        **settings.identity(),
        "model": settings.model_ref,
        "model_dir": str(model_dir),
        "model_fingerprint": fingerprint,
        "image_size": image_size,
        "dtype": dtype_name,
        "conditions": identity["conditions"],
        "num_conditional": len(conditions.conditional),
        "dataset": str(data_path),
        "dataset_fingerprint": identity["dataset_fingerprint"],
        "class_names": list(class_names),
        "layer_dims": list(settings.dims),
        "device": str(device),
        "settings": settings.to_dict(),  # everything as given, batch sizes included
    }
    return Plan(settings, model_dir, image_size, dtype, device, conditions, identity, info)


def image_noise(
    shape: Sequence[int], seed: int, split: int, indices: Sequence[int], draws: int
) -> torch.Tensor:
    """(len(indices) * draws, *shape) standard normal noise, row ``i * draws + e`` for image i, draw
    e."""
    out = torch.empty((len(indices) * draws, *shape))
    gen = torch.Generator()
    for i, index in enumerate(indices):
        for e in range(draws):
            gen.manual_seed(derived_seed(seed, split, int(index), e))
            out[i * draws + e] = torch.randn(tuple(shape), generator=gen)
    return out


@torch.no_grad()
def block_maps(
    backbone: Backbone,
    capture: BlockCapture,
    images: torch.Tensor,
    indices: Sequence[int],
    split: int,
    settings: FeatureSettings,
    conditions: Sequence[int],
) -> list[torch.Tensor]:
    """Per requested block, float32 maps (B, K, C, h, w) averaged over the noise draws.

    ``conditions`` are indices into the backbone's conditions (K of them). Rows are
    (image, draw, condition) triples, run through the UNet in chunks of
    ``unet_batch_size``.
    """
    clean = backbone.encode(images)
    b, draws, k = clean.shape[0], settings.ensemble, len(conditions)
    cond_ids = torch.as_tensor(list(conditions), dtype=torch.long)
    noise = image_noise(clean.shape[1:], settings.seed, split, indices, draws)
    noisy = backbone.add_noise(clean.repeat_interleave(draws, 0), noise, settings.timestep)
    rows = b * draws * k
    out: list[torch.Tensor | None] = [None] * len(capture.blocks)
    for start in range(0, rows, settings.unet_batch_size):
        r = torch.arange(start, min(rows, start + settings.unet_batch_size), device=noisy.device)
        t = torch.full((r.numel(),), settings.timestep, dtype=torch.long, device=noisy.device)
        maps = capture(noisy[r // k], t, **backbone.unet_kwargs(cond_ids[(r % k).cpu()]))
        for j, block in enumerate(capture.blocks):
            m = maps[block].float()
            if out[j] is None:
                out[j] = m.new_empty((rows, *m.shape[1:]))
            out[j][start : start + r.numel()] = m
    return [o.reshape(b, draws, k, *o.shape[1:]).mean(1) for o in out if o is not None]


def reduce_all(
    maps: Sequence[torch.Tensor], pcas: Sequence[LayerPCA], pooling: str
) -> torch.Tensor:
    """(B, K, D): per-block PCA + pooling, blocks concatenated in order."""
    return torch.cat([reduce_maps(m, p, pooling) for m, p in zip(maps, pcas)], dim=-1)


def fit_subset(num_train: int, settings: FeatureSettings) -> np.ndarray:
    """The training images the PCA is fitted on: all, or a seeded sorted subset."""
    n = settings.pca_fit_images
    if n == 0 or n >= num_train:
        return np.arange(num_train)
    rng = np.random.default_rng(derived_seed(settings.seed, 0x9CA))
    return np.sort(rng.choice(num_train, size=n, replace=False))


def _batches(indices: np.ndarray, size: int) -> list[np.ndarray]:
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def _rows(idx: np.ndarray) -> slice | np.ndarray:
    """A slice when ``idx`` is contiguous (fast HDF5 write), else the sorted indices."""
    if len(idx) and idx[-1] - idx[0] + 1 == len(idx):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def extract_features(
    data_path: str | Path,
    settings: FeatureSettings,
    out: str | Path,
    *,
    where: str = "features",
    progress: bool = True,
    on_batch: BatchCallback | None = None,
) -> ExtractionResult:
    """Build (or reuse, or resume) the features file ``out``; see the module docstring."""
    tic = time.perf_counter()
    data_path, out = Path(data_path), Path(out)
    arrays = load_dataset(data_path)
    plan = make_plan(data_path, settings, arrays.class_names, where)
    result = ExtractionResult(path=out)
    if is_current(out, plan.identity):
        log.info("%s is up to date; nothing to extract", out)
        result.skipped = True
        return result
    if out.exists():
        log.warning("%s was made with other settings, model or data: rebuilding it", out)
    partial = partial_path(out)
    stored, _ = read_identity(partial) if partial.exists() else (None, False)
    if partial.exists() and stored != canonical(plan.identity):
        log.warning("discarding %s: it was started with other settings", partial)
        partial.unlink()
    k = len(plan.conditions.conditional)
    images = {"train": arrays.x_train, "test": arrays.x_test}
    if not partial.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        create_file(
            partial,
            plan.identity,
            plan.info,
            {s: len(images[s]) for s in SPLITS},
            k,
            sum(settings.dims),
            {"train": arrays.y_train, "test": arrays.y_test},
        )
    backbone = load_backbone(
        settings.backbone,
        plan.model_dir,
        plan.device,
        plan.dtype,
        plan.image_size,
        arrays.num_classes,
        key=f"{where}.model",
    )
    if not 0 <= settings.timestep < backbone.num_train_timesteps:
        raise ValueError(
            f"{where}.timestep must be in [0, {backbone.num_train_timesteps}) for this model, "
            f"got {settings.timestep}"
        )
    backbone.set_conditions(plan.conditions)
    subset = fit_subset(len(arrays.y_train), settings)
    with (
        BlockCapture(backbone.unet, settings.blocks, where=f"{where}.blocks") as capture,
        h5py.File(partial, "r+") as f,
    ):
        pending = {s: np.flatnonzero(~f[f"{s}/done"][()]) for s in SPLITS}
        pcas = load_pca(f)
        fit_state = load_fit_state(f, len(settings.blocks)) if pcas is None else None
        fit_start = fit_state[1] if fit_state else 0
        todo = (0 if pcas is not None else len(subset) - fit_start) + sum(
            len(p) for p in pending.values()
        )
        bar = tqdm(
            total=todo, desc=f"features {settings.backbone}", unit="img", disable=not progress
        )

        def run(split: str, idx: np.ndarray, conditions: Sequence[int]) -> list[torch.Tensor]:
            x = torch.from_numpy(np.ascontiguousarray(images[split][idx]))
            return block_maps(
                backbone, capture, x, idx.tolist(), SPLITS.index(split), settings, conditions
            )

        if pcas is None:
            acc_device = (
                torch.device("cpu") if plan.device.type == "mps" else plan.device
            )  # no float64 on MPS
            accs = [a.to(acc_device) for a in fit_state[0]] if fit_state else None
            done = fit_start
            for n, idx in enumerate(_batches(subset[fit_start:], settings.batch_size), start=1):
                maps = run("train", idx, range(k + 1))
                if accs is None:
                    accs = [MomentAccumulator.empty(m.shape[-3], acc_device) for m in maps]
                for acc, m in zip(accs, maps):
                    acc.update(m)
                done += len(idx)
                bar.update(len(idx))
                if n % FIT_SAVE_EVERY == 0:
                    save_fit_state(f, accs, done)
                if on_batch is not None:
                    on_batch("fit", done)
            assert accs is not None
            pcas = [fit_pca(a, d, where=f"{where}.dims") for a, d in zip(accs, settings.dims)]
            save_pca(f, pcas)
            result.fit_images = len(subset) - fit_start
        for split in SPLITS:
            count = 0
            conditions = range(k + 1) if split == "train" else [k]
            for idx in _batches(pending[split], settings.batch_size):
                reps = reduce_all(run(split, idx, conditions), pcas, settings.pooling).cpu().numpy()
                rows = _rows(idx)
                if split == "train":
                    f[f"{split}/conditional"][rows] = reps[:, :k]
                f[f"{split}/denoised"][rows] = reps[:, -1]
                f.flush()
                f[f"{split}/done"][rows] = True
                f.flush()
                count += len(idx)
                bar.update(len(idx))
                if on_batch is not None:
                    on_batch(split, count)
            result.extracted[split] = count
        bar.close()
        f.attrs["complete"] = True
    os.replace(partial, out)
    result.seconds = time.perf_counter() - tic
    log.info("wrote %s in %.1fs", out, result.seconds)
    return result
