"""Paper numbers beside ours: the values CSV, the config's paper links, comparison tables.

The numbers papers report live as data, in a CSV (``config/paper/paper_values.csv``)
with one number per row and where it comes from::

    table,dataset,partition,method,metric,value,source
    feddifrc_main,cifar10,dir0.5,fedavg,accuracy,<number>,"<paper>, arXiv:<id>v<n>, Table <k>"

``table`` is the comparison table's id (a config links to it), ``dataset``,
``partition`` and ``method`` are the *config's* names (so the rows join the runs), and
``metric`` is one of :data:`METRICS` of the link's kind: ``accuracy`` (test accuracy in
percent, for ``experiments.<name>.paper``), or ``fid``, ``upload_saved_pct``,
``total_saved_pct`` (for ``diffusion.paper``). A row with an empty ``value`` holds no
number: it declares the table (and its source) before its numbers are entered, and may
leave ``partition``/``method`` empty. A number is never guessed: a cell without a row
shows "–", never 0.

``dataset``, ``partition`` and ``method`` may be ``*`` (any): a paper number that is
not specific to a cell, e.g. FedDiffuse's "up to 74 %" fewer parameters, sits beside
every cell it speaks about; a row naming the cell wins over a ``*`` row.

A config links an experiment (or the diffusion section) to a table with
``paper: {table: <id>, values: <csv>}``; :func:`check_paper_links` checks the link
when the config is validated, and the pipeline writes
``results/tables/paper_<id>.{csv,md,tex,html}`` (the page for the report) from the
accuracy table (``accuracy.csv``) or the FID table (``diffusion_fid.csv``):

- accuracy: per (experiment, dataset, method, partition) ours — final round, mean of
  the last k rounds and best round, each mean ± sample std over seeds as in the
  accuracy table — the paper's number and two differences, each named for what it
  subtracts: **ours best round − paper** (like for like: the reference code of
  FedDifRC prints the best round's accuracy, the maximum over rounds, which is most
  likely what its paper reports) and **ours last-k mean − paper** (our headline, less
  optimistic: the best round is picked on the test set). The CSV also has
  ``ours_final_minus_paper``;
- FID: per (dataset, partition, mode) our final-round FID (mean ± std over seeds) and the
  paper's, difference **ours − paper**, only where ours is Inception FID (offline it is a
  classifier-feature Fréchet distance on another scale: shown, not subtracted); the
  communication metrics compare our parameter savings against FULL with the paper's.
  ``max_total_saved_pct`` is a paper's single "up to" number (its best mode): it is shown
  beside every mode, and subtracted only in the row of our best mode.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from feddiff import paths
from feddiff.config import REPO_ROOT, ConfigError
from feddiff.diffusion.kinds import KIND_INCEPTION
from feddiff.report import render
from feddiff.report.render import (
    DASH,
    Block,
    Document,
    Em,
    format_cell,
    seed_spread,
    tex_label,
    write_document,
)

VALUE_COLUMNS = ("table", "dataset", "partition", "method", "metric", "value", "source")
DEFAULT_VALUES = "config/paper/paper_values.csv"
ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@dataclass(frozen=True)
class Metric:
    """A paper metric and the column of our results table it is compared with."""

    name: str
    label: str
    ours_mean: str
    ours_std: str | None
    unit: str
    #: The paper gives one number for its best mode ("up to"): shown beside every mode,
    #: subtracted only from our best mode (largest value in the same dataset/partition).
    best_of_modes: bool = False


#: Per link kind, the metrics a values row may carry, in display order.
METRICS: dict[str, dict[str, Metric]] = {
    "accuracy": {
        "accuracy": Metric("accuracy", "test accuracy (%)", "lastk_mean", "lastk_std", "%")
    },
    "fid": {
        "fid": Metric("fid", "FID", "fid_mean", "fid_std", ""),
        "upload_saved_pct": Metric(
            "upload_saved_pct", "upload saved vs FULL (%)", "up_reduction_vs_full_pct", None, "%"
        ),
        "total_saved_pct": Metric(
            "total_saved_pct",
            "parameters saved vs FULL (%)",
            "total_reduction_vs_full_pct",
            None,
            "%",
        ),
        "max_total_saved_pct": Metric(
            "max_total_saved_pct",
            "parameters saved vs FULL, paper: best mode (%)",
            "total_reduction_vs_full_pct",
            None,
            "%",
            best_of_modes=True,
        ),
    },
}
#: Where each kind's results come from (written by the report / diffuse-report stages).
RESULTS_TABLE = {
    "accuracy": paths.fill(paths.ACCURACY_TABLE, ext="csv"),
    "fid": paths.fill(paths.DIFFUSION_FID_TABLE, ext="csv"),
}
#: Accuracy rows fill the ``ours_final/lastk/best_*`` columns and their three differences
#: (``ours_mean``/``ours_std``/``ours_minus_paper`` stay empty); FID-table rows fill
#: ``ours_mean``/``ours_std``/``ours_minus_paper`` only. Empty = NaN, never 0.
COMPARISON_COLUMNS = [
    "group",
    "dataset",
    "method",
    "partition",
    "metric",
    "n_seeds",
    "n_rounds",
    "ours_final_mean",
    "ours_final_std",
    "ours_lastk_mean",
    "ours_lastk_std",
    "ours_best_mean",
    "ours_best_std",
    "ours_mean",
    "ours_std",
    "ours_kind",
    "paper",
    "ours_best_round_minus_paper",
    "ours_final_minus_paper",
    "ours_lastk_mean_minus_paper",
    "ours_minus_paper",
    "comparable",
    "source",
]
#: Accuracy statistics of our runs (columns of accuracy.csv) and their CSV names here.
ACCURACY_STATS = {"final": "ours_final", "lastk": "ours_lastk", "best": "ours_best"}
ACCURACY_DELTAS = {
    "best": "ours_best_round_minus_paper",
    "final": "ours_final_minus_paper",
    "lastk": "ours_lastk_mean_minus_paper",
}
WILDCARD = "*"
DIFFUSION_GROUP = "diffusion"


class PaperValuesError(ValueError):
    """The values CSV is missing, malformed or inconsistent; the message names the line."""


# ---- the values CSV -----------------------------------------------------------------
def resolve_values_path(path: str | Path, base: Path | None = None) -> Path:
    """``path`` as given if it exists (relative to the working directory), else relative
    to the repository (so a paper config runs from any ``--directory``); unchanged when
    it exists nowhere (the check then reports it)."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    alt = (base or REPO_ROOT) / path
    return alt if alt.exists() else path


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PaperValuesError(
            f"{where}: value {text!r} is not a number (leave it empty when unknown)"
        ) from None
    if not math.isfinite(value):
        raise PaperValuesError(f"{where}: value {text!r} is not finite")
    return value


