"""feddiff.schema: one declaration per setting gives its JSON schema and its checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from feddiff.fl.settings import TrainSettings
from feddiff.fl.strategies import make_params
from feddiff.partition.schemes import check_partition_setting, partition_schema
from feddiff.schema import SettingError, build, dataclass_schema, setting


@dataclass(frozen=True)
class Inner:
    depth: int = setting(2, minimum=1)


@dataclass(frozen=True)
class Toy:
    name: str = setting(min_length=1, description="required: no default")
    rate: float = setting(0.5, exclusive_minimum=0, maximum=1)
    kind: Literal["a", "b"] = "a"
    mode: str = setting("x", enum=("x", "y"))
    flag: bool = False
    limit: int | None = setting(None, minimum=0)
    sizes: tuple[int, ...] = setting((1, 2), min_items=1, items={"minimum": 1})
    inner: Inner = field(default_factory=Inner)


def test_dataclass_schema_from_annotations_and_metadata() -> None:
    schema = dataclass_schema(Toy)
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["name"]
    props = schema["properties"]
    assert props["name"] == {
        "type": "string",
        "minLength": 1,
        "description": "required: no default",
    }
    assert props["rate"] == {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 1,
        "default": 0.5,
    }
    assert props["kind"] == {"enum": ["a", "b"], "default": "a"}
    assert props["mode"] == {"enum": ["x", "y"], "default": "x"}
    assert props["flag"] == {"type": "boolean", "default": False}
    assert props["limit"] == {"type": ["integer", "null"], "minimum": 0, "default": None}
    assert props["sizes"] == {
        "type": "array",
        "items": {"type": "integer", "minimum": 1},
        "minItems": 1,
        "default": [1, 2],
    }
    assert props["inner"]["default"] == {}
    assert props["inner"]["properties"]["depth"]["minimum"] == 1
    no_defaults = dataclass_schema(Toy, defaults=False)["properties"]
    assert not any("default" in p for p in no_defaults.values())


def test_build_constructs_with_nested_dataclasses_and_tuples() -> None:
    toy = build(Toy, {"name": "n", "sizes": [3], "inner": {"depth": 5}}, "toy")
    assert toy == Toy(name="n", sizes=(3,), inner=Inner(depth=5))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "n", "rat": 1}, r"toy\.rat: unknown key\(s\) \['rat'\]; known keys are \["),
        ({}, r"toy\.name is required"),
        ({"name": ""}, r"toy\.name must have at least 1 character"),
        ({"name": "n", "rate": 0}, r"toy\.rate must be > 0, got 0"),
        ({"name": "n", "rate": 1.5}, r"toy\.rate must be <= 1, got 1\.5"),
        ({"name": "n", "rate": float("nan")}, r"toy\.rate must be a number, got nan"),
        ({"name": "n", "rate": "high"}, r"toy\.rate must be of type number, got 'high'"),
        ({"name": "n", "kind": "c"}, r"toy\.kind must be one of \['a', 'b'\], got 'c'"),
        ({"name": "n", "flag": 1}, r"toy\.flag must be of type boolean"),
        ({"name": "n", "limit": -1}, r"toy\.limit must be >= 0"),
        ({"name": "n", "sizes": [1, 0]}, r"toy\.sizes\.1 must be >= 1, got 0"),
        ({"name": "n", "inner": {"depth": 0}}, r"toy\.inner\.depth must be >= 1, got 0"),
        ({"name": "n", "inner": {"deep": 1}}, r"toy\.inner\.deep: unknown key"),
    ],
)
def test_build_errors_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(SettingError, match=message):
        build(Toy, data, "toy")


def test_strategy_params_are_checked_by_their_declarations() -> None:
    assert make_params("fedprox", {"mu": 0.0}).mu == 0.0
    with pytest.raises(ValueError, match=r"method\.mu must be >= 0, got -0\.5"):
        make_params("fedprox", {"mu": -0.5})
    with pytest.raises(ValueError, match=r"method\.server_momentum must be < 1, got 1\.0"):
        make_params("fedavgm", {"server_momentum": 1.0})
    with pytest.raises(ValueError, match=r"method\.mu: unknown key"):
        make_params("fedavg", {"mu": 1.0})
    with pytest.raises(ValueError, match=r"method\.features is required"):
        make_params("feddifrc", {})
    # a cross-value rule stays in the dataclass's check()
    with pytest.raises(ValueError, match=r"method\.layers must be 'all' or distinct"):
        make_params("feddifrc", {"features": "f", "layers": "1+1"})


def test_training_settings_checked_by_their_declarations() -> None:
    assert TrainSettings.from_dict({"vectorize": False}).vectorize == "off"  # YAML's bare off
    with pytest.raises(ValueError, match=r"training\.momentum must be < 1, got 1"):
        TrainSettings.from_dict({"momentum": 1})
    with pytest.raises(ValueError, match=r"training\.augment\.crop_padding must be >= 0"):
        TrainSettings.from_dict({"augment": {"crop_padding": -1}})
    with pytest.raises(ValueError, match=r"training\.roundz: unknown key"):
        TrainSettings.from_dict({"roundz": 3})


@pytest.mark.parametrize(
    ("setting_", "message"),
    [
        ({"scheme": "iid", "num_clients": 3, "alpha": 0.5}, r"partitions\.p\.alpha: unknown key"),
        ({"scheme": "dirichlet", "num_clients": 3}, r"partitions\.p\.alpha is required"),
        ({"scheme": "quantity", "num_clients": 3, "alpha": 0}, r"partitions\.p\.alpha must be > 0"),
        ({"scheme": "pathological", "num_clients": 0}, r"partitions\.p\.num_clients must be >= 1"),
        (
            {"scheme": "pathological", "num_clients": 2, "assignment": "shards"},
            r"partitions\.p\.assignment must be one of \['random', 'cyclic'\]",
        ),
        (
            {"scheme": "domain", "num_clients": 2, "clients_per_domain": {}},
            r"partitions\.p\.clients_per_domain",
        ),
        ({"scheme": "shards", "num_clients": 2}, r"partitions\.p\.scheme: unknown scheme 'shards'"),
    ],
)
def test_partition_settings_checked_per_scheme(setting_: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_partition_setting("p", setting_)


def test_partition_settings_accept_each_schemes_own_keys() -> None:
    check_partition_setting("a", {"scheme": "iid", "num_clients": 4, "imb_factor": 0.1})
    check_partition_setting("b", {"scheme": "dirichlet_min", "num_clients": 4, "alpha": 0.3})
    check_partition_setting(
        "c", {"scheme": "domain", "num_clients": 4, "clients_per_domain": {"x": 1, "y": 3}}
    )
    # the generated config block has no defaults: filling one would change partition tags
    assert not _keys_named("default", partition_schema())


def _keys_named(name: str, node: object) -> list[object]:
    if isinstance(node, dict):
        found = [node[name]] if name in node else []
        return found + [x for v in node.values() for x in _keys_named(name, v)]
    if isinstance(node, list):
        return [x for v in node for x in _keys_named(name, v)]
    return []


def test_model_names_are_the_model_registrys() -> None:
    """``training.model`` is declared torch-free; the registry it names needs torch."""
    from feddiff.fl.settings import MODELS
    from feddiff.models import MODELS as REGISTRY

    assert set(MODELS) == set(REGISTRY)
