"""Reporting: collect finished FL runs, tabulate accuracy, plot accuracy vs. round.

The last pipeline stage; it only reads run directories (``metrics.csv`` +
``run.json``) and writes tables and figures, so it can be rerun cheaply.

The names below are loaded on first use (PEP 562), not when the package is imported:
the DAG build imports :mod:`feddiff.report.paper` (the config's paper links), and
importing a submodule runs this file, which must not pull in matplotlib for it.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "RunFormatError": "collect",
    "RunResult": "collect",
    "load_run": "collect",
    "load_runs": "collect",
    "summarize_run": "collect",
    "build_accuracy_figure": "figures",
    "plot_accuracy_curves": "figures",
    "accuracy_table": "tables",
    "write_accuracy_tables": "tables",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value