def load_paper_values(path: str | Path) -> pd.DataFrame:
    """The values CSV as a frame with :data:`VALUE_COLUMNS` (``value`` float, NaN = none).

    Checks: the header has every column; a row with a value names its dataset,
    partition, method, metric and source; no (table, dataset, partition, method,
    metric) has two numbers. Errors name the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise PaperValuesError(f"{path}: paper values file not found")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in VALUE_COLUMNS if c not in header]
        if missing:
            raise PaperValuesError(
                f"{path}: missing column(s) {missing}; the header must be {','.join(VALUE_COLUMNS)}"
            )
        rows = []
        seen: dict[tuple[str, ...], int] = {}
        for line, raw in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            if not any(row.values()):
                continue
            where = f"{path}:{line}"
            if not row["table"] or set(row["table"]) - ID_CHARS:
                raise PaperValuesError(
                    f"{where}: table {row['table']!r} must be an id of letters, digits, _ . -"
                )
            if not row["metric"]:
                raise PaperValuesError(f"{where}: metric is empty")
            value = math.nan
            if row["value"]:
                value = _number(row["value"], where)
                empty = [c for c in ("dataset", "partition", "method", "source") if not row[c]]
                if empty:
                    raise PaperValuesError(
                        f"{where}: a row with a value needs {empty} (where the number comes from)"
                    )
                key = tuple(row[c] for c in ("table", "dataset", "partition", "method", "metric"))
                if key in seen:
                    raise PaperValuesError(
                        f"{where}: {key} already has a value on line {seen[key]}"
                    )
                seen[key] = line
            rows.append({**{c: row[c] for c in VALUE_COLUMNS}, "value": value})
    return pd.DataFrame(rows, columns=list(VALUE_COLUMNS)).astype({"value": float})


# ---- links in the config ------------------------------------------------------------
@dataclass(frozen=True)
class PaperLink:
    """One comparison table: its id, the values file, what it compares and with whom."""

    table: str
    values: str
    kind: str  # "accuracy" or "fid"
    groups: tuple[str, ...]  # experiments (accuracy) or ("diffusion",)

    @property
    def results(self) -> str:
        return RESULTS_TABLE[self.kind]

    def outputs(self) -> list[str]:
        """The comparison table's files: csv, md, tex and the report's .html page."""
        table = paths.partial(paths.PAPER_TABLE, table=self.table)
        return paths.expand(table, ext=paths.TABLE_PAGE_EXTS)


def _links(config: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(config key, group, link) of every ``paper`` entry, experiments first."""
    found = [
        (f"experiments.{name}.paper", name, exp["paper"])
        for name, exp in (config.get("experiments") or {}).items()
        if exp.get("paper")
    ]
    section = config.get("diffusion") or {}
    if section.get("paper"):
        found.append(("diffusion.paper", DIFFUSION_GROUP, section["paper"]))
    return found


