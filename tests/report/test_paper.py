"""Paper numbers beside ours: the values CSV, the join, the difference, missing numbers,
the CSV/Markdown/LaTeX outputs and the config links (no Snakemake involved)."""

from __future__ import annotations

import copy
import html
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from feddiff.config import REPO_ROOT, ConfigError
from feddiff.diffusion.fid import KIND_CLASSIFIER, KIND_INCEPTION
from feddiff.plan import validate_config
from feddiff.report import RunResult, accuracy_table, write_accuracy_tables
from feddiff.report.paper import (
    COMPARISON_COLUMNS,
    PaperValuesError,
    accuracy_header,
    check_paper_links,
    comparison_table,
    load_paper_values,
    make_paper_table,
    paper_links,
    render_latex,
    render_markdown,
    resolve_values_path,
)

HEADER = "table,dataset,partition,method,metric,value,source\n"
SOURCE = '"Some et al. (2025), arXiv:0000.00000v1, Table 1"'


def _values(tmp_path: Path, body: str, name: str = "values.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def _md_row(md: str, *first: str) -> list[str]:
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[: len(first)] == list(first):
            return cells
    raise AssertionError(f"no Markdown row starting with {first}")


@pytest.fixture
def values_csv(tmp_path: Path) -> Path:
    """Paper numbers for three of the grid's four cells (fed_prox/dir0.5 has none)."""
    return _values(
        tmp_path,
        f"t1,cifar10,,,accuracy,,{SOURCE}\n"
        f"t1,cifar10,iid,fedavg,accuracy,80.00,{SOURCE}\n"
        f"t1,cifar10,dir0.5,fedavg,accuracy,75.50,{SOURCE}\n"
        f"t1,cifar10,iid,fed_prox,accuracy,84.2,{SOURCE}\n"
        f"t1,mnist,iid,fedavg,accuracy,99.0,{SOURCE}\n"  # a dataset we did not run: ignored
        f"other,cifar10,iid,fedavg,accuracy,1.0,{SOURCE}\n",  # another table: ignored
    )


@pytest.fixture
def comp(grid_runs: list[RunResult], values_csv: Path) -> pd.DataFrame:
    return comparison_table(
        accuracy_table(grid_runs, last_k=5), load_paper_values(values_csv), "t1", "accuracy"
    )


# ---- the values CSV -------------------------------------------------------------------
def test_load_values(values_csv: Path) -> None:
    values = load_paper_values(values_csv)
    assert list(values.columns) == [
        "table",
        "dataset",
        "partition",
        "method",
        "metric",
        "value",
        "source",
    ]
    assert len(values) == 6
    assert math.isnan(values.loc[0, "value"])  # the declaration row holds no number
    assert values.loc[1, "value"] == pytest.approx(80.0)
    assert values.loc[1, "source"].startswith("Some et al. (2025), arXiv:")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (
            f"t1,cifar10,iid,fedavg,accuracy,eighty,{SOURCE}\n",
            r"values\.csv:2: value 'eighty' is not a number",
        ),
        ("t1,cifar10,iid,fedavg,accuracy,80.0,\n", r"values\.csv:2: .*\['source'\]"),
        (f"t1,cifar10,,fedavg,accuracy,80.0,{SOURCE}\n", r"\['partition'\]"),
        (
            f"t1,cifar10,iid,fedavg,accuracy,80.0,{SOURCE}\nt1,cifar10,iid,fedavg,accuracy,81.0,{SOURCE}\n",
            r"values\.csv:3: .* already has a value on line 2",
        ),
        (f"t 1,cifar10,iid,fedavg,accuracy,80.0,{SOURCE}\n", "must be an id"),
        (f"t1,cifar10,iid,fedavg,,80.0,{SOURCE}\n", "metric is empty"),
        (f"t1,cifar10,iid,fedavg,accuracy,nan,{SOURCE}\n", "not finite"),
    ],
)
def test_bad_values_are_refused_with_file_and_line(tmp_path: Path, body: str, match: str) -> None:
    with pytest.raises(PaperValuesError, match=match):
        load_paper_values(_values(tmp_path, body))


