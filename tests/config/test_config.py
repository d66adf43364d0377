"""Config validation (schema and semantics), grid expansion, path tags."""

import copy
from typing import Any

import pytest
import yaml

from feddiff.config import DEFAULT_CONFIG, SCHEMA_PATH, ConfigError
from feddiff.plan import expand_runs, load_config, validate_config
from feddiff.tags import method_tag, partition_tag


@pytest.fixture
def raw() -> dict[str, Any]:
    with open(DEFAULT_CONFIG) as fh:
        return yaml.safe_load(fh)


def test_default_config_is_valid_and_expands(raw: dict[str, Any]) -> None:
    config = validate_config(copy.deepcopy(raw))
    runs = expand_runs(config)
    for name, exp in raw["experiments"].items():
        mine = [r for r in runs if r.experiment == name]
        expected = (
            len(exp["datasets"]) * len(exp["partitions"]) * len(exp["methods"]) * len(exp["seeds"])
        )
        assert len(mine) == expected
        assert len({r.run_dir for r in mine}) == expected  # no two runs of a grid share a directory
    # a run two experiments both list (FedAvg beside FedDDPM) is one directory, i.e. one job
    by_dir = {}
    for r in runs:
        assert by_dir.setdefault(r.run_dir, r.settings()) == r.settings()


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda c: c["training"].__setitem__("roundz", 3), "roundz"),
        (lambda c: c["training"].__setitem__("rounds", "ten"), "training.rounds"),
        (lambda c: c["training"].__setitem__("lr", -1.0), "training.lr"),
        (lambda c: c["partitions"]["dir0.5"].__setitem__("alpha", 0), "partitions.dir0.5.alpha"),
        (
            lambda c: c["partitions"]["nid2"].__setitem__("num_clients", 0),
            "partitions.nid2.num_clients",
        ),
        (
            lambda c: c["partitions"]["iid"].__setitem__("imb_factor", 1.5),
            "partitions.iid.imb_factor",
        ),
        (
            lambda c: c["datasets"]["digits"].__setitem__("source", "imagenet"),
            "datasets.digits.source",
        ),
        (lambda c: c.__setitem__("unknown_top", 1), "unknown_top"),
    ],
)
def test_schema_errors_name_the_key(raw: dict[str, Any], mutate: Any, key: str) -> None:
    mutate(raw)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_config(raw)


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (
            lambda c: c["experiments"]["main"]["partitions"].append("nope"),
            "experiments.main.partitions",
        ),
        (lambda c: c["partitions"]["iid"].__setitem__("alpha", 0.5), "partitions.iid.alpha"),
        (
            lambda c: c["partitions"].__setitem__("d", {"scheme": "dirichlet", "num_clients": 3}),
            "partitions.d.alpha",
        ),
        (lambda c: c["methods"].__setitem__("x", {"strategy": "fedavg", "mu": 1.0}), "methods.x"),
        (lambda c: c["methods"].__setitem__("y", {"strategy": "nosuch"}), "methods.y"),
        (lambda c: c["training"].__setitem__("clients_per_round", 50), "clients_per_round"),
        (lambda c: c["datasets"].__setitem__("f", {"source": "imagefolder"}), "datasets.f.root"),
    ],
)
def test_semantic_errors_name_the_key(raw: dict[str, Any], mutate: Any, key: str) -> None:
    mutate(raw)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_config(raw)


def test_snakemake_validate_uses_the_same_schema(raw: dict[str, Any]) -> None:
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    good = copy.deepcopy(raw)
    validate(good, str(SCHEMA_PATH))
    assert good["resources_dir"] == "resources"  # defaults filled in
    raw["training"]["rounds"] = 0
    with pytest.raises(WorkflowError, match="rounds"):
        validate(raw, str(SCHEMA_PATH))


def test_tags_encode_parameters() -> None:
    a = partition_tag({"scheme": "dirichlet", "num_clients": 10, "alpha": 0.5})
    b = partition_tag({"scheme": "dirichlet", "num_clients": 10, "alpha": 0.05})
    assert a == "dirichlet_alpha0.5_num_clients10" and a != b
    assert method_tag({"strategy": "fedavg"}) == "fedavg"


def test_training_override_changes_the_run_path(raw: dict[str, Any]) -> None:
    raw["experiments"]["long"] = copy.deepcopy(raw["experiments"]["main"])
    raw["experiments"]["long"]["training"] = {"rounds": 40}
    runs = expand_runs(validate_config(raw))
    main = {r.run_dir for r in runs if r.experiment == "main"}
    long = {r.run_dir for r in runs if r.experiment == "long"}
    assert not main & long
    assert all("-R40-" in d for d in long)


def test_missing_config_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_method_defaults_are_filled_and_tagged(raw: dict[str, Any]) -> None:
    raw["methods"]["prox"] = {"strategy": "fedprox"}
    config = validate_config(raw)
    assert config["methods"]["prox"] == {"strategy": "fedprox", "mu": 0.01}
    assert method_tag(config["methods"]["prox"]) == "fedprox_mu0.01"


@pytest.mark.parametrize(
    "path", sorted((DEFAULT_CONFIG.parent / "paper").glob("*.yaml")), ids=lambda p: p.name
)
def test_paper_configs_are_valid(path) -> None:  # type: ignore[no-untyped-def]
    config = load_config(path)
    assert expand_runs(config)


def test_pathological_tag_spells_out_its_assignment() -> None:
    """The default changed (cyclic → random): a tag without it would name old cyclic partitions."""
    base = {"scheme": "pathological", "num_clients": 10, "classes_per_client": 2}
    tag = partition_tag(base)
    assert tag == "pathological_assignmentrandom_classes_per_client2_num_clients10"
    assert partition_tag({**base, "assignment": "random"}) == tag
    assert partition_tag({**base, "assignment": "cyclic"}) != tag
    assert (
        partition_tag({"scheme": "iid", "num_clients": 10}) == "iid_num_clients10"
    )  # others unchanged
