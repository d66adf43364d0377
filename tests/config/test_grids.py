"""Hyperparameter grids: a list-valued method key expands to one plain method per value.

The expected names and tags are written out here by hand, not produced by the code
under test, so a wrong product, order, name or tag fails.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from feddiff.config import ConfigError, expand_method_grids, grid_method_name
from feddiff.plan import expand_runs, validate_config
from tests.workflow.tiny import TINY, check, planned_jobs, snakemake, write_config


def _grid_config(**method: Any) -> dict[str, Any]:
    config = copy.deepcopy(TINY)
    config["methods"]["prox"] = {"strategy": "fedprox", **method}
    config["experiments"]["tiny"]["methods"] = ["fedavg", "prox"]
    return config


def test_two_keys_expand_to_their_product_with_readable_names_and_tags() -> None:
    config = copy.deepcopy(TINY)
    config["methods"]["moon"] = {"strategy": "moon", "temperature": [0.5, 0.2], "mu": [1.0, 5.0]}
    config["experiments"]["tiny"]["methods"] = ["moon", "fedavg"]
    validate_config(config)
    # the product in grid order (keys sorted, each key's values as written); fedavg untouched
    assert list(config["methods"]) == [
        "fedavg",
        "moon[mu=1.0,temperature=0.5]",
        "moon[mu=1.0,temperature=0.2]",
        "moon[mu=5.0,temperature=0.5]",
        "moon[mu=5.0,temperature=0.2]",
    ]
    assert config["experiments"]["tiny"]["methods"] == [
        "moon[mu=1.0,temperature=0.5]",
        "moon[mu=1.0,temperature=0.2]",
        "moon[mu=5.0,temperature=0.5]",
        "moon[mu=5.0,temperature=0.2]",
        "fedavg",
    ]
    assert config["methods"]["moon[mu=5.0,temperature=0.2]"] == {
        "strategy": "moon",
        "mu": 5.0,
        "temperature": 0.2,
        "projection_dim": 256,  # schema default, filled per combination
    }


def test_experiments_get_every_combination_and_each_is_its_own_run() -> None:
    config = validate_config(_grid_config(mu=[0.1, 0.01]))
    assert config["experiments"]["tiny"]["methods"] == ["fedavg", "prox[mu=0.1]", "prox[mu=0.01]"]
    runs = [r for r in expand_runs(config) if r.method.startswith("prox")]
    assert len(runs) == 2 * 2  # two partitions x two values x one seed
    assert {r.method_tag for r in runs} == {"fedprox_mu0.1", "fedprox_mu0.01"}
    assert len({r.run_dir for r in runs}) == 4


def test_a_list_in_one_key_only_keeps_the_other_keys_fixed() -> None:
    config = _grid_config(mu=0.5)
    config["methods"]["moon"] = {"strategy": "moon", "mu": 2.0, "temperature": [0.1, 0.3, 0.7]}
    config["experiments"]["tiny"]["methods"] = ["moon", "prox"]
    validate_config(config)
    moons = {name: m for name, m in config["methods"].items() if name.startswith("moon")}
    assert list(moons) == [
        "moon[temperature=0.1]",
        "moon[temperature=0.3]",
        "moon[temperature=0.7]",
    ]
    assert {m["mu"] for m in moons.values()} == {2.0}
    assert [m["temperature"] for m in moons.values()] == [0.1, 0.3, 0.7]
    assert config["methods"]["prox"] == {"strategy": "fedprox", "mu": 0.5}  # no list: unchanged


def test_grid_names_spell_values_as_the_config_does() -> None:
    # keys sorted; YAML spellings for booleans and null; floats as written
    name = grid_method_name(
        "m", {"ndcr": "kl", "lr": None, "self_supervised": True, "steps": 3, "mu": 0.001}
    )
    assert name == "m[lr=null,mu=0.001,ndcr=kl,self_supervised=true,steps=3]"


def test_expansion_is_idempotent_on_plain_methods() -> None:
    config = validate_config(_grid_config(mu=[0.1, 0.01]))
    before = copy.deepcopy(config)
    assert expand_method_grids(config) == before


@pytest.mark.parametrize(
    ("method", "message"),
    [
        (
            {"mu": ["big", 0.1]},
            r"methods\.prox\.mu \(grid value 'big'\): 'big' is not of type 'number'",
        ),
        ({"mu": [0.1, -1.0]}, r"methods\.prox\.mu \(grid value -1\.0\)"),
        ({"mu": []}, r"methods\.prox\.mu: an empty list"),
        ({"mu": [0.1, 0.1]}, r"methods\.prox\.mu: 0\.1 is listed twice"),
        ({"mu": [[0.1], 0.2]}, r"methods\.prox\.mu: grid values must be single values"),
        (
            {"mu": 0.1, "temperature": [0.1, 0.5]},
            r"methods\.prox\.temperature: not a hyperparameter of strategy 'fedprox'",
        ),
        (
            {"mu": [0.1, 0.2], "gamma": 3},
            r"methods\.prox\.gamma: not a hyperparameter of strategy 'fedprox'",
        ),
    ],
)
def test_bad_grids_name_the_method_and_key(method: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(_grid_config(**method))


def test_strategy_cannot_be_a_grid() -> None:
    config = copy.deepcopy(TINY)
    config["methods"]["two"] = {"strategy": ["fedavg", "fedprox"]}
    with pytest.raises(ConfigError, match=r"methods\.two\.strategy: cannot be a list"):
        validate_config(config)


def test_a_combination_clashing_with_a_written_method_is_refused() -> None:
    config = _grid_config(mu=[0.1, 0.01])
    config["methods"]["prox[mu=0.1]"] = {"strategy": "fedprox", "mu": 0.1}
    with pytest.raises(
        ConfigError,
        match=r"methods\.prox\[mu=0\.1\]: defined both directly and by the grid methods\.prox",
    ):
        validate_config(config)


def test_dry_run_plans_one_training_job_per_combination(tmp_path: Path) -> None:
    config = _grid_config(mu=[0.1, 0.01, 0.001])
    config["experiments"]["tiny"]["partitions"] = ["dir"]
    path = write_config(tmp_path / "grid.yaml", config)
    out = check(snakemake(tmp_path, "-n", f"--configfile={path}"))
    trains = sorted(w["mtag"] for rule, w in planned_jobs(out.stdout) if rule == "train")
    assert trains == ["fedavg", "fedprox_mu0.001", "fedprox_mu0.01", "fedprox_mu0.1"]


def test_committed_study_configs_stay_valid() -> None:
    """docs/feddifrc_study's configs are grids over real keys; keep them runnable."""
    from feddiff.config import REPO_ROOT
    from feddiff.plan import load_config

    study = load_config(REPO_ROOT / "docs" / "feddifrc_study" / "study.yaml")
    assert "form[tdcl=reference]" in study["experiments"]["study"]["methods"]
    features = load_config(REPO_ROOT / "docs" / "feddifrc_study" / "features.yaml")
    assert len(features["methods"]) == len(features["features"])  # one probe per entry