def test_missing_column_or_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("table,dataset,method,value\n")
    with pytest.raises(
        PaperValuesError, match=r"missing column\(s\) \['partition', 'metric', 'source'\]"
    ):
        load_paper_values(bad)
    with pytest.raises(PaperValuesError, match="not found"):
        load_paper_values(tmp_path / "nope.csv")


def test_repository_values_file() -> None:
    """config/paper/paper_values.csv parses, and every number in it names its source."""
    values = load_paper_values(REPO_ROOT / "config" / "paper" / "paper_values.csv")
    assert {"feddifrc_main", "feddifrc_ablation", "feddiffuse_fid"} <= set(values["table"])
    numbers = values[values["value"].notna()]
    assert numbers["source"].str.contains("arXiv:").all()
    assert (values["source"] != "").all()


# ---- the join and the difference --------------------------------------------------------
def test_join_and_difference(comp: pd.DataFrame) -> None:
    """The grid's curves put best round, final and last-5 mean at three different values
    (base + 2, base, base - 2.8 points: see conftest), so each difference is told apart."""
    assert list(comp.columns) == COMPARISON_COLUMNS
    assert len(comp) == 4  # one row per result cell: the paper's extra rows never add rows
    row = comp[(comp["method"] == "fedavg") & (comp["partition"] == "iid")].iloc[0]
    assert (row.group, row.dataset, row.metric, row.n_seeds) == ("exp_a", "cifar10", "accuracy", 3)
    assert row.ours_final_mean == pytest.approx(85.0) and row.ours_final_std == pytest.approx(1.0)
    assert row.ours_lastk_mean == pytest.approx(82.2) and row.ours_lastk_std == pytest.approx(1.0)
    assert row.ours_best_mean == pytest.approx(87.0) and row.ours_best_std == pytest.approx(1.0)
    assert row.paper == pytest.approx(80.0)
    assert row.ours_best_round_minus_paper == pytest.approx(7.0)  # 87.0 - 80.0
    assert row.ours_final_minus_paper == pytest.approx(5.0)  # 85.0 - 80.0
    assert row.ours_lastk_mean_minus_paper == pytest.approx(2.2)  # 82.2 - 80.0
    assert math.isnan(row.ours_mean) and math.isnan(
        row.ours_minus_paper
    )  # FID-table columns stay empty
    below = comp[(comp["method"] == "fedavg") & (comp["partition"] == "dir0.5")].iloc[0]
    assert below.ours_lastk_mean_minus_paper == pytest.approx(72.2 - 75.5)
    assert below.ours_best_round_minus_paper == pytest.approx(
        77.0 - 75.5
    )  # the sign flips: like for like
    assert below.ours_final_minus_paper == pytest.approx(75.0 - 75.5)
    prox = comp[(comp["method"] == "fed_prox") & (comp["partition"] == "iid")].iloc[0]
    assert prox.ours_lastk_mean_minus_paper == pytest.approx(
        0.0
    ) and prox.ours_best_round_minus_paper == pytest.approx(4.8)


def test_missing_paper_number_is_nan_not_zero(comp: pd.DataFrame) -> None:
    row = comp[(comp["method"] == "fed_prox") & (comp["partition"] == "dir0.5")].iloc[0]
    assert math.isnan(row.paper) and row.source == ""
    assert all(
        math.isnan(row[c])
        for c in (
            "ours_best_round_minus_paper",
            "ours_final_minus_paper",
            "ours_lastk_mean_minus_paper",
        )
    )
    assert row.ours_lastk_mean == pytest.approx(77.2) and row.ours_best_mean == pytest.approx(82.0)


