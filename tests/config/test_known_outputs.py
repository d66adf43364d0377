"""Every output path and job-parameter JSON the committed configs produce stays the same.

``known_outputs.json`` was written from the configs in ``config/`` at commit 2039941 (before
the settings, plan and path-table refactoring of issue 13). A path is a job's output and its
settings JSON is a rule ``params:`` value: if either changed, Snakemake would rerun (or
never find) results users already have. Regenerate only for a deliberate change of tags,
and say so in the commit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from feddiff.config import REPO_ROOT
from feddiff.plan import build_plan, load_config

KNOWN = json.loads((Path(__file__).with_name("known_outputs.json")).read_text())


def current_outputs(config_path: Path) -> dict[str, Any]:
    config = load_config(config_path)
    plan = build_plan(config)
    out: dict[str, Any] = {
        "runs": {r.run_dir: json.dumps(r.settings(), sort_keys=True) for r in plan.runs},
        "features": {t.path: json.dumps(t.settings, sort_keys=True) for t in plan.features},
        "diffusion": {
            r.run_dir: json.dumps(r.settings(), sort_keys=True) for r in plan.diffusion_runs
        },
        "auxiliary": {t.path: json.dumps(t.settings(), sort_keys=True) for t in plan.auxiliary},
    }
    if config.get("diffusion"):
        out["classifier"] = json.dumps(plan.classifier_settings, sort_keys=True)
    return out


@pytest.mark.parametrize("config_file", sorted(KNOWN))
def test_outputs_and_settings_unchanged(config_file: str) -> None:
    current = current_outputs(REPO_ROOT / config_file)
    known = KNOWN[config_file]
    assert sorted(current) == sorted(known)
    for section, expected in known.items():
        got = current[section]
        if isinstance(expected, dict):
            assert sorted(got) == sorted(expected), f"{config_file}: {section} paths changed"
            for path, settings in expected.items():
                assert got[path] == settings, f"{config_file}: {path}: settings changed"
        else:
            assert got == expected, f"{config_file}: {section} changed"
