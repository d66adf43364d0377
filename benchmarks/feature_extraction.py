"""Throughput of FedDifRC's feature extraction at Stable Diffusion 2.1's UNet size.

Builds a UNet2DConditionModel and an AutoencoderKL with SD 2.1's configurations
(random weights: throughput does not depend on the values, and nothing is downloaded)
and times the extractor's own code path (:func:`feddiff.features.extract.block_maps`:
VAE encode, noise, UNet up to the last requested decoder block) against a full UNet
forward. Reports UNet rows (image x prompt) per second and images per second for a
given number of prompts (CIFAR-10: 10 class prompts + the denoising one).

    python benchmarks/feature_extraction.py --device cuda            # SD 2.1 size, fp16
    python benchmarks/feature_extraction.py --device cuda --model stabilityai/stable-diffusion-2-1
    python benchmarks/feature_extraction.py --smoke                  # tiny models, CPU, seconds

Results go to benchmarks/results/feature_extraction_<device>.json (not in smoke mode).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch

from feddiff.features.backbones import Backbone, resolve_dtype
from feddiff.features.blocks import BlockCapture
from feddiff.features.extract import block_maps
from feddiff.features.settings import FeatureSettings
from feddiff.utils.device import resolve_device

SD21_UNET = {
    "sample_size": 96,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    "cross_attention_dim": 1024,
    "attention_head_dim": (5, 10, 20, 20),
    "use_linear_projection": True,
    "norm_num_groups": 32,
}
SD21_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "norm_num_groups": 32,
}
TINY_UNET = {
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 1,
    "block_out_channels": (8, 16, 16, 16),
    "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    "cross_attention_dim": 16,
    "attention_head_dim": 4,
    "norm_num_groups": 4,
}
TINY_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 1,
    "block_out_channels": (8, 8, 8, 8),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "norm_num_groups": 4,
}


class RandomSD(Backbone):
    """Stable Diffusion's UNet and VAE with random weights; random prompt embeddings."""

    def __init__(
        self,
        smoke: bool,
        device: torch.device,
        dtype: torch.dtype,
        image_size: int,
        num_prompts: int,
        model: str | None,
    ) -> None:
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

        self.device, self.dtype, self.image_size = device, dtype, image_size
        if model:
            from feddiff.features.backbones import (
                StableDiffusionBackbone,
                resolve_model_dir,
            )

            real = StableDiffusionBackbone(
                resolve_model_dir(model, "stable_diffusion"), device, dtype, image_size
            )
            self.unet, self.vae, self.scheduler = real.unet, real.vae, real.scheduler
            width = real.text_encoder.config.hidden_size
            length = real.tokenizer.model_max_length
        else:
            self.unet = (
                UNet2DConditionModel(**(TINY_UNET if smoke else SD21_UNET)).to(device, dtype).eval()
            )
            self.vae = AutoencoderKL(**(TINY_VAE if smoke else SD21_VAE)).to(device, dtype).eval()
            self.scheduler = DDIMScheduler(num_train_timesteps=1000)
            width, length = (16, 8) if smoke else (1024, 77)
        self.embeds = torch.randn(num_prompts, length, width, device=device, dtype=dtype)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        from feddiff.features.backbones import preprocess

        x = preprocess(images, self.image_size, 3).to(self.device, self.dtype)
        return self.vae.encode(x).latent_dist.mean * 0.18215

    def set_conditions(self, conditions: object) -> None:
        """Nothing to encode: the prompt embeddings are random, drawn at construction."""

    def unet_kwargs(self, cond_rows: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"encoder_hidden_states": self.embeds[cond_rows.to(self.device)]}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_it(fn, device: torch.device, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up (kernel selection, allocator)
    _sync(device)
    tic = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - tic) / repeats


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny models on CPU: checks the script runs"
    )
    parser.add_argument(
        "--model", default=None, help="load real Stable Diffusion weights (id or folder)"
    )
    parser.add_argument("--image-size", type=int, default=224, help="the reference code's 224")
    parser.add_argument(
        "--prompts", type=int, default=11, help="conditions per image (C classes + denoising)"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="images per step")
    parser.add_argument("--unet-batch-size", type=int, default=64, help="UNet rows per call")
    parser.add_argument("--blocks", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--date", default=None, help="recorded in the result (default: today)")
    parser.add_argument(
        "--device-label", default="", help="recorded in the result, e.g. 'NVIDIA H100 80GB'"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu") if args.smoke else resolve_device(args.device)
    dtype = resolve_dtype("auto", device)
    size = 16 if args.smoke else args.image_size
    batch = 2 if args.smoke else args.batch_size
    settings = FeatureSettings(
        blocks=tuple(args.blocks),
        dims=tuple(1 for _ in args.blocks),
        batch_size=batch,
        unet_batch_size=args.unet_batch_size,
        image_size=size,
    )
    backbone = RandomSD(args.smoke, device, dtype, size, args.prompts, args.model)
    images = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8)
    conds = range(args.prompts)
    repeats = 1 if args.smoke else args.repeats
    peak: dict[str, float | None] = {}
    _reset_peak(device)
    with torch.no_grad(), BlockCapture(backbone.unet, settings.blocks) as early:
        t_early = time_it(
            lambda: block_maps(backbone, early, images, range(batch), 0, settings, conds),
            device,
            repeats,
        )
    peak["early_stop"] = _peak_mib(device)
    _reset_peak(device)
    with torch.no_grad(), BlockCapture(backbone.unet, settings.blocks, stop_early=False) as full:
        t_full = time_it(
            lambda: block_maps(backbone, full, images, range(batch), 0, settings, conds),
            device,
            repeats,
        )
    peak["full_forward"] = _peak_mib(device)
    rows = batch * args.prompts
    result = {
        "smoke": args.smoke,
        "device": str(device),
        "dtype": str(dtype),
        "gpu": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor(),
        "torch": torch.__version__,
        "model": args.model or ("tiny (random)" if args.smoke else "SD 2.1 config (random)"),
        "image_size": size,
        "prompts": args.prompts,
        "blocks": args.blocks,
        "images_per_step": batch,
        "unet_batch_size": args.unet_batch_size,
        "seconds_per_step_early_stop": t_early,
        "seconds_per_step_full_forward": t_full,
        "images_per_second": batch / t_early,
        "unet_rows_per_second": rows / t_early,
        "early_stop_speedup": t_full / t_early,
        # CUDA: torch.cuda.max_memory_allocated per variant; CPU: the process's peak RSS so far
        # (ru_maxrss never decreases, so the full-forward figure is an upper bound of its own).
        "peak_memory_kind": "cuda max_memory_allocated"
        if device.type == "cuda"
        else "process peak RSS",
        "peak_memory_mib_early_stop": peak["early_stop"],
        "peak_memory_mib_full_forward": peak["full_forward"],
        "date": args.date or time.strftime("%Y-%m-%d"),
        "device_label": args.device_label,
        "torch_threads": torch.get_num_threads(),
        "repeats": repeats,
        "command": "python benchmarks/feature_extraction.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result, indent=2))
    out = args.out or (
        None
        if args.smoke
        else Path(__file__).parent / "results" / f"feature_extraction_{device.type}.json"
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        out.with_suffix(".md").write_text(_markdown(result))


def _markdown(r: dict) -> str:
    lines = [f"# Feature extraction throughput ({r['model']})", ""]
    lines += [
        f"- {k}: {r[k]}"
        for k in (
            "date",
            "device",
            "device_label",
            "gpu",
            "dtype",
            "torch",
            "torch_threads",
            "image_size",
            "prompts",
            "blocks",
            "images_per_step",
            "unet_batch_size",
            "repeats",
            "command",
        )
    ]
    lines += [
        "",
        "| variant | s/step | images/s | UNet rows/s | peak memory MiB | speed-up |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    n, rows = r["images_per_step"], r["images_per_step"] * r["prompts"]
    for name, key in (
        ("stop after the last needed block", "early_stop"),
        ("full UNet forward", "full_forward"),
    ):
        t = r[f"seconds_per_step_{key}"]
        ratio = r["seconds_per_step_full_forward"] / t
        lines.append(
            f"| {name} | {t:.3g} | {n / t:.3g} | {rows / t:.3g} | "
            f"{r[f'peak_memory_mib_{key}']:.0f} | {ratio:.2f}x |"
        )
    lines += [
        "",
        f"Peak memory: {r['peak_memory_kind']}. speed-up = full-forward time / this variant's "
        "time.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