def test_groups_select_experiments(grid_runs: list[RunResult], values_csv: Path) -> None:
    table = accuracy_table(grid_runs)
    values = load_paper_values(values_csv)
    assert len(comparison_table(table, values, "t1", "accuracy", groups=["exp_a"])) == 4
    with pytest.raises(ValueError, match="no results"):
        comparison_table(table, values, "t1", "accuracy", groups=["other_experiment"])


# ---- the three formats --------------------------------------------------------------------
def test_markdown(comp: pd.DataFrame) -> None:
    md = render_markdown(comp, "t1", ["Some et al. (2025), arXiv:0000.00000v1, Table 1"], last_k=5)
    assert md.startswith("# Paper comparison: t1")
    assert "Paper numbers from: *Some et al. (2025), arXiv:0000.00000v1, Table 1*." in md
    assert "## exp_a — cifar10 (test accuracy (%))" in md
    assert _md_row(md, "method") == [
        "method",
        "partition",
        "ours final",
        "ours last-5 mean",
        "ours best round",
        "paper",
        "Δ (ours best round − paper)",
        "Δ (ours last-5 mean − paper)",
    ]
    assert _md_row(md, "fedavg", "iid") == [
        "fedavg",
        "iid",
        "85.00 ± 1.00",
        "82.20 ± 1.00",
        "87.00 ± 1.00",
        "80.00",
        "+7.00",
        "+2.20",
    ]
    assert _md_row(md, "fedavg", "dir0.5")[-3:] == ["75.50", "+1.50", "-3.30"]
    assert _md_row(md, "fed_prox", "iid")[-2:] == ["+4.80", "+0.00"]
    assert _md_row(md, "fed_prox", "dir0.5") == [
        "fed_prox",
        "dir0.5",
        "80.00 ± 2.00",
        "77.20 ± 2.00",
        "82.00 ± 2.00",
        "–",
        "–",
        "–",
    ]
    assert "Δ (ours best round − paper) compares like for like" in md
    assert "Δ (ours last-5 mean − paper) compares our headline number. Positive: ours higher." in md


def test_latex_booktabs(comp: pd.DataFrame) -> None:
    tex = render_latex(comp, "t1", ["Some_et al. 100% sure"], last_k=5)
    assert "Requires \\usepackage{booktabs}" in tex
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{llrrrrrr}"):
        assert rule in tex
    assert (
        r"fedavg & iid & 85.00 $\pm$ 1.00 & 82.20 $\pm$ 1.00 & 87.00 $\pm$ 1.00"
        r" & 80.00 & +7.00 & +2.20 \\" in tex
    )
    assert (
        r"fed\_prox & dir0.5 & 80.00 $\pm$ 2.00 & 77.20 $\pm$ 2.00 & 82.00 $\pm$ 2.00"
        r" & -- & -- & -- \\" in tex
    )
    assert (
        r"Some\_et al. 100\% sure" in tex and r"\label{tab:paper-t1-exp-a-cifar10-accuracy}" in tex
    )
    body = [line for line in tex.splitlines() if not line.startswith("%")]
    assert not any(re.search(r"(?<!\\)[_%]", line) for line in body)
    assert (
        r"& paper & $\Delta$ (ours best round $-$ paper) & $\Delta$ (ours last-5 mean $-$ paper) \\"
        in tex
    )
    assert not {"±", "–", "Δ", "−"} & set(tex)  # all spelled in LaTeX for pdflatex


