"""Feature figures, the features config section, the CLI stages."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from feddiff.cli import main
from feddiff.config import DEFAULT_CONFIG, ConfigError
from feddiff.features.config import feature_targets
from feddiff.features.extract import extract_features
from feddiff.features.figures import purity
from feddiff.features.settings import FeatureSettings
from feddiff.plan import expand_runs, validate_config
from feddiff.tags import features_tag, method_tag


def test_purity_on_hand_labels() -> None:
    labels = np.array([0, 0, 1, 1, 1, 2])
    clusters = np.array([5, 5, 5, 7, 7, 7])  # cluster 5: {0,0,1} -> 2; cluster 7: {1,1,2} -> 2
    assert purity(labels, clusters) == pytest.approx(4 / 6)
    assert purity(labels, labels) == 1.0


def test_feature_figures(tmp_path: Path, toy_data: Path, ddpm_dir: Path) -> None:
    features = tmp_path / "f.h5"
    extract_features(
        toy_data,
        FeatureSettings(
            backbone="ddpm", model=str(ddpm_dir), blocks=(0, 1), dims=(3, 2), device="cpu"
        ),
        features,
        progress=False,
    )
    code = main(
        ["feature-figures", "--features", str(features), "--out-dir", str(tmp_path / "figs")]
    )
    assert code == 0
    table = pd.read_csv(tmp_path / "figs" / "kmeans.csv")
    assert table["representation"].tolist() == ["block 0", "block 1", "fused"]
    assert table["dim"].tolist() == [3, 2, 5]
    assert table["purity"].between(0.25, 1).all() and table["nmi"].between(0, 1).all()
    assert "| fused | 5 |" in (tmp_path / "figs" / "kmeans.md").read_text()
    for name in ("tsne.png", "tsne.pdf", "pca.png", "pca.pdf"):
        assert (tmp_path / "figs" / name).stat().st_size > 5000, name


@pytest.mark.parametrize("stage", ["extract-features", "feature-figures"])
def test_stage_help(stage: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([stage, "--help"])
    assert exc.value.code == 0 and f"usage: feddiff {stage}" in capsys.readouterr().out


def test_extract_stage_by_hand(
    tmp_path: Path, toy_data: Path, ddpm_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = (
        f'{{"backbone": "ddpm", "model": "{ddpm_dir}", '
        '"blocks": [1], "dims": [3], "device": "cpu"}'
    )
    out = tmp_path / "f.h5"
    args = [
        "extract-features",
        "--data",
        str(toy_data),
        "--spec",
        spec,
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(args) == 0 and out.exists()
    assert main(args) == 0 and "up to date" in capsys.readouterr().out
    bad = [
        "extract-features",
        "--data",
        str(toy_data),
        "--spec",
        '{"model": "nobody/nothing"}',
        "--name",
        "sd",
        "--out",
        str(tmp_path / "g.h5"),
    ]
    assert main(bad) == 1 and "features.sd.model" in capsys.readouterr().err


# ---- config -------------------------------------------------------------------------------
@pytest.fixture
def raw(ddpm_dir: Path) -> dict[str, Any]:
    """The default config with a FedDifRC method over a local DDPM folder."""
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config.pop("diffusion", None)
    config["features"] = {
        "local": {"backbone": "ddpm", "model": str(ddpm_dir), "blocks": [0, 1], "dims": [4, 4]}
    }
    config["methods"] = {
        "fedavg": {"strategy": "fedavg"},
        "difrc": {"strategy": "feddifrc", "features": "local"},
        "tdcl": {"strategy": "feddifrc", "features": "local", "lambda_ndcr": 0.0},
    }
    config["experiments"] = {
        "main": {
            "datasets": ["digits"],
            "partitions": ["iid"],
            "methods": ["fedavg", "difrc", "tdcl"],
            "seeds": [0],
        }
    }
    return config


def test_runs_get_the_features_path_and_tag(raw: dict[str, Any]) -> None:
    config = validate_config(copy.deepcopy(raw))
    runs = {r.method: r for r in expand_runs(config)}
    target = feature_targets(config)
    assert len(target) == 1  # shared by both FedDifRC methods
    path = target[0].path
    assert path.startswith("results/features/digits/ddpm/ddpm-t300-b0.1-d4.4-") and path.endswith(
        ".h5"
    )
    assert runs["difrc"].method_setting["features"] == path
    assert runs["difrc"].settings()["method"]["features"] == path
    tag = method_tag(runs["difrc"].method_setting)
    assert "/" not in tag and f"features{Path(path).stem}_" in tag
    assert runs["difrc"].method_setting["lambda_tdcl"] == 1.0  # schema defaults filled
    # other extraction settings: another file and another run directory
    raw["features"]["local"]["timestep"] = 100
    other = {r.method: r for r in expand_runs(validate_config(copy.deepcopy(raw)))}
    assert other["difrc"].run_dir != runs["difrc"].run_dir
    assert other["fedavg"].run_dir == runs["fedavg"].run_dir
    assert features_tag(target[0].settings) in path


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (
            lambda c: c["methods"]["difrc"].__setitem__("features", "nope"),
            r"methods\.difrc\.features: 'nope'",
        ),
        (
            lambda c: c["methods"]["difrc"].__setitem__("self_supervised", True),
            r"methods\.difrc\.self_supervised",
        ),
        (lambda c: c["features"]["local"].__setitem__("dims", [4]), r"features\.local\.dims"),
        (
            lambda c: c["features"]["local"].__setitem__("diffusion", {"partition": "iid"}),
            r"features\.local",
        ),
        (
            lambda c: c["features"].__setitem__(
                "d", {"backbone": "ddpm", "diffusion": {"partition": "iid"}}
            ),
            r"features\.d\.diffusion: the config has no diffusion section",
        ),
        (lambda c: c["methods"]["difrc"].pop("features"), r"methods\.difrc"),
        (
            lambda c: c["features"]["local"].__setitem__("backbone", "vae"),
            r"features\.local\.backbone",
        ),
    ],
)
def test_feature_config_errors_name_the_key(raw: dict[str, Any], mutate: Any, key: str) -> None:
    mutate(raw)
    if "diffusion: the config" in key:
        raw["methods"]["difrc"]["features"] = "d"
    with pytest.raises(ConfigError, match=key):
        validate_config(raw)
