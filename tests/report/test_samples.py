"""A federated DDPM run's sample grids as one figure (PNG and PDF) for the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from feddiff.report.samples import build_sample_figure, make_sample_figure, sample_grids


def _run_dir(tmp_path: Path, models: list[str], fid: bool = True) -> Path:
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in models:
        Image.fromarray(rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)).save(
            run / "samples" / f"{name}.png"
        )
    if fid:
        doc = {
            "kind": "classifier-feature FD (not Inception FID)",
            "round": 3,
            "num_samples": 50,
            "per_model": {name: 10.0 + i for i, name in enumerate(models)},
        }
        (run / "fid.json").write_text(json.dumps(doc))
    return run


def test_grids_in_display_order(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, ["client10", "client2", "global", "zeta"])
    assert [name for name, _ in sample_grids(run)] == ["global", "client2", "client10", "zeta"]


def test_panels_titled_with_their_scores(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, [f"client{k}" for k in range(7)])
    fig = build_sample_figure(run, title="digits · dir · udec · seed 0")
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(fig.axes) == 10 and len(titled) == 7  # 2 rows of 5, the spare panels blank
    assert (
        titled[0].get_title() == "client0 · FD 10.00"
        and titled[6].get_title() == "client6 · FD 16.00"
    )
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    assert (
        suptitle.startswith("digits · dir · udec · seed 0\n")
        and "FD (not Inception FID) on 50 samples" in suptitle
    )


def test_writes_png_and_pdf(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, ["global"], fid=False)
    out = tmp_path / "figs" / "seed0.png"
    make_sample_figure(run, out)
    assert Image.open(out).size[0] > 300 and out.with_suffix(".pdf").stat().st_size > 1000
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "seed0.pdf",
        "seed0.png",
    ]  # no temporaries left


def test_no_grids_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "run" / "samples").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no sample grids"):
        sample_grids(tmp_path / "run")
