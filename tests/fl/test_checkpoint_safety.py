"""Checkpoints cannot run code: a malicious pickle is refused with an error naming the file.

The payload is a real code-execution gadget (unpickling it writes a marker file); a
control test shows plain ``pickle`` does run it, so the refusal tests can fail. The
other files the package reads that a user may not have made (partition files, the
torchvision dataset files under ``resources/``) get the same gadget at the end.
"""

from __future__ import annotations

import logging
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from feddiff.fl.checkpoint import UnsafeCheckpointError, load_checkpoint, save_checkpoint
from feddiff.fl.data import FederatedData
from feddiff.fl.engine import run_federated
from tests.fl.helpers import make_strategy, small_model, small_settings


class Gadget:
    """Unpickling this object writes ``marker`` (what an attacker's payload would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def _evil(path: Path, marker: Path, how: str) -> Path:
    payload = {"fingerprint": "f", "round": 1, "model": {}, "metrics": [], "x": Gadget(marker)}
    if how == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))  # torch.load's own protocol: no warning
    return path


def test_the_gadget_runs_code_under_plain_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    pickle.loads(_evil(tmp_path / "c.pt", marker, "pickle").read_bytes())
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("how", ["torch", "pickle"])
def test_a_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "marker"
    path = _evil(tmp_path / "checkpoint.pt", marker, how)
    with pytest.raises(
        UnsafeCheckpointError, match=r"refusing to load checkpoint .*checkpoint\.pt"
    ) as err:
        load_checkpoint(path, "f")
    assert str(path) in str(err.value) and "Delete it" in str(err.value)
    if how == "torch":
        assert "GLOBAL exec" in str(err.value)  # says what was refused
    assert not marker.exists()


def test_the_engine_refuses_to_resume_from_a_malicious_checkpoint(
    toy_data: FederatedData, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    path = _evil(tmp_path / "checkpoint.pt", marker, "torch")
    with pytest.raises(UnsafeCheckpointError, match="checkpoint.pt"):
        run_federated(
            toy_data,
            small_model(),
            make_strategy(strategy="fedavg"),
            small_settings(rounds=1),
            seed=0,
            checkpoint_path=path,
            fingerprint="f",
            progress=False,
        )
    assert not marker.exists()


def test_the_diffusion_loop_refuses_a_malicious_checkpoint(
    toy_data: FederatedData, tmp_path: Path
) -> None:
    from feddiff.diffusion.federated import run_federated_diffusion
    from feddiff.diffusion.modes import build_mode
    from feddiff.diffusion.settings import SchedulerSettings
    from feddiff.diffusion.unet import build_scheduler
    from tests.diffusion.conftest import tiny_settings, tiny_unet

    marker = tmp_path / "marker"
    path = _evil(tmp_path / "checkpoint.pt", marker, "torch")
    with pytest.raises(UnsafeCheckpointError, match="checkpoint.pt"):
        run_federated_diffusion(
            toy_data,
            tiny_unet(),
            build_scheduler(SchedulerSettings()),
            build_mode("udec"),
            tiny_settings(rounds=1).training,
            seed=0,
            checkpoint_path=path,
            fingerprint="f",
            progress=False,
        )
    assert not marker.exists()


def test_what_a_run_saves_loads_back_safely(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    model = OrderedDict(w=torch.arange(3.0), n=torch.tensor(2))
    payload = {
        "fingerprint": "f",
        "round": 2,
        "model": model,
        "seen": [0, 3],
        "private": {1: {"down.w": torch.ones(2)}},
        "strategy": {"history": [0.5, 0.25], "count": 1},
        "metrics": [{"round": 1, "test_acc": np.float64(0.25), "n": np.int64(7), "kind": "test"}],
    }
    save_checkpoint(path, payload)
    back = load_checkpoint(path, "f")
    assert back is not None and isinstance(back["model"], OrderedDict)
    assert torch.equal(back["model"]["w"], model["w"]) and torch.equal(
        back["private"][1]["down.w"], torch.ones(2)
    )
    assert back["metrics"] == [{"round": 1, "test_acc": 0.25, "n": 7, "kind": "test"}]
    assert type(back["metrics"][0]["test_acc"]) is float and type(back["metrics"][0]["n"]) is int
    assert load_checkpoint(path, "other") is None  # another run's settings: ignored


def test_an_object_a_safe_load_would_refuse_is_rejected_when_saving(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(TypeError, match=r"checkpoint\['strategy'\]\['rng'\].*numpy.*Generator"):
        save_checkpoint(path, {"fingerprint": "f", "strategy": {"rng": np.random.default_rng(0)}})
    assert not path.exists()


def test_an_unreadable_file_is_ignored_with_a_warning(tmp_path: Path, caplog: Any) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"fingerprint": "f"})
    path.write_bytes(path.read_bytes()[:40])  # a torn zip (atomic writes make this unlikely)
    with caplog.at_level(logging.WARNING):
        assert load_checkpoint(path, "f") is None
    assert "ignoring unreadable checkpoint" in caplog.text


# ---- other loaders of files a user may not have made ---------------------------------


def test_a_partition_file_with_a_pickled_object_is_refused(tmp_path: Path) -> None:
    from feddiff.partition.io import load_partition

    marker = tmp_path / "marker"
    path = tmp_path / "partition.npz"
    gadget = np.empty(1, dtype=object)
    gadget[0] = Gadget(marker)
    with open(path, "wb") as fh:
        np.savez(fh, indices=gadget, offsets=np.array([0, 1]), meta=np.array("{}"))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_partition(path)
    assert not marker.exists()


def test_tampered_torchvision_cifar_files_are_refused_before_unpickling(tmp_path: Path) -> None:
    """torchvision's CIFAR reader unpickles its batch files, after checking their MD5
    against the official archive's; a swapped-in pickle never reaches ``pickle.load``."""
    import torchvision

    from feddiff.data.errors import DataError
    from feddiff.data.torchvision_sources import load_torchvision

    marker = tmp_path / "marker"
    folder = tmp_path / "res" / "cifar10" / torchvision.datasets.CIFAR10.base_folder
    folder.mkdir(parents=True)
    cls = torchvision.datasets.CIFAR10
    for name, _md5 in [*cls.train_list, *cls.test_list, (cls.meta["filename"], cls.meta["md5"])]:
        (folder / name).write_bytes(
            pickle.dumps({"data": Gadget(marker), "labels": []}, protocol=2)
        )
    with pytest.raises(DataError, match="cifar10"):
        load_torchvision("cifar10", resources_dir=tmp_path / "res", download=False)
    assert not marker.exists()


def test_a_tampered_torchvision_mnist_cache_is_refused(tmp_path: Path) -> None:
    """MNIST's legacy processed ``.pt`` files are read with ``weights_only=True``."""
    from feddiff.data.errors import DataError
    from feddiff.data.torchvision_sources import load_torchvision

    marker = tmp_path / "marker"
    processed = tmp_path / "res" / "mnist" / "MNIST" / "processed"
    processed.mkdir(parents=True)
    for name in ("training.pt", "test.pt"):
        torch.save((Gadget(marker), torch.zeros(1)), processed / name)
    with pytest.raises(DataError, match="mnist"):
        load_torchvision("mnist", resources_dir=tmp_path / "res", download=False)
    assert not marker.exists()