def paper_links(config: Mapping[str, Any]) -> dict[str, PaperLink]:
    """Table id -> link, from a config that passed :func:`check_paper_links`."""
    out: dict[str, PaperLink] = {}
    for key, group, link in _links(config):
        kind = "fid" if key == "diffusion.paper" else "accuracy"
        table = str(link["table"])
        values = str(resolve_values_path(link.get("values", DEFAULT_VALUES)))
        prev = out.get(table)
        groups = (prev.groups if prev else ()) + (group,)
        out[table] = PaperLink(table, values, kind, groups)
    return out


def check_paper_links(config: Mapping[str, Any]) -> None:
    """Each ``paper`` link: values file exists and parses, the table id is in it, its
    metrics fit the link's kind; a table id is linked from one kind and one file only."""
    linked: dict[str, tuple[str, str, Path]] = {}
    cache: dict[Path, pd.DataFrame] = {}
    for key, _group, link in _links(config):
        kind = "fid" if key == "diffusion.paper" else "accuracy"
        table = str(link.get("table", ""))
        path = resolve_values_path(link.get("values", DEFAULT_VALUES))
        if not path.is_file():
            raise ConfigError(
                f"{key}.values: {link.get('values', DEFAULT_VALUES)}: file not found "
                "(relative paths are tried from the working directory, then the repository)"
            )
        if path not in cache:
            try:
                cache[path] = load_paper_values(path)
            except PaperValuesError as exc:
                raise ConfigError(f"{key}.values: {exc}") from exc
        values = cache[path]
        rows = values[values["table"] == table]
        if rows.empty:
            known = sorted(set(values["table"]))
            raise ConfigError(
                f"{key}.table: {table!r} is not a table of {path} (tables there: {known})"
            )
        bad = sorted(set(rows["metric"]) - set(METRICS[kind]))
        if bad:
            what = "diffusion" if kind == "fid" else "classifier"
            raise ConfigError(
                f"{key}.table: {table!r} has metric(s) {bad} in {path}; "
                f"a {what} link compares {sorted(METRICS[kind])}"
            )
        if table in linked:
            other_key, other_kind, other_path = linked[table]
            if other_kind != kind or other_path.resolve() != path.resolve():
                raise ConfigError(
                    f"{key}: table {table!r} is also linked by {other_key} "
                    "with another kind or values file; give each comparison its own table id"
                )
        linked.setdefault(table, (key, kind, path))


# ---- the comparison -------------------------------------------------------------------
Key = tuple[str, str, str, str]


def _lookup(values: pd.DataFrame, table: str) -> dict[Key, tuple[float, str]]:
    rows = values[(values["table"] == table) & values["value"].notna()]
    return {
        (r.dataset, r.partition, r.method, r.metric): (float(r.value), str(r.source))
        for r in rows.itertuples(index=False)
    }


def _find(
    lookup: Mapping[Key, tuple[float, str]], dataset: str, partition: str, method: str, metric: str
) -> tuple[float, str]:
    """The paper's number for a cell: the row naming it, else the most specific ``*`` row."""
    candidates = [
        (d, p, m)
        for d in (dataset, WILDCARD)
        for p in (partition, WILDCARD)
        for m in (method, WILDCARD)
    ]
    for d, p, m in sorted(
        candidates, key=lambda c: sum(x == WILDCARD for x in c)
    ):  # stable: exact first
        if (d, p, m, metric) in lookup:
            return lookup[(d, p, m, metric)]
    return math.nan, ""


