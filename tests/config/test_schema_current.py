"""The committed config schema is the one the settings dataclasses generate."""

from __future__ import annotations

import pytest

from feddiff.cli import main
from feddiff.config_schema import SCHEMA_PATH, render


def test_committed_schema_is_generated() -> None:
    assert SCHEMA_PATH.read_text() == render(), "run: python -m feddiff schema"


def test_schema_check_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--check"]) == 0
    assert "is current" in capsys.readouterr().out
