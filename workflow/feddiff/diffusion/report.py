"""FedDiffuse results: FID × mode × partition with communication, as tables and a figure.

Per (dataset, partition, mode) the table gives the final-round FID as mean ± sample
std over seeds (``ddof=1``; no ± for one seed), the parameters and bytes sent up and
down summed over all rounds and clients (mean over seeds), and the reduction against
FULL in the same setting. The FID column carries its kind: offline it is the
classifier-feature Fréchet distance, never to be read as Inception FID.

:func:`communication_plan` gives the same communication columns without training:
which parts each mode sends is fixed by the mode, the client sampling and the UNet's
part sizes, so a config's parameter savings (e.g. at a paper's UNet size, beside
FedDiffuse's "up to 74 %") are known before any GPU time is spent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from feddiff.diffusion.kinds import KIND_INCEPTION
from feddiff.diffusion.modes import build_mode
from feddiff.diffusion.parts import PARTS, names_of, payload_size, split_names
from feddiff.fl.sampling import sample_clients
from feddiff.report import render
from feddiff.report.calibration import CalibratedRun, has_calibration, plot_calibration
from feddiff.report.render import (
    DASH,
    Block,
    Document,
    format_cell,
    seed_spread,
    tex_label,
    write_document,
)
from feddiff.utils.atomic import atomic_path

KEYS = ["dataset", "partition", "mode"]
TOTALS = ["params_up", "params_down", "bytes_up", "bytes_down"]
TABLE_COLUMNS = [
    *KEYS,
    "n_seeds",
    "n_rounds",
    "fid_kind",
    "num_samples",
    "fid_mean",
    "fid_std",
    *TOTALS,
    "params_total",
    "bytes_total",
    "up_reduction_vs_full_pct",
    "total_reduction_vs_full_pct",
]


def load_diffusion_run(run_dir: Path, labels: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One finished run reduced to its labels, final FID and communication totals."""
    run_dir = Path(run_dir)
    metrics_path, fid_path = run_dir / "metrics.csv", run_dir / "fid.json"
    for path in (metrics_path, fid_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (run not finished?)")
    metrics = pd.read_csv(metrics_path)
    missing = [c for c in ["round", "fid", *TOTALS] if c not in metrics.columns]
    if missing or metrics.empty:
        raise ValueError(f"{metrics_path}: missing column(s) {missing} or no rounds")
    fid = json.loads(fid_path.read_text())
    if labels is None:
        labels = json.loads((run_dir / "run.json").read_text())["labels"]
    final = metrics.sort_values("round").iloc[-1]
    if not math.isfinite(float(final["fid"])):
        raise ValueError(f"{metrics_path}: the last round has no FID")
    return {
        **{k: labels[k] for k in KEYS},
        "seed": labels["seed"],
        "n_rounds": int(final["round"]),
        "fid": float(final["fid"]),
        "fid_kind": fid["kind"],
        "num_samples": int(fid["num_samples"]),
        **{k: int(metrics[k].sum()) for k in TOTALS},
    }


def fid_table(runs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (dataset, partition, mode), in first-appearance order."""
    if not runs:
        raise ValueError("no diffusion runs to tabulate")
    df = pd.DataFrame(runs)
    rows = []
    for key, g in df.groupby(KEYS, sort=False):
        if g["seed"].duplicated().any():
            raise ValueError(f"{key}: a seed appears twice")
        kinds = sorted(set(g["fid_kind"]))
        row = dict(zip(KEYS, key))
        row.update(
            n_seeds=len(g),
            n_rounds=int(g["n_rounds"].max()),
            fid_kind=" / ".join(kinds),
            num_samples=int(g["num_samples"].max()),
            fid_mean=float(g["fid"].mean()),
            fid_std=float(g["fid"].std(ddof=1)) if len(g) > 1 else math.nan,
        )
        row.update({k: float(g[k].mean()) for k in TOTALS})
        rows.append(row)
    table = pd.DataFrame(rows)
    table["params_total"] = table["params_up"] + table["params_down"]
    table["bytes_total"] = table["bytes_up"] + table["bytes_down"]
    full = table[table["mode"] == "full"].set_index(["dataset", "partition"])
    for col, src in (
        ("up_reduction_vs_full_pct", "params_up"),
        ("total_reduction_vs_full_pct", "params_total"),
    ):
        ref = [
            full[src].get((d, p), math.nan) for d, p in zip(table["dataset"], table["partition"])
        ]
        table[col] = [
            100.0 * (1 - v / r) if r and not math.isnan(r) else math.nan
            for v, r in zip(table[src], ref)
        ]
    return table.reindex(columns=TABLE_COLUMNS)


def communication_plan(
    state: Mapping[str, Any],
    modes: Sequence[str],
    num_clients: int,
    clients_per_round: int,
    rounds: int,
    seed: int,
) -> pd.DataFrame:
    """Per mode, the values and bytes the round loop would send, summed over all rounds.

    ``state`` is a UNet's state dict. Clients are sampled and parts assigned exactly as in
    :func:`feddiff.diffusion.federated.run_federated_diffusion` (same seed, same
    ``sample_clients`` and ``Mode.uploads``; a client's first round downloads the whole
    model), so the totals equal a run's ``params_up``/``params_down`` sums. Columns: mode,
    the parts' sizes (``part_down``/``part_mid``/``part_up``, floating values), per-round
    means and totals over all rounds, and the reductions against FULL.
    """
    parts = split_names(state)
    size = {p: payload_size(state, parts[p])[0] for p in PARTS}
    rows = []
    for name in modes:
        mode = build_mode(name)
        seen: set[int] = set()
        totals = dict.fromkeys(TOTALS, 0)
        for rnd in range(1, rounds + 1):
            selected = sample_clients(seed, rnd, num_clients, clients_per_round)
            plan = mode.uploads(selected, seed, rnd)
            for client in selected:
                down = payload_size(
                    state, names_of(parts, mode.downloads(first_time=client not in seen))
                )
                up = payload_size(state, names_of(parts, plan[client]))
                seen.add(client)
                totals["params_down"] += down[0]
                totals["bytes_down"] += down[1]
                totals["params_up"] += up[0]
                totals["bytes_up"] += up[1]
        rows.append(
            {
                "mode": name,
                **{f"part_{p}": size[p] for p in PARTS},
                "params_model": sum(size.values()),
                "rounds": rounds,
                "clients_per_round": clients_per_round,
                "params_up_per_round": totals["params_up"] / rounds,
                "params_down_per_round": totals["params_down"] / rounds,
                **totals,
                "params_total": totals["params_up"] + totals["params_down"],
            }
        )
    table = pd.DataFrame(rows)
    full = table.loc[table["mode"] == "full"]
    for col, src in (
        ("up_reduction_vs_full_pct", "params_up"),
        ("total_reduction_vs_full_pct", "params_total"),
    ):
        ref = float(full[src].iloc[0]) if len(full) else math.nan
        table[col] = [100.0 * (1 - v / ref) if ref else math.nan for v in table[src]]
    return table


def _human(n: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def _pct(x: float) -> str:
    return DASH if math.isnan(x) else f"{x + 0.0:.1f}%"  # + 0.0: no "-0.0%"


HEADER = [
    "partition",
    "mode",
    "FID [kind]",
    "params up",
    "params down",
    "params total",
    "MB sent",
    "upload saved vs FULL",
    "total saved vs FULL",
]


def _header(block: pd.DataFrame) -> list[str]:
    """The FID column is named for what it holds: "FID" only when it is Inception FID."""
    kind = "FID" if set(block["fid_kind"]) == {KIND_INCEPTION} else "FD (classifier features)"
    return [kind if h == "FID [kind]" else h for h in HEADER]


def _body(block: pd.DataFrame) -> list[list[str]]:
    return [
        [
            str(r.partition),
            str(r.mode),
            format_cell(r.fid_mean, r.fid_std, int(r.n_seeds)),
            _human(r.params_up),
            _human(r.params_down),
            _human(r.params_total),
            f"{r.bytes_total / 1e6:.1f}",
            _pct(r.up_reduction_vs_full_pct),
            _pct(r.total_reduction_vs_full_pct),
        ]
        for r in block.itertuples(index=False)
    ]


def legend(block: pd.DataFrame) -> str:
    kinds = " / ".join(sorted(set(block["fid_kind"])))
    spread = seed_spread(block["n_seeds"])
    return (
        f"FID = {kinds}, {int(block['num_samples'].max())} generated samples vs the test split "
        f"after the last round (UDEC/ULATDEC: mean over the per-client models); {spread}. "
        "Params = floating-point values sent over all rounds and clients (up: client to server, "
        "down: server to client); saved vs FULL = 1 − params / FULL's params in the same setting."
    )


def fid_document(table: pd.DataFrame) -> Document:
    """One block per dataset: (partition, mode) rows, FID and communication columns."""
    blocks = []
    for dataset, block in table.groupby("dataset", sort=False):
        text = legend(block)
        blocks.append(
            Block(
                _header(block),
                _body(block),
                heading=str(dataset),
                legend=text,
                caption=f"FedDiffuse on {dataset}. {text}",
                label=tex_label("tab:feddiffuse", str(dataset)),
                lead=2,
            )
        )
    return Document("FedDiffuse: FID and communication", blocks, source="feddiff.diffusion.report")


def render_markdown(table: pd.DataFrame) -> str:
    return render.render_markdown(fid_document(table))


def render_latex(table: pd.DataFrame) -> str:
    return render.render_latex(fid_document(table))


def build_figure(table: pd.DataFrame) -> Figure:
    """FID against total parameters sent: one panel per (dataset, partition), a point per mode."""
    panels = list(dict.fromkeys(zip(table["dataset"], table["partition"])))
    fig = Figure(figsize=(max(5.5, 4.2 * len(panels)), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    modes = list(dict.fromkeys(table["mode"]))
    markers = "osD^v<>p"
    for ax, (dataset, partition) in zip(axes, panels):
        block = table[(table["dataset"] == dataset) & (table["partition"] == partition)]
        for r in block.itertuples(index=False):
            i = modes.index(r.mode)
            yerr = None if math.isnan(r.fid_std) else r.fid_std
            ax.errorbar(
                r.params_total,
                r.fid_mean,
                yerr=yerr,
                fmt=markers[i % len(markers)],
                color=f"C{i}",
                label=r.mode,
                capsize=3,
            )
            ax.annotate(
                r.mode,
                (r.params_total, r.fid_mean),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
        ax.set_xscale("log")
        ax.margins(x=0.15, y=0.12)  # room for the mode annotations
        ax.set_xlabel("parameters sent (up + down, all rounds)")
        ax.set_title(f"{dataset} · {partition}", fontsize=10)
        ax.grid(True, alpha=0.3)
    kinds = " / ".join(sorted(set(table["fid_kind"])))
    axes[0].set_ylabel("FID" if kinds == KIND_INCEPTION else "FD (see title)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=max(1, len(labels)), frameon=False)
    fig.suptitle(f"FID vs. parameters sent (mean ± std over seeds)\n{kinds}", fontsize=9)
    return fig


def make_diffusion_report(
    manifest: Sequence[Mapping[str, Any]], tables_dir: Path, figures_dir: Path
) -> pd.DataFrame:
    """Write ``diffusion_fid.{csv,md,tex,html}`` and ``diffusion_fid_vs_params.{png,pdf}``."""
    runs = [load_diffusion_run(Path(m["run_dir"]), m.get("labels")) for m in manifest]
    table = fid_table(runs)
    write_document(Path(tables_dir) / "diffusion_fid", table, fid_document(table))
    fig = build_figure(table)
    png = Path(figures_dir) / "diffusion_fid_vs_params.png"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    with atomic_path(png.with_suffix(".pdf")) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None})
    calibrated = []
    for item, run in zip(manifest, runs):
        metrics = pd.read_csv(Path(item["run_dir"]) / "metrics.csv")
        if has_calibration(metrics):
            calibrated.append(
                CalibratedRun(
                    run["dataset"], run["partition"], f"{run['mode']} (seed {run['seed']})", metrics
                )
            )
    if calibrated:  # FedDDPM / FedDDPM+ on the global DDPM
        plot_calibration(
            calibrated, Path(figures_dir) / "diffusion_calibration.png", "auxiliary denoising loss"
        )
    return table
