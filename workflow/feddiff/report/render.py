"""The one table renderer: a table as ``.csv``, ``.md``, ``.tex`` and ``.html``.

Every table the package writes (accuracy, per-domain accuracy, paper comparison, FID and
communication, K-means, rule benchmarks) goes through :func:`write_document` or its
one-frame shortcut :func:`write_table`, so the four formats of a table always hold the
same cells and no stage needs a separate rule to make its report page:

* ``.csv``: the tidy frame, unformatted numbers (``float_format``), for analysis;
* ``.md``: ``# title``, an optional intro line, then per block ``## heading``, a pipe
  table and the italic legend;
* ``.tex``: one booktabs ``table`` per block (caption and label), for a paper;
* ``.html``: a self-contained page (inline CSS, no script) that Snakemake's ``--report``
  shows in place; the tables are pandas' ``DataFrame.to_html`` of the same cells.

The cells are strings formatted by the caller (``"85.00 ± 1.00"``, ``"–"``), so the
three rendered formats cannot disagree on rounding. pandas only: no matplotlib, no torch.
Everything is rendered before the first write, and each file is written atomically
(:mod:`feddiff.utils.atomic`), so a rendering error leaves no partial set of outputs.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from feddiff.utils.atomic import atomic_path, write_text_atomic

#: A missing cell in every rendered table (an en dash).
DASH = "–"
#: The rendered formats, in the order they are written after the CSV.
FORMATS = ("md", "tex", "html")

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
    # pdflatex has no glyph for these two; the tables use them in headers and legends
    "Δ": r"$\Delta$",
    "−": "$-$",
}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5em;
  color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.6em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th { background: #f2f2f2; }
tbody tr:nth-child(even) { background: #fafafa; }
table.lead1 tr > :nth-child(-n+1), table.lead2 tr > :nth-child(-n+2) { text-align: left; }
p { max-width: 60em; color: #444; }
"""


def format_cell(mean: float, std: float, n_seeds: int) -> str:
    """``"85.00 ± 1.00"``; no "±" part for one seed (or a NaN std); a dash for a missing
    cell. The one spelling of a mean over seeds in every table."""
    if math.isnan(mean):
        return DASH
    if n_seeds <= 1 or math.isnan(std):
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {std:.2f}"


def seed_spread(n_seeds: Sequence[int]) -> str:
    """A legend's account of the ± cells, from the seed counts of a table's rows.

    Every table's spread is the sample standard deviation (``ddof=1``); a cell of one
    seed shows its mean alone (:func:`format_cell`).
    """
    seeds = sorted({int(n) for n in n_seeds})
    if seeds == [1]:
        return "single seed (no std)"
    if len(seeds) == 1:
        return f"mean ± sample std over {seeds[0]} seeds"
    single = " (no ± where a cell has a single seed)" if seeds[0] == 1 else ""
    return f"mean ± sample std over {seeds[0]}–{seeds[-1]} seeds per cell{single}"


def tex_escape(text: str) -> str:
    """Escape LaTeX specials character by character (so nothing is escaped twice)."""
    return "".join(_TEX.get(ch, ch) for ch in text)


def md_escape(text: str) -> str:
    """A pipe inside a Markdown table cell or heading."""
    return text.replace("|", r"\|")


def tex_label(prefix: str, *parts: str) -> str:
    """``prefix-part1-part2`` with every non-alphanumeric character turned into ``-``."""
    return "-".join([prefix, *("".join(c if c.isalnum() else "-" for c in p) for p in parts)])


@dataclass(frozen=True)
class Em:
    """An emphasised span of an intro line (``*text*`` in Markdown, ``<em>`` in HTML)."""

    text: str