def test_make_paper_table_from_files(
    grid_runs: list[RunResult], values_csv: Path, tmp_path: Path
) -> None:
    """The stage reads accuracy.csv as the report writes it and writes the four files."""
    out = tmp_path / "tables"
    write_accuracy_tables(accuracy_table(grid_runs), out / "accuracy")
    comp = make_paper_table(out / "accuracy.csv", values_csv, "t1", "accuracy", out, last_k=5)
    assert sorted(p.name for p in out.glob("paper_*")) == [
        "paper_t1.csv",
        "paper_t1.html",
        "paper_t1.md",
        "paper_t1.tex",
    ]
    back = pd.read_csv(out / "paper_t1.csv")
    assert list(back.columns) == COMPARISON_COLUMNS and len(back) == len(comp) == 4
    missing = back[(back["method"] == "fed_prox") & (back["partition"] == "dir0.5")].iloc[0]
    assert math.isnan(missing["paper"]) and math.isnan(
        missing["ours_best_round_minus_paper"]
    )  # empty, not 0
    present = back[(back["method"] == "fedavg") & (back["partition"] == "iid")].iloc[0]
    assert (
        present["ours_best_round_minus_paper"],
        present["ours_final_minus_paper"],
        present["ours_lastk_mean_minus_paper"],
    ) == pytest.approx((7.0, 5.0, 2.2))
    lines = (out / "paper_t1.csv").read_text().splitlines()
    line = next(x for x in lines if x.startswith("exp_a,cifar10,fed_prox,dir0.5"))
    assert ",,," in line and ",0.0000," not in line
    assert (
        "+7.00 | +2.20" in (out / "paper_t1.md").read_text()
        and r"\bottomrule" in (out / "paper_t1.tex").read_text()
    )
    with pytest.raises(PaperValuesError, match="no rows for table 'nope'"):
        make_paper_table(out / "accuracy.csv", values_csv, "nope", "accuracy", out)


# ---- FID tables -----------------------------------------------------------------------------
def _fid_results(kind: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dataset": ["cifar10", "cifar10"],
            "partition": ["iid", "iid"],
            "mode": ["full", "udec"],
            "n_seeds": [2, 1],
            "n_rounds": [15, 15],
            "fid_kind": [kind, kind],
            "num_samples": [1000, 1000],
            "fid_mean": [30.0, 45.5],
            "fid_std": [1.5, math.nan],
            "up_reduction_vs_full_pct": [0.0, 60.0],
            "total_reduction_vs_full_pct": [0.0, 50.0],
        }
    )


def _fid_values(tmp_path: Path) -> pd.DataFrame:
    return load_paper_values(
        _values(
            tmp_path,
            f"f1,cifar10,iid,full,fid,25.0,{SOURCE}\n"
            f"f1,cifar10,iid,udec,total_saved_pct,74.0,{SOURCE}\n",
        )
    )


def test_fid_difference_only_for_inception(tmp_path: Path) -> None:
    values = _fid_values(tmp_path)
    comp = comparison_table(_fid_results(KIND_INCEPTION), values, "f1", "fid")
    fid = comp[comp["metric"] == "fid"]
    assert fid["group"].unique().tolist() == ["diffusion"] and fid["method"].tolist() == [
        "full",
        "udec",
    ]
    assert fid.iloc[0].ours_minus_paper == pytest.approx(5.0) and bool(fid.iloc[0].comparable)
    assert math.isnan(fid.iloc[1].paper) and math.isnan(fid.iloc[1].ours_minus_paper)
    saved = comp[comp["metric"] == "total_saved_pct"]  # present because the table has such a row
    assert saved.iloc[1].ours_minus_paper == pytest.approx(50.0 - 74.0)
    assert "upload_saved_pct" not in set(comp["metric"])  # no paper row: not shown
    md = render_markdown(comp, "f1", [], last_k=5)
    assert _md_row(md, "mode") == ["mode", "partition", "ours FID", "paper FID", "Δ (ours − paper)"]
    assert _md_row(md, "full", "iid") == ["full", "iid", "30.00 ± 1.50", "25.00", "+5.00"]
    assert "*No source recorded" in md

    offline = comparison_table(_fid_results(KIND_CLASSIFIER), values, "f1", "fid")
    row = offline[offline["metric"] == "fid"].iloc[0]
    assert (
        row.paper == pytest.approx(25.0) and math.isnan(row.ours_minus_paper) and not row.comparable
    )
    md = render_markdown(offline, "f1", [], last_k=5)
    assert _md_row(md, "full", "iid") == ["full", "iid", "30.00 ± 1.50", "25.00", "–"]
    assert "ours FD (classifier features)" in md and "Δ is left out" in md


