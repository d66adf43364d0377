"""The path table (feddiff.paths): filling, and that every path of the DAG comes from it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from feddiff import paths
from tests.workflow.tiny import REPO, env, snakemake_cmd

#: Every template of the table (module-level strings with a wildcard or under results/).
TEMPLATES = {
    name: value
    for name, value in vars(paths).items()
    if name.isupper() and isinstance(value, str) and value.startswith(paths.RESULTS + "/")
}


def test_fill_reads_only_the_templates_fields_from_a_mapping_or_an_object() -> None:
    values = {"dataset": "d", "ptag": "p", "mtag": "m", "ttag": "t", "seed": 3, "extra": "x"}
    expected = "results/runs/d/p/m/t/seed3"
    assert paths.fill(paths.RUN_DIR, values) == expected
    assert paths.fill(paths.RUN_DIR, SimpleNamespace(**values)) == expected  # like wildcards
    assert paths.fill(paths.RUN_METRICS, values, seed=7) == "results/runs/d/p/m/t/seed7/metrics.csv"
    with pytest.raises(KeyError, match="ttag"):
        paths.fill(paths.RUN_DIR, {k: v for k, v in values.items() if k != "ttag"})


def test_partial_and_expand_keep_the_other_wildcards_and_the_order() -> None:
    assert paths.partial(paths.PAPER_TABLE, ext="md") == "results/tables/paper_{table}.md"
    got = paths.expand(paths.ACCURACY_CURVES, experiment=["a", "b"], ext=("png", "pdf"))
    assert got == [
        "results/figures/accuracy_vs_round_a.png",
        "results/figures/accuracy_vs_round_a.pdf",
        "results/figures/accuracy_vs_round_b.png",
        "results/figures/accuracy_vs_round_b.pdf",
    ]
    assert paths.expand(paths.ACCURACY_TABLE, ext=paths.TABLE_EXTS)[-1] == (
        "results/tables/accuracy.tex"
    )


def test_match_reads_wildcards_from_a_path_and_rejects_other_templates() -> None:
    """What flag_for_html_report (rules/report_common.smk) relies on to flag by template."""
    curves = paths.partial(paths.ACCURACY_CURVES, ext="png")
    assert paths.match(curves, "results/figures/accuracy_vs_round_main.png") == {
        "experiment": "main"
    }
    assert paths.match(curves, "results/figures/accuracy_vs_round_main.pdf") is None
    assert paths.match(curves, "results/figures/sub/accuracy_vs_round_main.png") is None
    # the per-experiment calibration figure is not the DDPM grid's, nor the other way round
    calibration = paths.partial(paths.CALIBRATION_FIGURE, ext="png")
    assert paths.match(calibration, "results/figures/diffusion_calibration.png") is None
    assert paths.match(calibration, "results/figures/calibration_x.png") == {"experiment": "x"}
    # a rule's output pattern matches its own template, its wildcards left as they are
    page = paths.partial(paths.PAPER_TABLE, ext="html")
    assert paths.match(page, page) == {"table": "{table}"}
    assert paths.match(paths.RUN_METRICS, "results/runs/d/p/m/t/seed3/metrics.csv") == {
        "dataset": "d",
        "ptag": "p",
        "mtag": "m",
        "ttag": "t",
        "seed": "3",
    }
    assert paths.match("{a}/x/{a}", "u/x/u") == {"a": "u"}  # a repeated wildcard: one value
    assert paths.match("{a}/x/{a}", "u/x/v") is None


def test_logs_and_benchmarks_reuse_the_job_key() -> None:
    assert paths.log("train", paths.RUN_KEY) == (
        "results/logs/train/{dataset}/{ptag}/{mtag}/{ttag}/seed{seed}.log"
    )
    assert paths.log("report") == "results/logs/report.log"
    assert paths.benchmark("prepare_data", paths.DATA_KEY) == (
        "results/benchmarks/prepare_data/{dataset}.tsv"
    )
    # a job's files and its log carry the same wildcards
    for key in (paths.RUN_KEY, paths.DIFFUSION_KEY, paths.AUXILIARY_KEY, paths.FEATURES_KEY):
        assert paths.fields(paths.log("x", key)) == paths.fields(key)


def _pattern(template: str) -> re.Pattern[str]:
    """A template as a regex: each wildcard one path component part (no slash)."""
    out, pos = "", 0
    for match in re.finditer(r"\{(\w+)\}", template):
        out += re.escape(template[pos : match.start()]) + r"[^/]+"
        pos = match.end()
    return re.compile(out + re.escape(template[pos:]))


def _dry_run_jobs(workdir: Path, configfile: Path) -> list[dict[str, list[str]]]:
    """Every job of ``snakemake -n``: its rule and its output, log and benchmark files."""
    out = subprocess.run(
        snakemake_cmd(workdir, "--configfile", str(configfile), "-n"),
        capture_output=True,
        text=True,
        env=env(),
        cwd=REPO,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    jobs: list[dict[str, list[str]]] = []
    for line in out.stdout.splitlines():
        head = re.fullmatch(r"(?:local)?rule (\w+):", line.strip())
        if head:
            jobs.append({"rule": [head.group(1)]})
            continue
        item = re.fullmatch(r"\s+(output|log|benchmark): (.+)", line)
        if item and jobs:
            jobs[-1][item.group(1)] = item.group(2).split(", ")
    assert jobs, out.stdout[-2000:]
    return jobs


@pytest.mark.parametrize("config", ["config/config.yaml", "config/paper/fedddpm.yaml"])
def test_every_output_log_and_benchmark_of_the_dag_is_in_the_table(
    tmp_path: Path, config: str
) -> None:
    """Each job's files match a template of feddiff.paths; its log and benchmark, its key."""
    outputs = [_pattern(t) for t in TEMPLATES.values()] + [
        _pattern(t) for t in paths.FEATURE_FIGURES
    ]
    keys = [v for k, v in vars(paths).items() if k.endswith("_KEY") and isinstance(v, str)]
    logs = [_pattern(paths.log("{rule}", key)) for key in keys] + [_pattern(paths.log("{rule}"))]
    benchmarks = [_pattern(paths.benchmark("{rule}", key)) for key in keys]
    rules = set()
    for job in _dry_run_jobs(tmp_path, REPO / config):
        rule = job["rule"][0]
        rules.add(rule)
        for path in job.get("output", []):
            assert any(p.fullmatch(path) for p in outputs), f"{rule}: {path} not in feddiff.paths"
        for path in job.get("log", []):
            assert any(p.fullmatch(path) for p in logs), f"{rule}: log {path}"
        for path in job.get("benchmark", []):
            assert any(p.fullmatch(path) for p in benchmarks), f"{rule}: benchmark {path}"
    assert {"prepare_data", "partition", "train", "report", "generate_auxiliary"} <= rules
