"""Generation: DDPM ancestral or DDIM sampling, labels for FID, sample grids as PNG.

Samplers come from the training scheduler's config (``DDIMScheduler.from_config``),
so betas always match what the model was trained with. Initial noise and DDPM's
per-step noise draw from one explicit generator: the same seed gives the same
images, whatever else used the global RNG before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from PIL import Image

from feddiff.diffusion.ddpm import to_uint8
from feddiff.diffusion.unet import is_conditional
from feddiff.utils.atomic import atomic_path


def fid_labels(reference_labels: np.ndarray, num: int) -> np.ndarray:
    """``num`` labels with the class frequencies of ``reference_labels``, sorted.

    Taken at evenly spaced quantiles of the sorted reference labels: deterministic,
    proportional to the test split's class balance, and grouped by class (so the
    first samples of each class make the grid).
    """
    ordered = np.sort(np.asarray(reference_labels, dtype=np.int64))
    pos = ((np.arange(num) + 0.5) * len(ordered) / num).astype(np.int64)
    return ordered[np.clip(pos, 0, len(ordered) - 1)]


def _sampler(name: str, scheduler_config: dict, steps: int) -> DDPMScheduler | DDIMScheduler:
    if name == "ddim":
        sched = DDIMScheduler.from_config(scheduler_config)
    elif name == "ddpm":
        sched = DDPMScheduler.from_config(scheduler_config)
    else:
        raise ValueError(f"unknown sampler {name!r}; choose 'ddpm' or 'ddim'")
    sched.set_timesteps(min(int(steps), int(scheduler_config["num_train_timesteps"])))
    return sched


@torch.no_grad()
def generate(
    unet: UNet2DModel,
    scheduler_config: dict,
    labels: torch.Tensor | None,
    num: int,
    *,
    sampler: str = "ddim",
    steps: int = 50,
    eta: float = 0.0,
    guidance_scale: float = 1.0,
    null_label: int | None = None,
    generator: torch.Generator,
    batch_size: int = 500,
) -> torch.Tensor:
    """``num`` images as uint8 NCHW on the CPU.

    A class-conditional UNet is given ``labels``; ``guidance_scale`` != 1 applies
    classifier-free guidance against ``null_label`` (one extra forward per step).
    """
    unet.eval()
    device = unet.device
    conditional = is_conditional(unet)
    if conditional and (labels is None or len(labels) != num):
        raise ValueError("a class-conditional UNet needs one label per sample")
    c, s = unet.config.in_channels, unet.config.sample_size
    out = []
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        sched = _sampler(sampler, scheduler_config, steps)
        x = torch.randn((n, c, s, s), device=device, generator=generator)
        y = labels[start : start + n].to(device) if conditional and labels is not None else None
        for t in sched.timesteps:
            tt = torch.full((n,), int(t), device=device, dtype=torch.long)
            eps = unet(x, tt, class_labels=y).sample
            if conditional and guidance_scale != 1.0:
                if null_label is None:
                    raise ValueError("guidance needs the null label")
                uncond = unet(x, tt, class_labels=torch.full_like(y, null_label)).sample
                eps = uncond + guidance_scale * (eps - uncond)
            kwargs = {"eta": eta} if sampler == "ddim" else {}
            x = sched.step(eps, t, x, generator=generator, **kwargs).prev_sample
        out.append(to_uint8(x).cpu())
    return torch.cat(out)


def grid_indices(
    labels: np.ndarray | None, num: int, per_class: int, num_classes: int
) -> list[list[int]]:
    """Rows of sample indices: one row per class (its first samples), or plain rows."""
    if labels is None:
        idx = list(range(min(num, per_class * num_classes)))
        return [idx[i : i + per_class] for i in range(0, len(idx), per_class)]
    rows = []
    for c in range(num_classes):
        hits = np.flatnonzero(np.asarray(labels) == c)[:per_class].tolist()
        if hits:
            rows.append(hits)
    return rows


def save_grid(images: torch.Tensor, rows: list[list[int]], path: Path, scale: int = 0) -> None:
    """Write a PNG grid (one row per list of indices), upscaled so tiny images stay visible."""
    if not rows:
        raise ValueError("no samples to put in a grid")
    _, c, h, w = images.shape
    scale = scale or max(1, 32 // max(h, w))
    pad = 1
    ncols = max(len(r) for r in rows)
    canvas = np.full(((h + pad) * len(rows) + pad, (w + pad) * ncols + pad, c), 255, np.uint8)
    arr = images.permute(0, 2, 3, 1).numpy()
    for i, row in enumerate(rows):
        for j, k in enumerate(row):
            y0, x0 = pad + i * (h + pad), pad + j * (w + pad)
            canvas[y0 : y0 + h, x0 : x0 + w] = arr[k]
    img = Image.fromarray(canvas[..., 0] if c == 1 else canvas)
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
