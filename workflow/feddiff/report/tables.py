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

from feddiff.report.collect import RunResult, group_runs, resolve_order, summarize_run
from feddiff.utils.atomic import atomic_path, write_text_atomic

KEY_COLUMNS = ["experiment", "dataset", "method", "partition"]
STAT_COLUMNS = ["final", "lastk", "best"]
TABLE_COLUMNS = [
    *KEY_COLUMNS,
    "n_seeds",
    "n_rounds",
    *[f"{s}_{m}" for s in STAT_COLUMNS for m in ("mean", "std")],
]
DASH = "–"
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


def format_cell(mean: float, std: float, n_seeds: int) -> str:
    """``"85.00 ± 1.00"``; no "±" part for one seed; a dash for a missing cell."""
    if math.isnan(mean):
        return DASH
    if n_seeds <= 1 or math.isnan(std):
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {std:.2f}"


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
    seeds = sorted({int(n) for n in block["n_seeds"]})
    final = "final = accuracy after the last round"
    if len(rounds) == 1:
        final += f" (round {rounds[0]})"
    lastk = f"last-{last_k} mean = mean over the last {last_k} rounds"
    if rounds[0] < last_k:
        lastk += " (all rounds where a run has fewer)"
    if seeds == [1]:
        spread = "single seed (no std)"
    elif len(seeds) == 1:
        spread = f"mean ± std over {seeds[0]} seeds"
    else:
        spread = (
            f"mean ± std over {seeds[0]}–{seeds[-1]} seeds per cell "
            "(no ± where a cell has a single seed)"
        )
    best = "best round = highest accuracy over all rounds (for reference only)"
    return f"Test accuracy (%). {final}; {lastk}; {best}; {spread}."


def _md_escape(text: str) -> str:
    return text.replace("|", r"\|")


def render_markdown(table: pd.DataFrame, last_k: int = 5) -> str:
    """One heading, pipe table and legend line per (experiment, dataset)."""
    out = ["# Test accuracy (%)", ""]
    for experiment, dataset, block in _blocks(table):
        header, body, _ = _grid(block, last_k)
        out += [f"## {_md_escape(experiment)} — {_md_escape(dataset)}", ""]
        out.append("| " + " | ".join(_md_escape(h) for h in header) + " |")
        out.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
        out += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in body]
        out += ["", f"*{legend(block, last_k)}*", ""]
    return "\n".join(out)


_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "–": "--",
}


def tex_escape(text: str) -> str:
    """Escape LaTeX specials character by character (so nothing is escaped twice)."""
    return "".join(_TEX.get(ch, ch) for ch in text)


def _tex_label(*parts: str) -> str:
    return "tab:acc-" + "-".join("".join(c if c.isalnum() else "-" for c in p) for p in parts)


def render_latex(table: pd.DataFrame, last_k: int = 5) -> str:
    """booktabs tables (one per experiment/dataset); needs ``\\usepackage{booktabs}``."""
    out = ["% Generated by feddiff.report -- do not edit. Requires \\usepackage{booktabs}."]
    for experiment, dataset, block in _blocks(table):
        header, body, partitions = _grid(block, last_k)
        n = len(partitions)
        caption = f"{experiment}, {dataset}. {legend(block, last_k)}"
        out += [
            r"\begin{table}[t]",
            r"\centering",
            rf"\caption{{{tex_escape(caption)}}}",
            rf"\label{{{_tex_label(experiment, dataset)}}}",
            r"\begin{tabular}{l" + " ccc" * n + "}",
            r"\toprule",
            " & ".join([""] + [rf"\multicolumn{{3}}{{c}}{{{tex_escape(p)}}}" for p in partitions])
            + r" \\",
            " ".join(rf"\cmidrule(lr){{{2 + 3 * i}-{4 + 3 * i}}}" for i in range(n)),
            " & ".join(["method"] + ["final", f"last-{last_k} mean", "best round"] * n) + r" \\",
            r"\midrule",
        ]
        out += [" & ".join(tex_escape(c) for c in row) + r" \\" for row in body]
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)


def write_accuracy_tables(
    table: pd.DataFrame,
    out_csv: Path,
    out_md: Path,
    out_tex: Path | None = None,
    last_k: int = 5,
) -> None:
    """Write the tidy CSV (4 decimals), the Markdown and optionally the LaTeX tables.

    ``last_k`` must be the value the table was built with; it only labels columns.
    Every file is written atomically, and all text is rendered before any write so a
    rendering error leaves no partial set of outputs.
    """
    markdown = render_markdown(table, last_k)
    latex = render_latex(table, last_k) if out_tex is not None else None
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    write_text_atomic(out_md, markdown)
    if out_tex is not None and latex is not None:
        write_text_atomic(out_tex, latex)
