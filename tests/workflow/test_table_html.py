"""workflow/scripts/table_html.py: the Markdown accuracy table as an HTML page."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from .tiny import REPO

SCRIPT = REPO / "workflow" / "scripts" / "table_html.py"
spec = importlib.util.spec_from_file_location("table_html", SCRIPT)
assert spec and spec.loader
table_html = importlib.util.module_from_spec(spec)
spec.loader.exec_module(table_html)

MARKDOWN = """# Test accuracy (%)

## main — digits

| method | iid final | dir best round |
|:---|---:|:---:|
| fedavg | 60.00 ± 1.20 | 31.11 |
| a<b | x \\| y | – |

*final = accuracy after the last round; **best** round for `reference` only.*
"""


def test_headings_tables_alignment_and_emphasis() -> None:
    page = table_html.markdown_to_html(MARKDOWN, title="accuracy")
    assert page.startswith("<!DOCTYPE html>") and "<title>accuracy</title>" in page
    assert "<h1>Test accuracy (%)</h1>" in page and "<h2>main — digits</h2>" in page
    assert '<th style="text-align:left">method</th>' in page
    assert '<th style="text-align:right">iid final</th>' in page
    assert '<td style="text-align:center">31.11</td>' in page
    assert '<td style="text-align:right">60.00 ± 1.20</td>' in page
    assert '<td style="text-align:left">a&lt;b</td>' in page  # escaped
    assert '<td style="text-align:right">x | y</td>' in page  # escaped pipe kept in the cell
    assert page.count("<tr>") == 3  # header + two rows; the alignment row is not a row
    assert "<em>final = accuracy after the last round; <strong>best</strong> round for " in page
    assert "<code>reference</code>" in page


def test_command_line(tmp_path: Path) -> None:
    src, dst = tmp_path / "accuracy.md", tmp_path / "accuracy.html"
    src.write_text(MARKDOWN, encoding="utf-8")
    subprocess.run([sys.executable, str(SCRIPT), str(src), str(dst)], check=True)
    assert "<table>" in dst.read_text(encoding="utf-8")
    assert not list(tmp_path.glob(".*.tmp"))