def test_up_to_number_stands_beside_every_mode(tmp_path: Path) -> None:
    """A ``*`` row (FedDiffuse's single "up to 74 %") sits beside each mode of each
    partition; Δ only where ours is the largest saving; a row naming the cell wins."""
    results = pd.DataFrame(
        {
            "dataset": ["fmnist"] * 4 + ["celeba"] * 2,
            "partition": ["iid"] * 3 + ["dir"] + ["iid"] * 2,
            "mode": ["full", "usplit", "udec", "udec", "full", "ulatdec"],
            "n_seeds": 1,
            "n_rounds": 15,
            "fid_kind": KIND_INCEPTION,
            "num_samples": 1000,
            "fid_mean": [30.0, 31.0, 40.0, 41.0, 20.0, 22.0],
            "fid_std": math.nan,
            "up_reduction_vs_full_pct": [0.0, 45.0, 65.0, 65.0, 0.0, 50.0],
            "total_reduction_vs_full_pct": [0.0, 35.0, 58.0, 57.5, 0.0, 41.0],
        }
    )
    values = load_paper_values(
        _values(
            tmp_path,
            f"f1,*,*,*,max_total_saved_pct,74,{SOURCE}\n"
            f"f1,*,*,*,fid,20.0,{SOURCE}\n"
            f"f1,fmnist,iid,full,fid,25.0,{SOURCE}\n",
        )
    )
    comp = comparison_table(results, values, "f1", "fid")
    saved = comp[comp["metric"] == "max_total_saved_pct"].reset_index(drop=True)
    assert saved["paper"].tolist() == [74.0] * 6
    # ours best mode per (dataset, partition): fmnist/iid udec 58 -> -16; fmnist/dir only
    # udec -> -16.5; celeba/iid ulatdec 41 -> -33; every other row has no Δ
    expected = [math.nan, math.nan, 58.0 - 74.0, 57.5 - 74.0, math.nan, 41.0 - 74.0]
    for got, want in zip(saved["ours_minus_paper"], expected):
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)
    fid = comp[comp["metric"] == "fid"]
    assert fid["paper"].tolist() == [
        25.0,
        20.0,
        20.0,
        20.0,
        20.0,
        20.0,
    ]  # the named row wins for fmnist/iid/full
    md = render_markdown(comp, "f1", [], last_k=5)
    assert _md_row(md, "mode", "partition", "ours parameters saved vs FULL (%)") == [
        "mode",
        "partition",
        "ours parameters saved vs FULL (%)",
        "paper: up to (best mode)",
        "Δ (ours best mode − paper)",
    ]
    assert _md_row(md, "usplit", "iid", "35.00") == ["usplit", "iid", "35.00", "up to 74.00", "–"]
    assert _md_row(md, "udec", "iid", "58.00") == ["udec", "iid", "58.00", "up to 74.00", "-16.00"]
    assert "in the row of our largest saving only" in md


# ---- links in the config ----------------------------------------------------------------------
def _config(values: Path, **paper: Any) -> dict[str, Any]:
    link = {"table": "t1", "values": str(values), **paper}
    return {
        "datasets": {"digits": {"source": "digits"}},
        "partitions": {"iid": {"scheme": "iid", "num_clients": 4}},
        "methods": {"fedavg": {"strategy": "fedavg"}},
        "training": {"model": "cnn", "rounds": 2, "clients_per_round": 2},
        "experiments": {
            "e1": {
                "datasets": ["digits"],
                "partitions": ["iid"],
                "methods": ["fedavg"],
                "seeds": [0],
                "paper": link,
            },
            "e2": {
                "datasets": ["digits"],
                "partitions": ["iid"],
                "methods": ["fedavg"],
                "seeds": [1],
                "paper": copy.deepcopy(link),
            },
        },
    }


