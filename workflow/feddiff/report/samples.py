"""One figure of a federated DDPM run's sample grids, for the HTML report.

``diffuse-train`` writes ``samples/<model>.png`` per scored model (``global`` for
FULL/USPLIT, one per client for UDEC/ULATDEC: shared parts plus the client's own
private ones), one row per class. This puts them side by side in one PNG (and a PDF),
each panel titled with the model and its final-round FID (from ``fid.json``), so the
report shows a run's samples as a single figure.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from feddiff.utils.atomic import atomic_path

MAX_COLUMNS = 5


def _order(name: str) -> tuple[int, int, str]:
    """``global`` first, then clients by number, then anything else by name."""
    if name == "global":
        return (0, 0, name)
    match = re.fullmatch(r"client(\d+)", name)
    return (1, int(match.group(1)), name) if match else (2, 0, name)


def sample_grids(run_dir: Path) -> list[tuple[str, Path]]:
    """(model name, PNG) of every grid under ``run_dir/samples``, in display order."""
    grids = sorted(Path(run_dir, "samples").glob("*.png"), key=lambda p: _order(p.stem))
    if not grids:
        raise FileNotFoundError(f"{Path(run_dir, 'samples')}: no sample grids (*.png)")
    return [(p.stem, p) for p in grids]


def build_sample_figure(run_dir: Path, title: str | None = None) -> Figure:
    """One panel per model grid, titled with the model's final FID when ``fid.json`` has it."""
    run_dir = Path(run_dir)
    grids = sample_grids(run_dir)
    fid_path = run_dir / "fid.json"
    fid = json.loads(fid_path.read_text()) if fid_path.is_file() else {}
    per_model = fid.get("per_model") or {}
    kind = str(fid.get("kind", ""))
    short = "FID" if kind.startswith("Inception") else "FD"
    cols = min(MAX_COLUMNS, len(grids))
    rows = math.ceil(len(grids) / cols)
    images = [np.asarray(Image.open(path).convert("RGB")) for _, path in grids]
    aspect = max(im.shape[0] / im.shape[1] for im in images)
    fig = Figure(figsize=(2.8 * cols, 2.8 * aspect * rows + 0.9), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (name, _), image in zip(axes.flat, grids, images):
        ax.imshow(image, interpolation="nearest")
        score = per_model.get(name)
        ax.set_title(
            f"{name}" + (f" · {short} {float(score):.2f}" if score is not None else ""), fontsize=9
        )
    heading = title or run_dir.as_posix()
    note = "generated samples, one row per class for a class-conditional model"
    if kind:
        note += (
            f"; score: {kind} on {fid.get('num_samples', '?')} samples "
            f"after round {fid.get('round', '?')}"
        )
    fig.suptitle(f"{heading}\n{note}", fontsize=9)
    return fig


def make_sample_figure(run_dir: Path, out_png: Path, title: str | None = None) -> None:
    """Write ``out_png`` and a PDF with the same stem, both atomically."""
    fig = build_sample_figure(run_dir, title)
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    with atomic_path(out_png.with_suffix(".pdf")) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None})