@dataclass(frozen=True)
class Block:
    """One displayed table: a heading, string cells, a legend, and its LaTeX float.

    ``lead`` label columns (method, partition, ...) are left-aligned, the rest (numbers)
    right-aligned (the HTML page styles up to two). ``tex_colspec`` and ``tex_head``
    (ready LaTeX lines, e.g. with ``\\multicolumn``) override the default column spec
    and the escaped header row.
    """

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    heading: str = ""
    legend: str = ""
    caption: str = ""
    label: str = ""
    lead: int = 1
    tex_colspec: str = ""
    tex_head: Sequence[str] = ()

    def __post_init__(self) -> None:
        width = len(self.header)
        bad = [i for i, row in enumerate(self.rows) if len(row) != width]
        if bad:
            raise ValueError(f"table {self.heading!r}: rows {bad} do not have {width} cells")
        if not 0 <= self.lead <= width:
            raise ValueError(f"table {self.heading!r}: lead={self.lead} of {width} columns")


@dataclass(frozen=True)
class Document:
    """A titled sequence of blocks: what one ``stem.{md,tex,html}`` holds."""

    title: str
    blocks: Sequence[Block]
    intro: Sequence[str | Em] = ()
    source: str = "feddiff.report"

    def __post_init__(self) -> None:
        if not self.blocks:
            raise ValueError(f"table {self.title!r} has no blocks")


def render_markdown(doc: Document) -> str:
    """``# title``, the intro, then per block ``## heading``, pipe table and legend."""
    out = [f"# {doc.title}", ""]
    if doc.intro:
        out += ["".join(f"*{md_escape(s.text)}*" if isinstance(s, Em) else s for s in doc.intro)]
        out += [""]
    for b in doc.blocks:
        if b.heading:
            out += [f"## {md_escape(b.heading)}", ""]
        out.append("| " + " | ".join(md_escape(h) for h in b.header) + " |")
        align = [":---"] * b.lead + ["---:"] * (len(b.header) - b.lead)
        out.append("|" + "|".join(align) + "|")
        out += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in b.rows]
        out += [""]
        if b.legend:
            out += [f"*{b.legend}*", ""]
    return "\n".join(out)


def render_latex(doc: Document) -> str:
    """One booktabs ``table`` float per block; needs ``\\usepackage{booktabs}``."""
    out = [f"% Generated by {doc.source} -- do not edit. Requires \\usepackage{{booktabs}}."]
    for b in doc.blocks:
        n = len(b.header)
        out += [r"\begin{table}[t]", r"\centering"]
        if b.caption:
            out.append(rf"\caption{{{tex_escape(b.caption)}}}")
        if b.label:
            out.append(rf"\label{{{b.label}}}")
        colspec = b.tex_colspec or "l" * b.lead + "r" * (n - b.lead)
        out += [rf"\begin{{tabular}}{{{colspec}}}", r"\toprule"]
        out += list(b.tex_head) or [" & ".join(tex_escape(h) for h in b.header) + r" \\"]
        out.append(r"\midrule")
        out += [" & ".join(tex_escape(c) for c in row) + r" \\" for row in b.rows]
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)


def _frame_html(b: Block) -> str:
    frame = pd.DataFrame([list(r) for r in b.rows], columns=list(b.header), dtype=object)
    return frame.to_html(index=False, border=0, escape=True, classes=f"lead{min(b.lead, 2)}")