def paper_value(
    values: pd.DataFrame, table: str, dataset: str, partition: str, method: str, metric: str
) -> tuple[float, str]:
    """(number, source) the comparison would show for one cell (NaN, "" if none)."""
    return _find(_lookup(values, table), dataset, partition, method, metric)


def _nan(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _minus(ours: float, paper: float) -> float:
    return math.nan if math.isnan(ours) or math.isnan(paper) else ours - paper


def _accuracy_row(r: Mapping[str, Any], paper: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for stat, col in ACCURACY_STATS.items():
        out[f"{col}_mean"], out[f"{col}_std"] = (
            _nan(r.get(f"{stat}_mean")),
            _nan(r.get(f"{stat}_std")),
        )
        out[ACCURACY_DELTAS[stat]] = _minus(out[f"{col}_mean"], paper)
    return out


def _best_of_modes_only(comp: pd.DataFrame) -> pd.DataFrame:
    """For "up to" metrics keep the difference only in the row(s) of our largest value."""
    for metric in (m.name for kind in METRICS.values() for m in kind.values() if m.best_of_modes):
        sel = comp["metric"] == metric
        if not sel.any():
            continue
        best = comp[sel].groupby(["group", "dataset", "partition"])["ours_mean"].transform("max")
        not_best = best.index[comp.loc[best.index, "ours_mean"] != best]
        comp.loc[not_best, "ours_minus_paper"] = math.nan
    return comp


def comparison_table(
    results: pd.DataFrame,
    values: pd.DataFrame,
    table: str,
    kind: str,
    groups: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Ours beside the paper's numbers of ``table``: one row per result cell and metric.

    ``results`` is the accuracy table (``kind="accuracy"``, rows of the experiments in
    ``groups``) or the FID table (``kind="fid"``). Rows keep the results' order. Metrics
    are those of the kind that the table has rows for (always the first: accuracy or
    FID). Accuracy: ours final / last-k mean / best round and each minus the paper.
    FID table: ``ours_minus_paper``, NaN where either is missing or the two are not
    comparable (and, for a best-of-modes metric, outside our best mode's row).
    """
    if kind not in METRICS:
        raise ValueError(f"kind must be one of {sorted(METRICS)}, got {kind!r}")
    metrics = list(METRICS[kind].values())
    present = set(values.loc[values["table"] == table, "metric"])
    metrics = [m for i, m in enumerate(metrics) if i == 0 or m.name in present]
    lookup = _lookup(values, table)
    if kind == "accuracy":
        res = (
            results
            if groups is None
            else results[results["experiment"].astype(str).isin(list(groups))]
        )
    else:
        res = results.assign(experiment=DIFFUSION_GROUP, method=results["mode"])
    if res.empty:
        which = f" (groups {list(groups)})" if groups else ""
        raise ValueError(f"no results to compare with table {table!r}{which}")
    inception = _kind_inception() if kind == "fid" else ""

    rows = []
    for r in res.to_dict("records"):
        ds, part, method = str(r["dataset"]), str(r["partition"]), str(r["method"])
        for m in metrics:
            paper, source = _find(lookup, ds, part, method, m.name)
            row: dict[str, Any] = {c: math.nan for c in COMPARISON_COLUMNS}
            row.update(
                {
                    "group": str(r["experiment"]),
                    "dataset": ds,
                    "method": method,
                    "partition": part,
                    "metric": m.name,
                    "n_seeds": int(r.get("n_seeds", 1)),
                    "n_rounds": int(r.get("n_rounds", 0)),
                    "ours_kind": "",
                    "paper": paper,
                    "comparable": True,
                    "source": source,
                }
            )
            if kind == "accuracy":
                row.update(_accuracy_row(r, paper))
            else:
                ours = _nan(r.get(m.ours_mean))
                ours_kind = str(r.get("fid_kind", "")) if m.name == "fid" else ""
                comparable = m.name != "fid" or ours_kind == inception
                row.update(
                    ours_mean=ours,
                    ours_std=_nan(r.get(m.ours_std)) if m.ours_std else math.nan,
                    ours_kind=ours_kind,
                    comparable=comparable,
                    ours_minus_paper=_minus(ours, paper) if comparable else math.nan,
                )
            rows.append(row)
    return _best_of_modes_only(pd.DataFrame(rows, columns=COMPARISON_COLUMNS))


def table_sources(values: pd.DataFrame, table: str) -> list[str]:
    """Distinct sources of a table's rows (numbers and declarations), in file order."""
    return [s for s in dict.fromkeys(values.loc[values["table"] == table, "source"]) if s]


# ---- rendering ------------------------------------------------------------------------
def _signed(x: float) -> str:
    return DASH if math.isnan(x) else f"{x + 0.0:+.2f}"  # + 0.0: no "-0.00"


def _plain(x: float) -> str:
    return DASH if math.isnan(x) else f"{x:.2f}"


def _blocks(comp: pd.DataFrame) -> list[tuple[str, str, str, pd.DataFrame]]:
    keys = dict.fromkeys(zip(comp["group"], comp["dataset"], comp["metric"]))
    return [
        (g, d, m, comp[(comp["group"] == g) & (comp["dataset"] == d) & (comp["metric"] == m)])
        for g, d, m in keys
    ]


def _metric(name: str) -> Metric:
    return next(m for kind in METRICS.values() for m in kind.values() if m.name == name)


def accuracy_header(last_k: int) -> list[str]:
    """Column names of an accuracy block: each Δ says which of ours it subtracts."""
    return [
        "method",
        "partition",
        "ours final",
        f"ours last-{last_k} mean",
        "ours best round",
        "paper",
        "Δ (ours best round − paper)",
        f"Δ (ours last-{last_k} mean − paper)",
    ]


def _grid(block: pd.DataFrame, metric: str, last_k: int) -> tuple[list[str], list[list[str]]]:
    """Header and body of one block: method, partition, ours (...), paper, difference(s)."""
    m = _metric(metric)
    if metric == "accuracy":
        header = accuracy_header(last_k)
    elif metric == "fid":
        header = ["mode", "partition", f"ours {_fid_label(block)}", "paper FID", "Δ (ours − paper)"]
    elif m.best_of_modes:
        header = [
            "mode",
            "partition",
            "ours parameters saved vs FULL (%)",
            "paper: up to (best mode)",
            "Δ (ours best mode − paper)",
        ]
    else:
        header = ["mode", "partition", f"ours {m.label}", "paper", "Δ (ours − paper)"]
    body = []
    for r in block.itertuples(index=False):
        n = int(r.n_seeds)
        line = [str(r.method), str(r.partition)]
        if metric == "accuracy":
            line += [
                format_cell(getattr(r, f"{col}_mean"), getattr(r, f"{col}_std"), n)
                for col in ACCURACY_STATS.values()
            ]
            line += [
                _plain(r.paper),
                _signed(r.ours_best_round_minus_paper),
                _signed(r.ours_lastk_mean_minus_paper),
            ]
        else:
            paper = _plain(r.paper)
            line += [
                format_cell(r.ours_mean, r.ours_std, n),
                f"up to {paper}" if m.best_of_modes and paper != DASH else paper,
                _signed(r.ours_minus_paper),
            ]
        body.append(line)
    return header, body


def _kind_inception() -> str:
    """The only kind of our FID that a paper's (Inception) FID compares with."""
    return KIND_INCEPTION


def _fid_label(block: pd.DataFrame) -> str:
    return "FID" if set(block["ours_kind"]) == {_kind_inception()} else "FD (classifier features)"


def legend(block: pd.DataFrame, metric: str, last_k: int) -> str:
    spread = seed_spread(block["n_seeds"])
    missing = (
        f"{DASH} = the paper gives no number for this cell "
        "(or it is not entered in the values file)"
    )
    if metric == "accuracy":
        return (
            f"Test accuracy (%). Ours: final = after the last round, last-{last_k} mean = mean "
            f"over the last {last_k} rounds, best round = each run's highest accuracy over all "
            f"rounds (picked on the test set, so optimistic), each {spread}. Paper: the number "
            "the paper reports (source above). Δ (ours best round − paper) compares like for "
            "like: the reference code prints the best round's accuracy, which the paper's number "
            f"most likely is. Δ (ours last-{last_k} mean − paper) compares our headline number. "
            f"Positive: ours higher. {missing}."
        )
    if metric == "fid":
        kinds = " / ".join(sorted(k for k in set(block["ours_kind"]) if k))
        note = (
            ""
            if bool(block["comparable"].all())
            else " Ours is not Inception FID, so it is not on the paper's scale: Δ is left out."
        )
        return (
            f"FID (lower is better) after the last round. Ours: {kinds}, {spread}. Paper: "
            f"reported FID (source above). Δ = ours − paper.{note} {missing}."
        )
    m = _metric(metric)
    if m.best_of_modes:
        return (
            "Parameters sent (up + down) over all rounds, relative to FULL in the same setting. "
            'The paper gives one number, the largest saving of any mode ("up to"), so it stands '
            "beside every mode; Δ = ours best mode − paper, in the row of our largest saving "
            f"only. {missing}."
        )
    return (
        f"{m.label}: parameters sent (up + down, or up only) over all rounds, relative to FULL "
        f"in the same setting. Δ = ours − paper. {missing}."
    )


def paper_document(
    comp: pd.DataFrame, table: str, sources: Sequence[str], last_k: int = 5
) -> Document:
    """One block per (group, dataset, metric); the sources as the intro line."""
    if sources:
        intro: list[str | Em] = ["Paper numbers from: "]
        for i, s in enumerate(sources):
            intro += (["; "] if i else []) + [Em(s)]
        intro.append(".")
    else:
        intro = [Em("No source recorded for this table in the values file.")]
    src = ("Paper numbers from: " + "; ".join(sources) + ". ") if sources else ""
    blocks = []
    for group, dataset, metric, block in _blocks(comp):
        header, body = _grid(block, metric, last_k)
        text = legend(block, metric, last_k)
        blocks.append(
            Block(
                header,
                body,
                heading=f"{group} — {dataset} ({_metric(metric).label})",
                legend=text,
                caption=f"{table}: {group}, {dataset}. {src}{text}",
                label=tex_label("tab:paper", table, group, dataset, metric),
                lead=2,
            )
        )
    return Document(f"Paper comparison: {table}", blocks, intro, source="feddiff.report.paper")


def render_markdown(comp: pd.DataFrame, table: str, sources: Sequence[str], last_k: int = 5) -> str:
    return render.render_markdown(paper_document(comp, table, sources, last_k))


def render_latex(comp: pd.DataFrame, table: str, sources: Sequence[str], last_k: int = 5) -> str:
    """booktabs tables, one per (group, dataset, metric); needs ``\\usepackage{booktabs}``."""
    return render.render_latex(paper_document(comp, table, sources, last_k))


def write_comparison(
    comp: pd.DataFrame, table: str, sources: Sequence[str], tables_dir: Path, last_k: int = 5
) -> list[Path]:
    """``paper_<table>.{csv,md,tex,html}`` under ``tables_dir``, each written atomically."""
    doc = paper_document(comp, table, sources, last_k)
    paths = write_document(Path(tables_dir) / f"paper_{table}", comp, doc, float_format="%.4f")
    return list(paths.values())


def make_paper_table(
    results_csv: Path,
    values_csv: Path,
    table: str,
    kind: str,
    tables_dir: Path,
    groups: Iterable[str] | None = None,
    last_k: int = 5,
) -> pd.DataFrame:
    """The stage: read our results table and the values CSV, write the comparison."""
    keys = ("experiment", "dataset", "partition", "method", "mode", "fid_kind")
    results = pd.read_csv(results_csv, dtype={c: str for c in keys})  # names stay as written
    values = load_paper_values(values_csv)
    if values[values["table"] == table].empty:
        raise PaperValuesError(f"{values_csv}: no rows for table {table!r}")
    groups = list(groups) if groups else None
    comp = comparison_table(results, values, table, kind, groups)
    write_comparison(comp, table, table_sources(values, table), Path(tables_dir), last_k)
    return comp


__all__ = [
    "COMPARISON_COLUMNS",
    "METRICS",
    "WILDCARD",
    "PaperLink",
    "PaperValuesError",
    "accuracy_header",
    "check_paper_links",
    "comparison_table",
    "load_paper_values",
    "make_paper_table",
    "paper_links",
    "paper_value",
    "render_latex",
    "render_markdown",
    "resolve_values_path",
    "table_sources",
    "write_comparison",
]