def test_valid_links(values_csv: Path) -> None:
    config = validate_config(_config(values_csv))
    links = paper_links(config)
    assert list(links) == ["t1"]
    link = links["t1"]
    assert (link.kind, link.groups, link.values) == ("accuracy", ("e1", "e2"), str(values_csv))
    assert link.results == "results/tables/accuracy.csv"
    assert link.outputs() == [
        f"results/tables/paper_t1.{ext}" for ext in ("csv", "md", "tex", "html")
    ]


def test_values_default_to_the_repository_file() -> None:
    config = _config(Path("unused"))
    for exp in config["experiments"].values():
        exp["paper"] = {"table": "feddifrc_main"}
    validate_config(config)
    assert paper_links(config)["feddifrc_main"].values.endswith("config/paper/paper_values.csv")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {"values": "no/such/file.csv"},
            r"experiments\.e1\.paper\.values: no/such/file\.csv: file not found",
        ),
        (
            {"table": "t9"},
            r"experiments\.e1\.paper\.table: 't9' is not a table of "
            r".*tables there: \['other', 't1'\]",
        ),
        ({"tabel": "t1"}, r"experiments\.e1\.paper.*tabel"),
    ],
)
def test_bad_links_name_the_key(values_csv: Path, change: dict[str, Any], match: str) -> None:
    config = _config(values_csv)
    config["experiments"]["e1"]["paper"].update(change)
    with pytest.raises(ConfigError, match=match):
        validate_config(config)


def test_link_kind_must_fit_the_metrics(tmp_path: Path, values_csv: Path) -> None:
    fid_values = _values(tmp_path, f"f1,digits,,,fid,,{SOURCE}\n", name="fid.csv")
    config = _config(fid_values, table="f1")
    with pytest.raises(
        ConfigError, match=r"'f1' has metric\(s\) \['fid'\].*compares \['accuracy'\]"
    ):
        check_paper_links(config)
    config = _config(values_csv)
    config["experiments"]["e2"]["paper"]["values"] = str(tmp_path / "copy.csv")
    (tmp_path / "copy.csv").write_text(values_csv.read_text())
    with pytest.raises(ConfigError, match="also linked by experiments.e1.paper"):
        check_paper_links(config)


def test_values_path_falls_back_to_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (
        resolve_values_path("config/paper/paper_values.csv")
        == REPO_ROOT / "config/paper/paper_values.csv"
    )
    (tmp_path / "config" / "paper").mkdir(parents=True)
    (tmp_path / "config" / "paper" / "paper_values.csv").write_text(HEADER)
    assert resolve_values_path("config/paper/paper_values.csv") == Path(
        "config/paper/paper_values.csv"
    )
    assert resolve_values_path("missing.csv") == Path("missing.csv")


# ---- the papers' own numbers reach the paper configs' tables ----------------------------------
SHARED_PAPERS = REPO_ROOT.parent / "shared" / "papers"
FEDDIFRC_SUMMARY = SHARED_PAPERS / "feddifrc-summary.txt"
#: The summary's column and row names -> the paper configs' partition and method names
#: (written here independently of config/paper/paper_values.csv, so a wrong row there fails).
SUMMARY_COLUMNS = {
    "NID1_0.05": "dir0.05",
    "NID1_0.2": "dir0.2",
    "NID1_0.5": "dir0.5",
    "NID2": "nid2",
}
SUMMARY_ROWS = {
    "feddifrc_main": {
        "FedAvg": "fedavg",
        "FedProx": "fedprox",
        "MOON": "moon",
        "FedNH": "fednh",
        "FedDifRC": "feddifrc",
    },
    "feddifrc_ablation": {
        "Baseline (FedAvg)": "fedavg",
        "+ TDCL only": "feddifrc_tdcl",
        "+ NDCR only": "feddifrc_ndcr",
        "+ TDCL + NDCR": "feddifrc",
        "Layer L=2 only": "feddifrc_b1",
        "Layer L=3 only": "feddifrc_b2",
        "Fused L={2,3,4}": "feddifrc",
    },
}
SUMMARY_HEADINGS = {
    "feddifrc_main": "Main Results (CIFAR-10",
    "feddifrc_ablation": "Ablation Study (CIFAR-10",
}
PAPER_CONFIGS = {
    "feddifrc_main": "feddifrc_main.yaml",
    "feddifrc_ablation": "feddifrc_ablation.yaml",
}


