"""A job imports only what its stage uses.

Building the DAG (the config checks and every expansion ``rules/common.smk`` calls),
``python -m feddiff validate`` and ``python -m feddiff <stage> --help`` import no torch;
a classifier ``train`` job imports neither diffusers nor transformers (nor matplotlib,
scikit-learn or torch's compiler, which cost seconds a job). Each check runs
in a fresh interpreter and reads its ``sys.modules`` at the end, so an import added
anywhere on the path (a top-level ``import torch`` in ``feddiff/config.py``, a strategy
module the registry imports eagerly) fails it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from feddiff.config import DEFAULT_CONFIG
from feddiff.fl.strategies import STRATEGIES

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [DEFAULT_CONFIG, *sorted((DEFAULT_CONFIG.parent / "paper").glob("*.yaml"))]
NO_TORCH = ("torch", "torchvision", "diffusers", "transformers")
NO_DIFFUSERS = ("diffusers", "transformers")
#: What a classifier train job must not load: the generative stack, plotting, scikit-learn,
#: and torch's compiler (``torch._dynamo`` with sympy and triton, ~1 s a job;
#: feddiff.utils.eager_optim keeps torch.optim from importing it).
TRAIN_JOB_FREE = (*NO_DIFFUSERS, "matplotlib", "sklearn", "torch._dynamo", "sympy", "triton")


def run_probe(code: str) -> Any:
    """Run ``code`` in a fresh interpreter; what it printed as ``RESULT=<json>``."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT=")][-1]
    return json.loads(line.removeprefix("RESULT="))


def loaded_after(code: str, watch: tuple[str, ...]) -> list[str]:
    """Run ``code`` in a fresh interpreter; the modules of ``watch`` it left imported."""
    return list(
        run_probe(
            textwrap.dedent(code)
            + textwrap.dedent(f"""
        import json as _json, sys as _sys
        print("RESULT=" + _json.dumps(sorted(m for m in {list(watch)!r} if m in _sys.modules)))
        """)
        )
    )


def test_probe_sees_an_import_made_deep_inside_the_package() -> None:
    """The probe itself: the engine imports torch, and the probe must report it."""
    assert loaded_after("import feddiff.fl.engine", NO_TORCH) == ["torch"]


def test_building_the_dag_imports_no_torch() -> None:
    """What rules/common.smk runs, for the default config and every paper config."""
    code = f"""
        from feddiff.plan import build_plan, load_config

        for path in {[str(p) for p in CONFIGS]!r}:
            config = load_config(path)  # schema and check_semantics
            plan = build_plan(config)
            assert plan.runs, path
            if plan.diffusion_runs:
                plan.classifier_settings
        """
    assert loaded_after(code, NO_TORCH) == []


def test_strategy_hyperparameters_are_checked_without_torch() -> None:
    """A bad hyperparameter is still caught at DAG time, from the params modules alone."""
    code = """
        from feddiff.config import ConfigError, DEFAULT_CONFIG
        from feddiff.plan import check_semantics
        import yaml

        config = yaml.safe_load(open(DEFAULT_CONFIG))
        config["methods"]["bad"] = {"strategy": "fedprox", "mu": -1.0}
        config["experiments"]["main"]["methods"].append("bad")
        try:
            check_semantics(config)
        except ConfigError as exc:
            assert "methods.bad" in str(exc) and "mu" in str(exc), exc
        else:
            raise AssertionError("a negative FedProx mu passed the checks")
        """
    assert loaded_after(code, NO_TORCH) == []


def test_validate_and_every_stage_help_import_no_torch() -> None:
    code = f"""
        import contextlib, io
        from feddiff.cli import build_parser, main

        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["validate", "--config", {str(DEFAULT_CONFIG)!r}, "--list"]) == 0
            stages = build_parser()._subparsers._group_actions[0].choices
            for stage in stages:
                try:
                    main([stage, "--help"])
                except SystemExit as exc:
                    assert exc.code == 0, stage
        """
    assert loaded_after(code, NO_TORCH) == []


def test_every_registered_strategy_resolves_without_diffusers() -> None:
    """Each registry row loads its class from its module and builds it; no classifier
    strategy (FedDDPM's calibration included) pulls in diffusers or transformers."""
    code = f"""
        import json, sys
        from feddiff.fl.strategies import STRATEGIES
        from feddiff.fl.strategy import Strategy, build_strategy, strategy_class

        required = {{"fedddpm": {{"auxiliary": "aux"}}, "feddifrc": {{"features": "ddpm"}}}}
        heavy = {{}}
        for name, entry in sorted(STRATEGIES.items()):
            cls = strategy_class(name)
            assert issubclass(cls, Strategy) and cls.__module__ == entry.module, cls
            assert cls.name == name and cls.Params is entry.params, name
            method = {{"strategy": name, **required.get(name, {{}})}}
            strategy = build_strategy(method, num_clients=3, num_classes=4)
            assert isinstance(strategy, cls) and isinstance(strategy.params, entry.params), name
            heavy[name] = sorted(m for m in {NO_DIFFUSERS!r} if m in sys.modules)
        print("RESULT=" + json.dumps(heavy))
        """
    heavy = run_probe(code)
    assert set(heavy) == set(STRATEGIES)  # every name resolved
    assert {name: mods for name, mods in heavy.items() if mods} == {}  # the first offender is named


def test_a_fedavg_train_job_imports_no_diffusers(tmp_path: Path) -> None:
    """``python -m feddiff train`` end to end (one round on digits), then its modules:
    none of :data:`TRAIN_JOB_FREE`."""
    from feddiff.data.prepare import prepare_dataset
    from feddiff.stages import make_partition

    data = tmp_path / "digits.h5"
    prepare_dataset({"source": "digits", "test_fraction": 0.25, "split_seed": 0}, data)
    make_partition(data, {"scheme": "iid", "num_clients": 3}, 0, tmp_path / "part")
    settings = {
        "dataset": "digits",
        "partition": {"scheme": "iid", "num_clients": 3},
        "method": {"strategy": "fedavg"},
        "training": {
            "rounds": 1,
            "clients_per_round": 2,
            "batch_size": 64,
            "device": "cpu",
            "vectorize": "off",
        },
        "seed": 0,
    }
    argv = [
        "train",
        "--data",
        str(data),
        "--partition",
        str(tmp_path / "part" / "partition.npz"),
        "--settings",
        json.dumps(settings),
        "--out-dir",
        str(tmp_path / "run"),
        "--threads",
        "1",
        "--no-progress",
    ]
    code = f"""
        import contextlib, io
        from feddiff.cli import main

        with contextlib.redirect_stdout(io.StringIO()):
            assert main({argv!r}) == 0
        """
    assert loaded_after(code, TRAIN_JOB_FREE) == []
    assert (tmp_path / "run" / "metrics.csv").exists()


def test_register_accepts_only_the_module_its_row_names() -> None:
    """A class cannot claim a registry name from elsewhere, nor a name without a row."""
    from feddiff.fl.strategy import Strategy, register

    with pytest.raises(ValueError, match=r"registered to feddiff\.fl\.strategies\.fedprox"):
        register("fedprox")(type("Impostor", (Strategy,), {}))
    with pytest.raises(ValueError, match=r"unknown strategy 'nope'"):
        register("nope")(type("Nope", (Strategy,), {}))
