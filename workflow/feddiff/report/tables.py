"""Accuracy table: seeds aggregated per (experiment, dataset, method, partition).

Numbers are test accuracy in percent. The spread over seeds is the *sample* standard
deviation (``ddof=1``): seeds are a sample of possible runs, and the population std
would understate the spread for the typical 3-5 seeds. With a single seed the std is
undefined, so it is NaN in the tidy frame (empty in the CSV) and the rendered cell
shows the mean without a "±" part rather than a misleading "± 0.00".

"final" (accuracy after the last round) is the headline number. "best round" is
selected on the test set, so it is optimistic; it is labelled explicitly and is for
reference only.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from feddiff.report import render
from feddiff.report.collect import RunResult, group_runs, resolve_order, summarize_run
from feddiff.report.render import (
    DASH,
    Block,
    Document,
    format_cell,
    seed_spread,
    tex_escape,
    tex_label,
    write_document,
)

KEY_COLUMNS = ["experiment", "dataset", "method", "partition"]
STAT_COLUMNS = ["final", "lastk", "best"]
TABLE_COLUMNS = [
    *KEY_COLUMNS,
    "n_seeds",
    "n_rounds",
    *[f"{s}_{m}" for s in STAT_COLUMNS for m in ("mean", "std")],
]
_SUMMARY_FIELD = {"final": "final_acc", "lastk": "last_k_mean", "best": "best_acc"}


def accuracy_table(
    runs: list[RunResult],
    last_k: int = 5,
    method_order: list[str] | None = None,
    partition_order: list[str] | None = None,
) -> pd.DataFrame:
    """One tidy row per (experiment, dataset, method, partition), accuracies in percent.

    Rows are sorted by experiment and dataset (first appearance), then method and
    partition (``resolve_order``). ``method`` and ``partition`` are ordered
    categoricals so the writers keep that order; ``n_rounds`` is the rounds per run.
    """
    if not runs:
        raise ValueError("no runs to tabulate")
    groups = group_runs(runs)
    rows = []
    for (experiment, dataset, method, partition), members in groups.items():
        summaries = pd.DataFrame([summarize_run(r.metrics, last_k) for r in members])
        row: dict[str, object] = {
            "experiment": experiment,
            "dataset": dataset,
            "method": method,
            "partition": partition,
            "n_seeds": len(members),
            "n_rounds": len(members[0].metrics),
        }
        for stat, field in _SUMMARY_FIELD.items():
            pct = summaries[field].astype(float) * 100.0
            row[f"{stat}_mean"] = float(pct.mean())
            row[f"{stat}_std"] = float(pct.std(ddof=1)) if len(pct) > 1 else math.nan
        rows.append(row)
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    orders = {
        "experiment": resolve_order(r.experiment for r in runs),
        "dataset": resolve_order(r.dataset for r in runs),
        "method": resolve_order((r.method for r in runs), method_order),
        "partition": resolve_order((r.partition for r in runs), partition_order),
    }
    for col, order in orders.items():
        table[col] = pd.Categorical(table[col], categories=order, ordered=True)
    table = table.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)
    for col in ("experiment", "dataset"):
        table[col] = table[col].astype(str)
    return table


def _ordered(col: pd.Series) -> list[str]:
    """Category order if the frame came from ``accuracy_table``, else first appearance."""
    present = [str(v) for v in dict.fromkeys(col.tolist())]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return [str(c) for c in col.cat.categories if str(c) in present]
    return present


def _blocks(table: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"accuracy table lacks column(s) {missing}")
    if table.empty:
        raise ValueError("accuracy table is empty")
    keys = dict.fromkeys(zip(table["experiment"].astype(str), table["dataset"].astype(str)))
    exp, ds = table["experiment"].astype(str), table["dataset"].astype(str)
    return [(e, d, table[(exp == e) & (ds == d)]) for e, d in keys]


def _grid(block: pd.DataFrame, last_k: int) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, body rows (method first) and partitions of one (experiment, dataset)."""
    methods, partitions = _ordered(block["method"]), _ordered(block["partition"])
    header = ["method"]
    for p in partitions:
        header += [f"{p} final", f"{p} last-{last_k} mean", f"{p} best round"]
    cells = {(str(r.method), str(r.partition)): r for r in block.itertuples(index=False)}
    body = []
    for m in methods:
        line = [m]
        for p in partitions:
            r = cells.get((m, p))
            for stat in STAT_COLUMNS:
                if r is None:
                    line.append(DASH)
                else:
                    mean, std = getattr(r, f"{stat}_mean"), getattr(r, f"{stat}_std")
                    line.append(format_cell(mean, std, int(r.n_seeds)))
        body.append(line)
    return header, body, partitions


def legend(block: pd.DataFrame, last_k: int) -> str:
    """The line under each table, with the real k, round and seed counts."""
    rounds = sorted({int(n) for n in block["n_rounds"]})
    final = "final = accuracy after the last round"
    if len(rounds) == 1:
        final += f" (round {rounds[0]})"
    lastk = f"last-{last_k} mean = mean over the last {last_k} rounds"
    if rounds[0] < last_k:
        lastk += " (all rounds where a run has fewer)"
    spread = seed_spread(block["n_seeds"])
    best = "best round = highest accuracy over all rounds (for reference only)"
    return f"Test accuracy (%). {final}; {lastk}; {best}; {spread}."


def accuracy_document(table: pd.DataFrame, last_k: int = 5) -> Document:
    r"""One block per (experiment, dataset): methods in rows, partitions x stats in columns.

    In LaTeX the partitions head ``\multicolumn`` groups over their three statistics.
    """
    blocks = []
    for experiment, dataset, block in _blocks(table):
        header, body, partitions = _grid(block, last_k)
        n = len(partitions)
        head = [
            " & ".join([""] + [rf"\multicolumn{{3}}{{c}}{{{tex_escape(p)}}}" for p in partitions])
            + r" \\",
            " ".join(rf"\cmidrule(lr){{{2 + 3 * i}-{4 + 3 * i}}}" for i in range(n)),
            " & ".join(["method"] + ["final", f"last-{last_k} mean", "best round"] * n) + r" \\",
        ]
        legend_text = legend(block, last_k)
        blocks.append(
            Block(
                header,
                body,
                heading=f"{experiment} — {dataset}",
                legend=legend_text,
                caption=f"{experiment}, {dataset}. {legend_text}",
                label=tex_label("tab:acc", experiment, dataset),
                tex_colspec="l" + " ccc" * n,
                tex_head=head,
            )
        )
    return Document("Test accuracy (%)", blocks)


def render_markdown(table: pd.DataFrame, last_k: int = 5) -> str:
    """One heading, pipe table and legend line per (experiment, dataset)."""
    return render.render_markdown(accuracy_document(table, last_k))


def render_latex(table: pd.DataFrame, last_k: int = 5) -> str:
    """booktabs tables (one per experiment/dataset); needs ``\\usepackage{booktabs}``."""
    return render.render_latex(accuracy_document(table, last_k))


def write_accuracy_tables(table: pd.DataFrame, stem: Path, last_k: int = 5) -> dict[str, Path]:
    """``stem.csv`` (the tidy frame, 4 decimals) and ``stem.{md,tex,html}``.

    ``last_k`` must be the value the table was built with; it only labels columns.
    Written by :func:`feddiff.report.render.write_document`: atomically, all rendered
    before any write.
    """
    return write_document(stem, table, accuracy_document(table, last_k), float_format="%.4f")