def _summary_table(text: str, heading: str) -> list[list[str]]:
    """The pipe table right after ``heading``: header row, then data rows (no alignment row)."""
    lines = text[text.index(heading) :].splitlines()[1:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not all(set(c) <= set("-: ") for c in cells):
            rows.append(cells)
    return rows


def _summary_cells(table: str) -> dict[tuple[str, str], float | None]:
    """(method, partition) -> the summary's number (None for "—"), rows mapped as above."""
    rows = _summary_table(FEDDIFRC_SUMMARY.read_text(encoding="utf-8"), SUMMARY_HEADINGS[table])
    header, body = rows[0], rows[1:]
    assert [r[0] for r in body] == list(SUMMARY_ROWS[table]), "the summary's rows changed"
    cells: dict[tuple[str, str], float | None] = {}
    for row in body:
        method = SUMMARY_ROWS[table][row[0]]
        for col, text in zip(header[1:], row[1:]):
            if col not in SUMMARY_COLUMNS:
                continue  # AVG (main) and Notes (ablation): no cell in our tables
            value = None if text in ("—", "-", "") else float(text)
            key = (method, SUMMARY_COLUMNS[col])
            # "Fused L={2,3,4}" is "+ TDCL + NDCR" again: a "—" there adds nothing, a number
            # must agree
            if value is None:
                cells.setdefault(key, None)
                continue
            assert cells.get(key) in (None, value), f"{table}: {key} has two different numbers"
            cells[key] = value
    return cells


def _html_rows(page: str) -> list[list[str]]:
    return [
        [html.unescape(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr, re.S)]
        for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", page, re.S)
    ]


@pytest.mark.skipif(
    not FEDDIFRC_SUMMARY.is_file(),
    reason=f"{FEDDIFRC_SUMMARY} absent (../shared not beside the repository)",
)
@pytest.mark.parametrize("table", list(PAPER_CONFIGS))
def test_every_summary_number_reaches_the_rendered_paper_table(table: str, tmp_path: Path) -> None:
    """A dry-built report: the paper config's expected accuracy table (made-up ours), the
    paper-table stage, the HTML page; every number of the summary's table is in the paper
    column of its (method, partition) in Markdown, LaTeX and HTML, and "–" stays "–"."""

    from feddiff.plan import load_config
    from feddiff.report.tables import TABLE_COLUMNS

    config = load_config(REPO_ROOT / "config" / "paper" / PAPER_CONFIGS[table])
    link = paper_links(config)[table]
    rows = [
        {
            "experiment": e,
            "dataset": d,
            "method": m,
            "partition": p,
            "n_seeds": len(exp["seeds"]),
            "n_rounds": 50,
            "final_mean": 70.0,
            "final_std": 0.5,
            "lastk_mean": 69.0,
            "lastk_std": 0.5,
            "best_mean": 71.0,
            "best_std": 0.5,
        }
        for e, exp in config["experiments"].items()
        if e in link.groups
        for d in exp["datasets"]
        for m in exp["methods"]
        for p in exp["partitions"]
    ]
    out = tmp_path / "tables"
    out.mkdir()
    pd.DataFrame(rows, columns=TABLE_COLUMNS).to_csv(out / "accuracy.csv", index=False)
    make_paper_table(
        out / "accuracy.csv",
        Path(link.values),
        table,
        link.kind,
        out,
        link.groups,
        config["last_k"],
    )
    md = (out / f"paper_{table}.md").read_text(encoding="utf-8")
    tex = (out / f"paper_{table}.tex").read_text(encoding="utf-8")
    html_rows = _html_rows((out / f"paper_{table}.html").read_text(encoding="utf-8"))
    md_rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in md.splitlines()
        if line.startswith("| ")
    ]
    tex_rows = [
        [c.strip() for c in line.removesuffix(r"\\").split("&")]
        for line in tex.splitlines()
        if " & " in line
    ]
    paper_col = accuracy_header(config["last_k"]).index("paper")
    ours = {(r["method"], r["partition"]) for r in rows}
    cells = _summary_cells(table)
    numbers = {k: v for k, v in cells.items() if v is not None}
    missing = sorted(set(numbers) - ours)
    assert not missing, f"summary cells with no run in {PAPER_CONFIGS[table]}: {missing}"
    for method, partition in ours:
        want = f"{numbers[(method, partition)]:.2f}" if (method, partition) in numbers else "–"
        for name, grid, meth in (
            ("md", md_rows, method),
            ("html", html_rows, method),
            ("tex", tex_rows, method.replace("_", r"\_")),
        ):
            got = [r[paper_col] for r in grid if r[:2] == [meth, partition]]
            want_here = "--" if name == "tex" and want == "–" else want
            assert got and set(got) == {want_here}, (table, name, method, partition, got, want)
    assert "feddifrc-summary.txt" in md and "arXiv:2507.06482" in md


