"""The diffusion config section: checks, grid and paths."""

import copy
from typing import Any

import pytest
import yaml

from feddiff.config import DEFAULT_CONFIG, ConfigError
from feddiff.diffusion.config import expand_diffusion_runs
from feddiff.plan import validate_config
from feddiff.tags import diffusion_tag


@pytest.fixture
def raw() -> dict[str, Any]:
    with open(DEFAULT_CONFIG) as fh:
        return yaml.safe_load(fh)


def test_default_config_has_the_four_modes(raw: dict[str, Any]) -> None:
    runs = expand_diffusion_runs(validate_config(copy.deepcopy(raw)))
    assert {r.mode for r in runs} == {"full", "usplit", "udec", "ulatdec"}
    assert len({r.run_dir for r in runs}) == len(runs)
    assert all(
        r.run_dir.startswith(f"results/diffusion/{r.dataset}/{r.partition_tag}/{r.method}/ddpm-R")
        for r in runs
    )


def test_no_section_no_runs() -> None:
    config = validate_config(
        {
            "datasets": {"digits": {"source": "digits"}},
            "partitions": {"iid": {"scheme": "iid", "num_clients": 10}},
            "methods": {"fedavg": {"strategy": "fedavg"}},
            "experiments": {
                "e": {
                    "datasets": ["digits"],
                    "partitions": ["iid"],
                    "methods": ["fedavg"],
                    "seeds": [0],
                }
            },
        }
    )
    assert expand_diffusion_runs(config) == [] and "diffusion" not in config


def test_tag_encodes_every_setting(raw: dict[str, Any]) -> None:
    section = raw["diffusion"]
    base = diffusion_tag(section)
    changed = copy.deepcopy(section)
    changed["sampling"]["steps"] = 7
    assert diffusion_tag(changed) != base
    spelled = copy.deepcopy(section)
    spelled["training"]["checkpoint_every"] = 1  # the default, written out
    assert diffusion_tag(spelled) == base


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d["grid"]["partitions"].append("nope"), "diffusion.grid.partitions"),
        (lambda d: d["grid"].__setitem__("modes", ["fedavg"]), "diffusion.grid.modes"),
        (lambda d: d["training"].__setitem__("clients_per_round", 50), "clients_per_round"),
        (lambda d: d["unet"].__setitem__("attention", [True]), "diffusion.unet.attention"),
        (lambda d: d["unet"].__setitem__("norm_num_groups", 5), "norm_num_groups"),
        (lambda d: d["training"].__setitem__("lrr", 1.0), "lrr"),
        (lambda d: d["sampling"].__setitem__("sampler", "euler"), "diffusion.sampling.sampler"),
        (lambda d: d["scheduler"].__setitem__("beta_start", 0.5), "beta_start"),
    ],
)
def test_errors_name_the_key(raw: dict[str, Any], mutate: Any, key: str) -> None:
    mutate(raw["diffusion"])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_config(raw)
