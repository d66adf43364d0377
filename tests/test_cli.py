"""Every stage runs by hand: ``python -m feddiff <stage> --help`` and clear errors."""

import json
import subprocess
import sys

import pytest

from feddiff.cli import build_parser, main

STAGES = ["prepare", "partition", "train", "report", "paper-table", "sample-figure", "validate"]


@pytest.mark.parametrize("stage", STAGES)
def test_stage_help(stage: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([stage, "--help"])
    assert exc.value.code == 0
    assert f"usage: feddiff {stage}" in capsys.readouterr().out


def test_module_entry_point_lists_stages() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "feddiff", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    for stage in STAGES:
        assert stage in out.stdout


def test_bad_input_is_one_clear_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "missing.h5"
    code = main(
        [
            "partition",
            "--data",
            str(missing),
            "--setting",
            '{"scheme": "iid", "num_clients": 2}',
            "--seed",
            "0",
            "--out-dir",
            str(tmp_path / "p"),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "feddiff partition: error:" in err and str(missing) in err
    assert not (tmp_path / "p" / "partition.npz").exists()


def test_validate_lists_runs(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["validate", "--list"]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "results/runs/digits/" in out


def test_parser_rejects_non_json_non_file() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["partition", "--data", "x", "--setting", "nope", "--seed", "0", "--out-dir", "y"]
        )


def test_settings_file_json_numbers_stay_numbers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A run.json passed as --settings: JSON writes 1e-05, which YAML 1.1 would read as a string."""
    from feddiff.cli import _json_arg

    path = tmp_path / "run.json"
    path.write_text(json.dumps({"training": {"weight_decay": 1e-05, "lr": 0.01}}))
    assert _json_arg(str(path))["training"]["weight_decay"] == 1e-05
    yaml_path = tmp_path / "settings.yaml"
    yaml_path.write_text("training:\n  weight_decay: 1.0e-5\n")
    assert _json_arg(str(yaml_path))["training"]["weight_decay"] == 1e-05
