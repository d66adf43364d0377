"""Markdown tables → one self-contained HTML page (rule ``table_html``).

The report stage writes ``results/tables/accuracy.md``; Snakemake's HTML report shows
HTML, images and PDF inline but offers other files only as downloads, so this renders
the Markdown as a page. Only the subset the table writer emits is handled: ATX headings
(``#``..``######``), pipe tables with an alignment row (``:---``, ``---:``, ``:---:``)
and paragraphs with ``*emphasis*``, ``**strong**`` and ```code```. Standard library
only, so it runs under any Python.

Run by Snakemake (``script:``) or by hand: ``python table_html.py in.md out.html``.
(No ``from __future__`` import: Snakemake prepends its own preamble to scripts.)
"""

import html
import re
import sys
from pathlib import Path

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.6em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; }
th { background: #f2f2f2; }
tbody tr:nth-child(even) { background: #fafafa; }
p { max-width: 60em; color: #444; }
"""

_ALIGN_CELL = re.compile(r"^:?-{3,}:?$")


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", out)
    return out


def _cells(line: str) -> list[str]:
    line = line.strip()
    line = line.removeprefix("|")
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)]


def _alignment(cell: str) -> str | None:
    if cell.startswith(":") and cell.endswith(":"):
        return "center"
    if cell.endswith(":"):
        return "right"
    if cell.startswith(":"):
        return "left"
    return None


def _table(lines: list[str]) -> str:
    rows = [_cells(line) for line in lines]
    header, body = rows[0], rows[1:]
    aligns: list[str | None] = [None] * len(header)
    if body and all(_ALIGN_CELL.match(c) for c in body[0]):
        aligns = [_alignment(c) for c in body[0]] + [None] * len(header)
        body = body[1:]

    def cell(tag: str, text: str, i: int) -> str:
        style = f' style="text-align:{aligns[i]}"' if i < len(aligns) and aligns[i] else ""
        return f"<{tag}{style}>{_inline(text)}</{tag}>"

    head = "".join(cell("th", c, i) for i, c in enumerate(header))
    rows_html = "\n".join(
        "<tr>" + "".join(cell("td", c, i) for i, c in enumerate(row)) + "</tr>" for row in body
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows_html}\n</tbody>\n</table>"


def markdown_to_html(text: str, title: str = "table") -> str:
    """A standalone HTML page for the Markdown subset described in the module doc."""
    blocks: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", stripped)
        if not stripped:
            i += 1
        elif heading:
            level = len(heading.group(1))
            blocks.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
            i += 1
        elif stripped.startswith("|"):
            start = i
            while i < len(lines) and lines[i].strip().startswith("|"):
                i += 1
            blocks.append(_table(lines[start:i]))
        else:
            start = i
            while (
                i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(("#", "|"))
            ):
                i += 1
            blocks.append("<p>" + _inline(" ".join(s.strip() for s in lines[start:i])) + "</p>")
    body = "\n".join(blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def convert(src: Path, dst: Path) -> None:
    page = markdown_to_html(src.read_text(encoding="utf-8"), title=src.stem)
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(dst)


if __name__ == "__main__" and "snakemake" not in globals():
    if len(sys.argv) != 3:
        sys.exit("usage: table_html.py IN.md OUT.html")
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
elif "snakemake" in globals():
    smk = globals()["snakemake"]
    with open(smk.log[0], "w", encoding="utf-8") as log:
        convert(Path(smk.input[0]), Path(smk.output[0]))
        print(f"wrote {smk.output[0]} from {smk.input[0]}", file=log)