FEDDIFFUSE_SUMMARY = SHARED_PAPERS / "feddiffuse-summary.txt"


@pytest.mark.skipif(
    not FEDDIFFUSE_SUMMARY.is_file(),
    reason=f"{FEDDIFFUSE_SUMMARY} absent (../shared not beside the repository)",
)
def test_feddiffuse_up_to_number_stands_beside_every_mode(tmp_path: Path) -> None:
    """The summary's "up to N%" (read from the file) is the paper column of every mode of the
    FedDiffuse paper config's FID table; Δ only in the row of our best mode."""
    from feddiff.plan import load_config

    found = set(
        re.findall(r"up to (\d+(?:\.\d+)?)\s*%", FEDDIFFUSE_SUMMARY.read_text(encoding="utf-8"))
    )
    assert len(found) == 1, found
    number = float(found.pop())
    config = load_config(REPO_ROOT / "config" / "paper" / "feddiffuse_fid.yaml")
    link = paper_links(config)["feddiffuse_fid"]
    grid = config["diffusion"]["grid"]
    cells = [(d, p, m) for d in grid["datasets"] for p in grid["partitions"] for m in grid["modes"]]
    saved = {"full": 0.0, "usplit": 25.0, "udec": 40.0, "ulatdec": 22.0}
    results = pd.DataFrame(
        {
            "dataset": [c[0] for c in cells],
            "partition": [c[1] for c in cells],
            "mode": [c[2] for c in cells],
            "n_seeds": 1,
            "n_rounds": 15,
            "fid_kind": KIND_CLASSIFIER,
            "num_samples": 1000,
            "fid_mean": 30.0,
            "fid_std": math.nan,
            "up_reduction_vs_full_pct": 10.0,
            "total_reduction_vs_full_pct": [saved[c[2]] for c in cells],
        }
    )
    comp = comparison_table(results, load_paper_values(link.values), "feddiffuse_fid", "fid")
    rows = comp[comp["metric"] == "max_total_saved_pct"]
    assert len(rows) == len(cells) and (rows["paper"] == number).all()
    assert (
        rows["source"].str.contains("feddiffuse-summary.txt").all()
        and rows["source"].str.contains("2406.12575").all()
    )
    best = rows[rows["method"] == "udec"]
    assert best["ours_minus_paper"].tolist() == pytest.approx([40.0 - number] * len(best))
    assert rows[rows["method"] != "udec"]["ours_minus_paper"].isna().all()
    md = render_markdown(comp, "feddiffuse_fid", [], last_k=5)
    assert md.count(f"up to {number:.2f}") == len(cells)