def render_html(doc: Document) -> str:
    """A standalone page: ``<h1>`` title, intro, per block ``<h2>``, table and legend."""
    parts = [f"<h1>{html.escape(doc.title)}</h1>"]
    if doc.intro:
        intro = "".join(
            f"<em>{html.escape(s.text)}</em>" if isinstance(s, Em) else html.escape(s)
            for s in doc.intro
        )
        parts.append(f"<p>{intro}</p>")
    for b in doc.blocks:
        if b.heading:
            parts.append(f"<h2>{html.escape(b.heading)}</h2>")
        parts.append(_frame_html(b))
        if b.legend:
            parts.append(f'<p class="legend"><em>{html.escape(b.legend)}</em></p>')
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(doc.title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def table_paths(stem: str | Path) -> dict[str, Path]:
    """``{"csv": stem.csv, "md": ..., "tex": ..., "html": ...}``."""
    stem = Path(stem)
    return {ext: stem.with_name(f"{stem.name}.{ext}") for ext in ("csv", *FORMATS)}


def write_document(
    stem: str | Path,
    data: pd.DataFrame,
    doc: Document,
    *,
    float_format: str | None = "%.4f",
    index: bool = False,
) -> dict[str, Path]:
    """Write ``data`` as ``stem.csv`` and ``doc`` as ``stem.{md,tex,html}``; returns the paths.

    The CSV is ``data.to_csv(index=index, float_format=float_format)``; all four texts are
    rendered before the first write.
    """
    paths = table_paths(stem)
    texts = {"md": render_markdown(doc), "tex": render_latex(doc), "html": render_html(doc)}
    with atomic_path(paths["csv"]) as tmp:
        data.to_csv(tmp, index=index, float_format=float_format)
    for ext in FORMATS:
        write_text_atomic(paths[ext], texts[ext])
    return paths


Formatter = Callable[[Any], str]


def _cell(value: Any, fmt: Formatter | None, float_format: str | None) -> str:
    if fmt is not None:
        return fmt(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if float_format is not None and isinstance(value, float):
        return float_format % value
    return str(value)


def frame_block(
    df: pd.DataFrame,
    *,
    heading: str = "",
    caption: str = "",
    label: str = "",
    index: bool = False,
    float_format: str | None = "%.4f",
    formatters: Mapping[str, Formatter] | None = None,
    headers: Mapping[str, str] | None = None,
    lead: int = 1,
) -> Block:
    """A :class:`Block` of a frame's cells: ``formatters[column]`` where given, else
    ``float_format`` for floats, ``str`` for the rest; NaN/None as :data:`DASH`.
    ``headers`` renames columns for display (the CSV keeps the frame's names)."""
    formatters, headers = dict(formatters or {}), dict(headers or {})
    frame = df.reset_index() if index else df
    columns = [str(c) for c in frame.columns]
    unknown = sorted((set(formatters) | set(headers)) - set(columns))
    if unknown:
        raise KeyError(f"formatters or headers for columns the table lacks: {unknown}")
    rows = [
        [_cell(v, formatters.get(c), float_format) for c, v in zip(columns, row)]
        for row in frame.itertuples(index=False, name=None)
    ]
    header = [headers.get(c, c) for c in columns]
    return Block(
        header, rows, heading=heading, legend=caption, caption=caption, label=label, lead=lead
    )


def write_table(
    df: pd.DataFrame,
    stem: str | Path,
    *,
    title: str,
    caption: str = "",
    label: str = "",
    index: bool = False,
    float_format: str | None = "%.4f",
    formatters: Mapping[str, Formatter] | None = None,
    headers: Mapping[str, str] | None = None,
    csv_float_format: str | None = None,
    lead: int = 1,
    source: str = "feddiff.report",
) -> dict[str, Path]:
    """One frame as ``stem.{csv,md,tex,html}``: the shortcut for a single-block table.

    ``float_format`` (``"%.3f"``) and ``formatters`` (column -> callable) format the
    rendered cells, ``headers`` renames columns for display; the CSV keeps the frame's
    names and full precision unless ``csv_float_format`` is given. ``caption`` is the
    legend under the table and the LaTeX caption.
    """
    block = frame_block(
        df,
        caption=caption,
        label=label,
        index=index,
        float_format=float_format,
        formatters=formatters,
        headers=headers,
        lead=lead,
    )
    doc = Document(title, [block], source=source)
    return write_document(stem, df, doc, float_format=csv_float_format, index=index)


__all__ = [
    "DASH",
    "Block",
    "Document",
    "Em",
    "format_cell",
    "frame_block",
    "md_escape",
    "render_html",
    "render_latex",
    "render_markdown",
    "table_paths",
    "tex_escape",
    "tex_label",
    "write_document",
    "write_table",
]
