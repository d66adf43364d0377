"""Per-domain accuracy table: each domain's test accuracy and the mean over domains.

Only runs on a multi-domain dataset have per-domain columns in ``metrics.csv``
(:mod:`feddiff.fl.domain_columns`); the others are left out. Cells are the accuracy
after the last round in percent, mean ± sample std over seeds (``ddof=1``, as in the
main table, :mod:`feddiff.report.tables`); the tidy CSV also has the last-k mean.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from feddiff.fl.domain_columns import DOMAIN_MEAN, domain_columns, domain_name
from feddiff.report.collect import RunResult, group_runs, resolve_order
from feddiff.report.render import (
    DASH,
    Block,
    Document,
    format_cell,
    render_latex,
    render_markdown,
    seed_spread,
    tex_label,
    write_document,
)

#: The label of the mean-over-domains column.
MEAN_LABEL = "mean over domains"
DOMAIN_TABLE_COLUMNS = [
    "experiment",
    "dataset",
    "method",
    "partition",
    "domain",
    "n_seeds",
    "n_rounds",
    "final_mean",
    "final_std",
    "lastk_mean",
    "lastk_std",
]


def has_domains(run: RunResult) -> bool:
    """True for a run on a multi-domain dataset (its metrics have per-domain columns)."""
    return bool(domain_columns(run.metrics.columns))


def _stats(values: list[float]) -> tuple[float, float]:
    s = pd.Series(values, dtype=float) * 100.0
    return float(s.mean()), float(s.std(ddof=1)) if len(s) > 1 else math.nan


def domain_table(runs: list[RunResult], last_k: int = 5) -> pd.DataFrame:
    """Tidy rows (experiment, dataset, method, partition, domain) in percent.

    ``domain`` is a domain name or :data:`MEAN_LABEL`; runs without domains are skipped,
    and a cell whose seeds disagree on the domains raises, naming the runs.
    """
    if last_k < 1:
        raise ValueError(f"last_k must be >= 1, got {last_k}")
    runs = [r for r in runs if has_domains(r)]
    if not runs:
        raise ValueError("no run has per-domain accuracies (no multi-domain dataset)")
    rows = []
    for (experiment, dataset, method, partition), members in group_runs(runs).items():
        cols = domain_columns(members[0].metrics.columns)
        for r in members[1:]:
            if domain_columns(r.metrics.columns) != cols:
                raise ValueError(
                    f"{r.run_dir} and {members[0].run_dir}: different domains in one cell"
                )
        for col in [*cols, DOMAIN_MEAN]:
            curves = [r.metrics.sort_values("round")[col].astype(float).to_numpy() for r in members]
            final = _stats([c[-1] for c in curves])
            lastk = _stats([c[-last_k:].mean() for c in curves])
            rows.append(
                {
                    "experiment": experiment,
                    "dataset": dataset,
                    "method": method,
                    "partition": partition,
                    "domain": MEAN_LABEL if col == DOMAIN_MEAN else domain_name(col),
                    "n_seeds": len(members),
                    "n_rounds": len(members[0].metrics),
                    "final_mean": final[0],
                    "final_std": final[1],
                    "lastk_mean": lastk[0],
                    "lastk_std": lastk[1],
                }
            )
    table = pd.DataFrame(rows, columns=DOMAIN_TABLE_COLUMNS)
    order = {k: resolve_order(table[k]) for k in ("experiment", "dataset", "method", "partition")}
    keys = [table[k].map({v: i for i, v in enumerate(order[k])}) for k in order]
    table = table.assign(_e=keys[0], _d=keys[1], _m=keys[2], _p=keys[3])
    return (
        table.sort_values(["_e", "_d", "_m", "_p"], kind="stable")
        .drop(columns=["_e", "_d", "_m", "_p"])
        .reset_index(drop=True)
    )


def _grid(block: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    domains = [d for d in dict.fromkeys(block["domain"]) if d != MEAN_LABEL] + [MEAN_LABEL]
    header = ["method", "partition", *domains]
    body = []
    for (method, partition), cell in block.groupby(["method", "partition"], sort=False):
        by = {r.domain: r for r in cell.itertuples(index=False)}
        body.append(
            [str(method), str(partition)]
            + [
                format_cell(by[d].final_mean, by[d].final_std, int(by[d].n_seeds))
                if d in by
                else DASH
                for d in domains
            ]
        )
    return header, body


def _blocks(table: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    if table.empty:
        raise ValueError("per-domain table is empty")
    keys = dict.fromkeys(zip(table["experiment"], table["dataset"]))
    return [(e, d, table[(table["experiment"] == e) & (table["dataset"] == d)]) for e, d in keys]


def _legend(block: pd.DataFrame) -> str:
    rounds = sorted({int(n) for n in block["n_rounds"]})
    spread = seed_spread(block["n_seeds"])
    return (
        f"Test accuracy (%) on each domain's test split after the last round "
        f"(round {'–'.join(map(str, rounds))}); {MEAN_LABEL} = unweighted mean of the domains; "
        f"per-client methods (FedBN): each domain's clients' own models; {spread}."
    )


def domain_document(table: pd.DataFrame) -> Document:
    """One block per (experiment, dataset): (method, partition) rows, domains as columns."""
    blocks = []
    for experiment, dataset, block in _blocks(table):
        header, body = _grid(block)
        legend = _legend(block)
        blocks.append(
            Block(
                header,
                body,
                heading=f"{experiment} — {dataset}",
                legend=legend,
                caption=f"{experiment}, {dataset}. {legend}",
                label=tex_label("tab:domains", experiment, dataset),
                lead=2,
            )
        )
    return Document("Test accuracy per domain (%)", blocks)


def render_domain_markdown(table: pd.DataFrame) -> str:
    return render_markdown(domain_document(table))


def render_domain_latex(table: pd.DataFrame) -> str:
    """booktabs tables, one per (experiment, dataset); needs ``\\usepackage{booktabs}``."""
    return render_latex(domain_document(table))


def write_domain_tables(table: pd.DataFrame, stem: Path) -> dict[str, Path]:
    """``stem.csv`` (tidy, 4 decimals) and ``stem.{md,tex,html}``; all rendered before any write."""
    return write_document(stem, table, domain_document(table), float_format="%.4f")
