"""The generate-auxiliary stage: the configured class mix, provenance, files; SD through
from_pretrained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from feddiff.auxiliary.allocation import allocate, class_counts
from feddiff.auxiliary.generate import generate_auxiliary, side_dir
from feddiff.auxiliary.store import load_auxiliary
from feddiff.data.errors import DataError
from feddiff.data.h5 import dataset_fingerprint, load_dataset
from feddiff.features.backbones import ModelNotFoundError
from feddiff.partition.io import load_partition
from tests.auxiliary.conftest import tiny_generation
from tests.features.conftest import save_tiny_sd


def test_local_ddpm_set_has_the_configured_class_mix(
    toy_files: tuple[Path, Path], tmp_path: Path
) -> None:
    data, part = toy_files
    out = tmp_path / "aux.h5"
    generate_auxiliary(tiny_generation(size=40), data, part, out, progress=False)
    aux = load_auxiliary(out)
    arrays = load_dataset(data)
    clients, _ = load_partition(part)
    expected = allocate(class_counts(arrays.y_train, clients, 4), 40)
    assert len(aux.labels) == 40 and aux.images.shape == (40, 8, 8, 1)
    for k in range(4):  # each client's model made exactly its allocation, only of its own classes
        mine = aux.labels[aux.source == k]
        assert np.bincount(mine, minlength=4).tolist() == expected[k].tolist()
        assert set(mine.tolist()) <= set(arrays.y_train[clients[k]].tolist())
    assert json.loads(aux.attrs["allocation"]) == expected.tolist()
    assert aux.attrs["dataset_fingerprint"] == dataset_fingerprint(data)
    assert aux.attrs["generator"] == "local_ddpm"
    counts = (side_dir(out) / "counts.csv").read_text().splitlines()
    assert len(counts) == 5 and counts[0].startswith("client,model,train_loss")
    assert (side_dir(out) / "grid.png").stat().st_size > 0


def test_same_seed_same_images(toy_files: tuple[Path, Path], tmp_path: Path) -> None:
    data, part = toy_files
    a = generate_auxiliary(tiny_generation(size=12), data, part, tmp_path / "a.h5", progress=False)
    b = generate_auxiliary(tiny_generation(size=12), data, part, tmp_path / "b.h5", progress=False)
    assert a.fingerprint() == b.fingerprint()


def test_stable_diffusion_generator_through_from_pretrained(
    toy_files: tuple[Path, Path], tmp_path: Path
) -> None:
    data, part = toy_files
    model = save_tiny_sd(tmp_path / "sd")
    settings = {
        "auxiliary": {
            "generator": "stable_diffusion",
            "model": str(model),
            "size": 6,
            "sd_steps": 2,
            "sd_resolution": 16,
            "device": "cpu",
        },
        "seed": 0,
    }
    aux = generate_auxiliary(settings, data, part, tmp_path / "sd.h5", progress=False)
    arrays = load_dataset(data)
    clients, _ = load_partition(part)
    assert aux.images.shape == (6, 8, 8, 1)  # resized to the dataset's size and channels
    assert (
        np.bincount(aux.labels, minlength=4).tolist()
        == allocate(class_counts(arrays.y_train, clients, 4), 6).sum(axis=0).tolist()
    )
    assert (aux.source == -1).all()


def test_missing_sd_model_names_key_and_place(toy_files: tuple[Path, Path], tmp_path: Path) -> None:
    data, part = toy_files
    settings = {
        "auxiliary": {
            "generator": "stable_diffusion",
            "model": str(tmp_path / "nowhere"),
            "size": 4,
        },
        "seed": 0,
    }
    with pytest.raises(ModelNotFoundError, match="auxiliary.model.*nowhere"):
        generate_auxiliary(settings, data, part, tmp_path / "x.h5", progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="generate-auxiliary"):
        load_auxiliary(tmp_path / "none.h5")


def test_a_killed_generation_resumes_with_the_next_client(
    toy_files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import feddiff.auxiliary.generate as gen

    data, part = toy_files
    whole = generate_auxiliary(
        tiny_generation(size=16), data, part, tmp_path / "whole.h5", progress=False
    )
    trained: list[int] = []
    real = gen.train_client_model

    def train(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        client = args[-1]
        if client == 2 and 2 not in trained:
            trained.append(2)
            raise KeyboardInterrupt  # the job is killed while training client 2
        trained.append(client)  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gen, "train_client_model", train)
    out = tmp_path / "resumed.h5"
    with pytest.raises(KeyboardInterrupt):
        generate_auxiliary(tiny_generation(size=16), data, part, out, progress=False)
    assert not out.exists() and sorted(
        p.name for p in (tmp_path / "resumed.h5.partial").glob("*.npz")
    ) == ["client0.npz", "client1.npz"]
    resumed = generate_auxiliary(tiny_generation(size=16), data, part, out, progress=False)
    assert trained == [0, 1, 2, 2, 3]  # clients 0 and 1 were not trained again
    assert resumed.fingerprint() == whole.fingerprint()
    assert not (tmp_path / "resumed.h5.partial").exists()
    # pieces made with other settings are never reused
    generate_auxiliary(tiny_generation(size=16), data, part, tmp_path / "x.h5", progress=False)
    (tmp_path / "y.h5.partial").mkdir()
    (tmp_path / "y.h5.partial" / "fingerprint").write_text("other settings")
    (tmp_path / "y.h5.partial" / "client0.npz").write_bytes(b"stale")
    other = generate_auxiliary(
        tiny_generation(size=16), data, part, tmp_path / "y.h5", progress=False
    )
    assert other.fingerprint() == whole.fingerprint()
