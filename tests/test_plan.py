"""The plan (feddiff.plan): lookups round-trip, sections get what they refer to, no cycles."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import grimp
import pytest
import yaml

from feddiff import paths
from feddiff.config import DEFAULT_CONFIG, ConfigError, expand_method_grids, validate_schema
from feddiff.plan import Plan, build_plan, load_config


def _parse(template: str, path: str) -> dict[str, str]:
    """The wildcards of ``path`` under ``template`` (independent of feddiff.paths.fill)."""
    names = re.findall(r"\{(\w+)\}", template)
    regex = re.escape(template)
    for name in names:
        regex = regex.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^/]+)", 1)
    match = re.fullmatch(regex, path)
    assert match, (template, path)
    return match.groupdict()


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(load_config(DEFAULT_CONFIG))


def test_every_spec_is_found_again_from_the_wildcards_of_its_path(plan: Plan) -> None:
    """A rule sees only wildcards parsed from a path; they must lead back to the same spec."""
    assert plan.runs and plan.diffusion_runs and plan.features and plan.auxiliary
    for run in plan.runs:
        wildcards = SimpleNamespace(**_parse(paths.RUN_METRICS, run.path(paths.RUN_METRICS)))
        found = plan.run(wildcards)  # experiments may share a run: same directory, settings
        assert (found.run_dir, found.settings()) == (run.run_dir, run.settings())
        assert plan.partition(wildcards) == (run.partition, run.partition_setting)
        assert run.run_dir == f"results/runs/{run.dataset}/{wildcards.ptag}/" + (
            f"{wildcards.mtag}/{wildcards.ttag}/seed{run.seed}"
        )
    for drun in plan.diffusion_runs:
        wildcards = SimpleNamespace(**_parse(paths.DIFFUSION_FID, drun.path(paths.DIFFUSION_FID)))
        assert plan.diffusion_run(wildcards) is drun
        assert wildcards.mode == drun.method  # the calibration rides in the mode wildcard
    for target in plan.features:
        assert plan.feature(_parse(paths.FEATURES, target.path)) is target
    for aux in plan.auxiliary:
        assert plan.auxiliary_set(_parse(paths.AUXILIARY, aux.path)) is aux
        assert aux.partition == paths.fill(paths.PARTITION, _parse(paths.AUXILIARY, aux.path))


def test_each_section_points_at_the_files_of_the_sections_it_uses(plan: Plan) -> None:
    diffusion_dirs = {run.run_dir for run in plan.diffusion_runs}
    for target in plan.features:
        if target.model_input is not None:  # the federated DDPM of the diffusion grid
            run_dir = target.model_input.rsplit("/", 1)[0]
            assert run_dir in diffusion_dirs
            assert target.settings["model"] == f"{run_dir}/model"
    feature_files = {target.path for target in plan.features}
    aux_files = {target.path for target in plan.auxiliary}
    used = set()
    for run in plan.runs:
        strategy = run.method_setting["strategy"]
        if strategy == "feddifrc":
            assert run.method_setting["features"] in feature_files
        if strategy == "fedddpm":
            aux = run.method_setting["auxiliary"]
            assert aux in aux_files
            # the set of this run's own partition and seed
            assert f"/{run.partition_tag}/seed{run.seed}/" in aux
            used.add(aux)
    for drun in plan.diffusion_runs:
        if drun.calibration_setting is not None:
            used.add(drun.calibration_setting["auxiliary"])
    assert used == aux_files  # no set is made that nobody uses, none is missing


def _raw() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CONFIG.read_text())


def _checked(config: dict[str, Any]) -> dict[str, Any]:
    return validate_schema(expand_method_grids(config))


def test_a_features_entry_naming_a_ddpm_run_outside_the_grid_is_an_error() -> None:
    config = _raw()
    name, entry = next((n, e) for n, e in config["features"].items() if "diffusion" in e)
    entry["diffusion"] = {**entry["diffusion"], "seed": 99}
    with pytest.raises(ConfigError, match=rf"features\.{name}\.diffusion: .*seed=99"):
        build_plan(_checked(config))


def test_an_unknown_auxiliary_entry_is_named_by_its_method() -> None:
    config = _raw()
    method = next(m for m, s in config["methods"].items() if s["strategy"] == "fedddpm")
    config["methods"][method]["auxiliary"] = "nope"
    with pytest.raises(ConfigError, match=rf"methods\.{re.escape(method)}\.auxiliary: 'nope'"):
        build_plan(_checked(config))


def test_an_experiment_that_shares_nothing_with_the_diffusion_grid_gets_no_ddpm_input() -> None:
    """Only the features that some FedDifRC run uses become targets (none here)."""
    config = _raw()
    config["experiments"] = {
        name: exp
        for name, exp in config["experiments"].items()
        if all(
            config["methods"][m]["strategy"] not in ("feddifrc", "fedddpm") for m in exp["methods"]
        )
    }
    assert config["experiments"]
    plan = build_plan(_checked(copy.deepcopy(config)))
    assert plan.features == []
    assert all(run.method_setting["strategy"] not in ("feddifrc", "fedddpm") for run in plan.runs)
    # calibrated DDPM runs still need their sets, classifier runs none
    assert {a.path for a in plan.auxiliary} == {
        d.calibration_setting["auxiliary"] for d in plan.diffusion_runs if d.calibration_setting
    }


def test_the_package_has_no_import_cycle() -> None:
    """Function-level imports count: a deferred import must not hide a cycle."""
    graph = grimp.build_graph("feddiff", cache_dir=None)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for dep in sorted(edges.get(module, ())):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep] if dep in stack else [module, dep]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if dep not in state:
                visit(dep, [*stack, dep])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_building_every_plan_loads_no_heavy_library() -> None:
    """What import-linter cannot see: a submodule import runs its package's __init__.

    (``feddiff.report.paper`` once loaded matplotlib through ``feddiff/report/__init__``.)
    """
    configs = [DEFAULT_CONFIG, *sorted((DEFAULT_CONFIG.parent / "paper").glob("*.yaml"))]
    code = (
        "import sys\n"
        "from feddiff.plan import build_plan, load_config\n"
        f"for path in {[str(c) for c in configs]!r}:\n"
        "    build_plan(load_config(path))\n"
        "heavy = ('torch', 'torchvision', 'diffusers', 'transformers', 'matplotlib')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
