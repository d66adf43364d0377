"""The extraction benchmark's CPU smoke mode runs and reports early stopping's effect."""

from __future__ import annotations

import json
import runpy
import sys

import pytest

from tests.conftest import REPO


def test_benchmark_smoke(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    out_json = tmp_path / "fe.json"
    monkeypatch.setattr(
        sys, "argv", ["feature_extraction.py", "--smoke", "--prompts", "3", "--out", str(out_json)]
    )
    runpy.run_path(str(REPO / "benchmarks" / "feature_extraction.py"), run_name="__main__")
    out = capsys.readouterr().out
    result = json.loads(out[out.index("{") :])
    assert result["smoke"] and result["device"] == "cpu" and result["prompts"] == 3
    assert result["unet_rows_per_second"] > 0 and result["seconds_per_step_full_forward"] > 0
    assert result["peak_memory_mib_early_stop"] > 0 and result["peak_memory_mib_full_forward"] > 0
    assert json.loads(out_json.read_text())["date"] == result["date"]
    md = out_json.with_suffix(".md").read_text()
    assert "stop after the last needed block" in md and "full UNet forward" in md
