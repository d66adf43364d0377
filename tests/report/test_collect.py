"""Loading run directories, validation errors, per-run summaries, grouping."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from feddiff.report import RunFormatError, load_run, load_runs, summarize_run
from feddiff.report.collect import group_runs, resolve_order

from .conftest import MakeRun, curve


def test_load_run_reads_labels_and_metrics(make_run: MakeRun) -> None:
    d = make_run("r", [0.1, 0.2, 0.3], dataset="mnist", partition="dir0.5", seed=7)
    run = load_run(d)
    assert (run.experiment, run.dataset, run.partition, run.method, run.seed) == (
        "exp_a",
        "mnist",
        "dir0.5",
        "fedavg",
        7,
    )
    assert run.run_dir == d
    assert run.metrics["round"].tolist() == [1, 2, 3]
    assert run.metrics["test_acc"].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert "some_future_column" in run.metrics.columns  # unknown columns are tolerated


def test_load_run_sorts_rounds(make_run: MakeRun) -> None:
    d = make_run("r", [0.1, 0.2, 0.3])
    df = pd.read_csv(d / "metrics.csv").iloc[[2, 0, 1]]
    df.to_csv(d / "metrics.csv", index=False)
    run = load_run(d)
    assert run.metrics["round"].tolist() == [1, 2, 3]
    assert run.metrics["test_acc"].tolist() == pytest.approx([0.1, 0.2, 0.3])


def test_load_runs_keeps_order(grid_dirs: list[Path]) -> None:
    runs = load_runs(reversed(grid_dirs))
    assert [r.run_dir for r in runs] == list(reversed(grid_dirs))


@pytest.mark.parametrize("missing", ["metrics.csv", "run.json"])
def test_missing_file_is_named(make_run: MakeRun, missing: str) -> None:
    d = make_run("r", [0.5])
    (d / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing) as info:
        load_run(d)
    assert str(d / missing) in str(info.value)


def test_missing_run_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        load_run(tmp_path / "nope")


def _set_metrics(d: Path, text: str) -> None:
    (d / "metrics.csv").write_text(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "cannot parse"),
        ("round,test_loss\n1,0.5\n", "test_acc"),
        ("round,test_acc\n", "no rounds"),
        ("round,test_acc\n1,0.5\n2,0.6\n4,0.7\n", r"1\.\.3"),
        ("round,test_acc\n1,0.5\n1,0.6\n", r"1\.\.2"),
        ("round,test_acc\n1,0.5\n2.5,0.6\n", "integers"),
        ("round,test_acc\n1,85.0\n", r"\[0, 1\]"),
        ("round,test_acc\n1,\n", r"\[0, 1\]"),
        ("round,test_acc\n1,abc\n", r"\[0, 1\]"),
    ],
)
def test_malformed_metrics(make_run: MakeRun, text: str, why: str) -> None:
    d = make_run("r", [0.5])
    _set_metrics(d, text)
    with pytest.raises(RunFormatError, match=why) as info:
        load_run(d)
    assert str(d / "metrics.csv") in str(info.value)


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ("{not json", "invalid JSON"),
        ("[]", "labels"),
        (json.dumps({"config": {}}), "labels"),
        (
            json.dumps(
                {"labels": {"experiment": "e", "dataset": "d", "partition": "p", "method": "m"}}
            ),
            "seed",
        ),
        (
            json.dumps(
                {
                    "labels": {
                        "experiment": "e",
                        "dataset": "d",
                        "partition": "p",
                        "method": "m",
                        "seed": "1",
                    }
                }
            ),
            "integer",
        ),
        (
            json.dumps(
                {
                    "labels": {
                        "experiment": "e",
                        "dataset": "",
                        "partition": "p",
                        "method": "m",
                        "seed": 1,
                    }
                }
            ),
            "dataset",
        ),
    ],
)
def test_malformed_run_json(make_run: MakeRun, doc: str, why: str) -> None:
    d = make_run("r", [0.5])
    (d / "run.json").write_text(doc)
    with pytest.raises(RunFormatError, match=why) as info:
        load_run(d)
    assert str(d / "run.json") in str(info.value)


def _metrics(accs: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"round": range(1, len(accs) + 1), "test_acc": accs})


def test_summarize_run_known_curve() -> None:
    s = summarize_run(_metrics(curve("fedavg", "iid", 1)), last_k=5)
    assert s["final_acc"] == pytest.approx(0.85)
    assert s["last_k_mean"] == pytest.approx(0.85 - 0.028)
    assert s["best_acc"] == pytest.approx(0.87)
    assert s["best_round"] == 4


def test_summarize_run_fewer_rounds_than_k_uses_all() -> None:
    s = summarize_run(_metrics([0.2, 0.4, 0.9]), last_k=5)
    assert s["last_k_mean"] == pytest.approx(0.5)
    assert s["final_acc"] == pytest.approx(0.9)


def test_summarize_run_unsorted_input_and_ties() -> None:
    m = _metrics([0.3, 0.6, 0.6, 0.5]).iloc[::-1]
    s = summarize_run(m, last_k=2)
    assert s["final_acc"] == pytest.approx(0.5)  # round 4, not the first row given
    assert s["last_k_mean"] == pytest.approx(0.55)
    assert s["best_round"] == 2  # first round reaching the maximum


@pytest.mark.parametrize("k", [0, -1])
def test_summarize_run_rejects_bad_k(k: int) -> None:
    with pytest.raises(ValueError, match="last_k"):
        summarize_run(_metrics([0.5]), last_k=k)


def test_summarize_run_rejects_empty() -> None:
    with pytest.raises(ValueError, match="no rounds"):
        summarize_run(_metrics([]))


def test_resolve_order() -> None:
    seen = ["b", "a", "b", "c"]
    assert resolve_order(seen) == ["b", "a", "c"]
    assert resolve_order(seen, ["c", "a", "b"]) == ["c", "a", "b"]
    # unknown names dropped, unlisted names appended in first-appearance order
    assert resolve_order(seen, ["zzz", "c"]) == ["c", "b", "a"]


def test_group_runs_rejects_duplicate_seed(make_run: MakeRun) -> None:
    runs = load_runs([make_run("a", [0.5], seed=1), make_run("b", [0.6], seed=1)])
    with pytest.raises(ValueError, match="more than once"):
        group_runs(runs)


def test_group_runs_rejects_mixed_round_counts(make_run: MakeRun) -> None:
    runs = load_runs([make_run("a", [0.5], seed=0), make_run("b", [0.5, 0.6], seed=1)])
    with pytest.raises(ValueError, match="different round counts"):
        group_runs(runs)


def test_group_runs_groups_grid(grid_runs: list) -> None:
    groups = group_runs(grid_runs)
    assert len(groups) == 4
    assert sorted(r.seed for r in groups[("exp_a", "cifar10", "fed_prox", "dir0.5")]) == [0, 1, 2]


def test_load_run_labels_override_those_in_run_json(tmp_path: Path) -> None:
    """One cached run can serve several experiments; the caller's labels win."""
    import json

    from feddiff.report.collect import load_run

    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "metrics.csv").write_text("round,test_acc\n1,0.5\n2,0.75\n")
    stored = {"experiment": "a", "dataset": "d", "partition": "p", "method": "m", "seed": 0}
    (run_dir / "run.json").write_text(json.dumps({"labels": stored}))
    assert load_run(run_dir).experiment == "a"
    run = load_run(run_dir, labels={**stored, "experiment": "b", "method": "fedavg"})
    assert (run.experiment, run.method, run.partition) == ("b", "fedavg", "p")
