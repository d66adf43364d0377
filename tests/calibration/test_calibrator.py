"""Calibration lowers the global model's auxiliary loss, for the classifier and for the DDPM;
the two triggers fire when they should; the FedDDPM strategy logs it in the metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from feddiff.auxiliary.store import AuxiliarySet, save_auxiliary
from feddiff.calibration import CalibrationParams
from feddiff.calibration.calibrator import ClassifierObjective, ServerCalibrator, adam, sgd
from feddiff.diffusion.ddpm import DenoisingObjective
from feddiff.diffusion.federated import run_federated_diffusion
from feddiff.diffusion.modes import build_mode
from feddiff.diffusion.settings import SchedulerSettings
from feddiff.diffusion.unet import build_scheduler
from feddiff.fl.data import FederatedData
from tests.diffusion.conftest import tiny_settings, tiny_unet
from tests.fl.helpers import run_method, small_model, small_settings


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here with one torch thread (tests/conftest.py)."""


def quadrant_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class c bright in quadrant c (uint8 NHWC), the toy task of the engine tests."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 4
    x = rng.integers(0, 40, size=(n, 8, 8, 1))
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        x[i, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4, 0] += 200
    return x.astype(np.uint8), y.astype(np.int64)


@pytest.fixture
def data() -> FederatedData:
    x, y = quadrant_images(80, 0)
    xt, yt = quadrant_images(40, 1)
    return FederatedData.from_arrays(
        x, y, xt, yt, np.array_split(np.arange(80), 4), 4, torch.device("cpu")
    )


def aux_tensors(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = quadrant_images(n, 2)
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y)


def params(**kw: object) -> CalibrationParams:
    base = {"auxiliary": "aux", "steps": 20, "batch_size": 16, "eval_size": 64}
    base.update(kw)
    return CalibrationParams(**base)  # type: ignore[arg-type]


def test_calibration_lowers_the_classifiers_auxiliary_loss(data: FederatedData) -> None:
    x, y = aux_tensors()
    cal = ServerCalibrator(
        params(), x, y, ClassifierObjective(data.normalize), sgd(0.9), lr=0.05, seed=0
    )
    model = small_model()
    before = cal.aux_loss(model)
    assert cal.aux_loss(model) == before  # a fixed subset: same model, same loss
    row = cal.after_aggregate(model, round=1)
    assert row["aux_loss"] == pytest.approx(before)
    assert row["aux_loss_after"] < 0.8 * before
    assert row["calibrated"] == 1 and row["calibrations"] == 1


def test_calibration_lowers_the_ddpms_auxiliary_loss() -> None:
    x, y = aux_tensors()
    scheduler = build_scheduler(SchedulerSettings())
    unet = tiny_unet()
    cal = ServerCalibrator(
        params(steps=30), x, y, DenoisingObjective(scheduler, True), adam(), lr=2e-3, seed=0
    )
    before = cal.aux_loss(unet)
    assert cal.aux_loss(unet) == pytest.approx(before)  # fixed noise and timesteps
    row = cal.after_aggregate(unet, round=1)
    assert row["aux_loss_after"] < 0.8 * before


class ScriptedLoss(ServerCalibrator):
    """The auxiliary loss follows a synthetic sequence; a calibration pass is only counted."""

    def __init__(self, losses: list[float], **kw: object) -> None:
        x, y = aux_tensors(8)
        super().__init__(
            params(**kw), x, y, ClassifierObjective(lambda t: t.float()), sgd(0.0), lr=0.1, seed=0
        )
        self.losses = iter(losses)
        self.passes: list[int] = []

    def aux_loss(self, model: torch.nn.Module) -> float:
        return next(self.losses)

    def calibrate(self, model: torch.nn.Module, round: int) -> float:
        self.passes.append(round)
        return 0.0


def test_fedddpm_plus_calibrates_only_on_a_stall() -> None:
    # the loss read after each aggregation and, when a pass runs, the loss read after it
    seq = [1.0, 0.8, 0.6, 0.5, 0.49, 0.49, 0.3, 0.29, 0.28, 0.28, 0.2]
    cal = ScriptedLoss(seq, trigger="stall", window=2, delta=0.05)
    flags = [cal.after_aggregate(torch.nn.Identity(), r)["calibrated"] for r in range(1, 10)]
    # r5: (0.6 - 0.49) / 0.6 = 18 %; r6: (0.5 - 0.49) / 0.5 = 2 % < 5 %: a pass (loss -> 0.3).
    # History restarts at 0.3: r8 (0.3 - 0.28) / 0.3 = 6.7 %; r9 (0.29 - 0.28) / 0.29 = 3.4 %: a
    # pass.
    assert flags == [0, 0, 0, 0, 0, 1, 0, 0, 1]
    assert cal.passes == [6, 9] and cal.count == 2


def test_fedddpm_calibrates_every_round() -> None:
    cal = ScriptedLoss([1.0, 0.5] * 4, trigger="every_round")
    rows = [cal.after_aggregate(torch.nn.Identity(), r) for r in range(1, 5)]
    assert [r["calibrated"] for r in rows] == [1, 1, 1, 1] and cal.passes == [1, 2, 3, 4]
    assert rows[-1]["calibrations"] == 4


def _write_aux(path: object, n: int = 64) -> str:
    x, y = quadrant_images(n, 3)
    save_auxiliary(AuxiliarySet(x, y, np.zeros(n, np.int64), {}), path)  # type: ignore[arg-type]
    return str(path)


def test_fedddpm_strategy_logs_calibration_and_resumes(
    data: FederatedData, tmp_path: object
) -> None:
    aux = _write_aux(tmp_path / "aux.h5")  # type: ignore[operator]
    method = {
        "strategy": "fedddpm",
        "auxiliary": aux,
        "trigger": "stall",
        "window": 1,
        "delta": 0.5,
        "steps": 5,
        "eval_size": 32,
    }
    settings = small_settings(rounds=4)

    def run(**kw: object) -> list[dict]:
        from tests.fl.helpers import make_strategy

        strategy = make_strategy(**method)
        strategy.bind_data(data)
        from feddiff.fl.engine import run_federated

        _, rows = run_federated(
            data, small_model(), strategy, settings, seed=0, progress=False, **kw
        )
        return rows

    rows = run()
    assert {"aux_loss", "aux_loss_after", "calibrated", "calibrations"} <= set(rows[0])
    assert rows[-1]["calibrations"] == sum(r["calibrated"] for r in rows)
    ckpt = tmp_path / "ckpt.pt"  # type: ignore[operator]
    interrupted = small_settings(rounds=2)
    from feddiff.fl.engine import run_federated
    from tests.fl.helpers import make_strategy

    s = make_strategy(**method)
    s.bind_data(data)
    run_federated(
        data,
        small_model(),
        s,
        interrupted,
        seed=0,
        progress=False,
        checkpoint_path=ckpt,
        fingerprint="f",
    )
    resumed = run(checkpoint_path=ckpt, fingerprint="f")
    assert [r["calibrated"] for r in resumed] == [r["calibrated"] for r in rows]
    assert resumed[-1]["test_acc"] == pytest.approx(rows[-1]["test_acc"])


def test_fedddpm_calibration_in_the_federated_ddpm_loop(data: FederatedData) -> None:
    x, y = aux_tensors()
    scheduler = build_scheduler(SchedulerSettings())
    cal = ServerCalibrator(
        params(steps=5), x, y, DenoisingObjective(scheduler, True), adam(), lr=1e-3, seed=0
    )
    result = run_federated_diffusion(
        data,
        tiny_unet(),
        scheduler,
        build_mode("full"),
        tiny_settings(rounds=2).training,
        seed=0,
        hooks=[cal],
        progress=False,
    )
    assert [r["calibrated"] for r in result.rows] == [1, 1]
    assert all(r["aux_loss_after"] < r["aux_loss"] for r in result.rows)


def test_fedddpm_needs_its_auxiliary_file(data: FederatedData, tmp_path: object) -> None:
    from feddiff.data.errors import DataError
    from tests.fl.helpers import make_strategy

    strategy = make_strategy(strategy="fedddpm", auxiliary=str(tmp_path / "none.h5"))  # type: ignore[operator]
    with pytest.raises(DataError, match="none.h5 does not exist"):
        strategy.bind_data(data)
    with pytest.raises(RuntimeError, match="bind_data must run"):
        run_method(
            data, {"strategy": "fedddpm", "auxiliary": "x"}, small_settings(rounds=1), seed=0
        )


def test_fedddpm_rejects_an_auxiliary_set_of_another_dataset(
    data: FederatedData, tmp_path: object
) -> None:
    from tests.fl.helpers import make_strategy

    x, y = quadrant_images(8, 3)
    path = tmp_path / "aux.h5"  # type: ignore[operator]
    save_auxiliary(AuxiliarySet(x, y, np.zeros(8, np.int64), {"dataset_fingerprint": "abc"}), path)
    with pytest.raises(ValueError, match="another dataset"):
        make_strategy(strategy="fedddpm", auxiliary=str(path)).bind_data(data, "def")
