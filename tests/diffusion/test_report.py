"""The FID table: mean ± std over seeds, communication totals, reduction against FULL."""

import math

import pytest

from feddiff.diffusion.report import fid_table, render_latex, render_markdown

KIND = "classifier-feature FD (not Inception FID)"


def _run(mode: str, seed: int, fid: float, up: int, down: int) -> dict:
    return {
        "dataset": "digits",
        "partition": "dir0.5",
        "mode": mode,
        "seed": seed,
        "n_rounds": 5,
        "fid": fid,
        "fid_kind": KIND,
        "num_samples": 200,
        "params_up": up,
        "params_down": down,
        "bytes_up": 4 * up,
        "bytes_down": 4 * down,
    }


def test_table_statistics_and_reduction() -> None:
    runs = [
        _run("full", 0, 10.0, 1000, 1000),
        _run("full", 1, 12.0, 1000, 1000),
        _run("udec", 0, 20.0, 250, 400),
        _run("udec", 1, 20.0, 250, 400),
    ]
    table = fid_table(runs).set_index("mode")
    assert table.loc["full", "fid_mean"] == 11.0 and table.loc["full", "fid_std"] == pytest.approx(
        math.sqrt(2)
    )
    assert table.loc["udec", "up_reduction_vs_full_pct"] == pytest.approx(75.0)
    assert table.loc["udec", "total_reduction_vs_full_pct"] == pytest.approx(100 * (1 - 650 / 2000))
    assert table.loc["udec", "bytes_total"] == 4 * 650
    md = render_markdown(fid_table(runs))
    assert "11.00 ± 1.41" in md and "75.0%" in md and KIND in md
    assert r"\begin{tabular}" in render_latex(fid_table(runs))


def test_single_seed_has_no_std_and_missing_full_no_reduction() -> None:
    table = fid_table([_run("udec", 0, 20.0, 250, 400)])
    assert math.isnan(table.loc[0, "fid_std"]) and math.isnan(
        table.loc[0, "up_reduction_vs_full_pct"]
    )
    assert "20.00 |" in render_markdown(table)
    with pytest.raises(ValueError, match="twice"):
        fid_table([_run("full", 0, 1.0, 1, 1), _run("full", 0, 2.0, 1, 1)])


# ---- the communication plan (no training) ------------------------------------------------------
def _numel(state: dict, heads: tuple[str, ...]) -> int:
    """Floating values of the state-dict entries whose top-level module is in ``heads`` (plain
    torch)."""
    return sum(
        t.numel() for k, t in state.items() if k.split(".")[0] in heads and t.is_floating_point()
    )


UP = ("up_blocks", "conv_norm_out", "conv_act", "conv_out")
MID = ("mid_block",)


def test_communication_plan_by_hand() -> None:
    """All K clients every round: FULL sends the model both ways every time; UDEC uploads the
    decoder only and downloads the whole model once per client, then the decoder; ULATDEC
    the same with mid + decoder. Sizes are counted here from the state dict's names."""
    from feddiff.diffusion.report import communication_plan

    from .conftest import tiny_unet

    state = tiny_unet().state_dict()
    whole = sum(t.numel() for t in state.values() if t.is_floating_point())
    up, mid = _numel(state, UP), _numel(state, MID)
    assert 0 < up < whole and 0 < mid < whole
    k, rounds = 3, 4
    plan = communication_plan(
        state, ["full", "udec", "ulatdec", "usplit"], k, k, rounds, seed=1
    ).set_index("mode")
    assert plan.loc["full", "params_up"] == plan.loc["full", "params_down"] == rounds * k * whole
    assert plan.loc["udec", "params_up"] == rounds * k * up
    assert plan.loc["udec", "params_down"] == k * whole + (rounds - 1) * k * up
    assert plan.loc["ulatdec", "params_up"] == rounds * k * (up + mid)
    assert plan.loc["ulatdec", "params_down"] == k * whole + (rounds - 1) * k * (up + mid)
    assert plan.loc["udec", "part_up"] == up and plan.loc["udec", "params_model"] == whole
    # USPLIT, 3 clients: a pair sends one model between them, the third sends mid + one half
    down_part = whole - up - mid
    per_round = plan.loc["usplit", "params_up"] / rounds
    assert whole + mid + min(up, down_part) <= per_round <= whole + mid + max(up, down_part)
    assert plan.loc["usplit", "params_down"] == rounds * k * whole  # USPLIT shares everything
    udec_total = 1 - (rounds * k * up + k * whole + (rounds - 1) * k * up) / (
        2 * rounds * k * whole
    )
    assert plan.loc["udec", "total_reduction_vs_full_pct"] == pytest.approx(100 * udec_total)
    assert plan.loc["udec", "up_reduction_vs_full_pct"] == pytest.approx(100 * (1 - up / whole))
    assert plan.loc["full", "params_up_per_round"] == k * whole


@pytest.mark.parametrize("mode", ["full", "usplit", "udec", "ulatdec"])
def test_communication_plan_matches_a_real_run(mode: str, toy_data, scheduler) -> None:  # type: ignore[no-untyped-def]
    """Partial participation (2 of 4 clients a round), USPLIT's random pairing: the plan's
    totals are what the round loop itself records."""
    from feddiff.diffusion.federated import run_federated_diffusion
    from feddiff.diffusion.modes import build_mode
    from feddiff.diffusion.report import communication_plan

    from .conftest import tiny_settings, tiny_unet

    settings = tiny_settings(rounds=3, clients_per_round=2)
    result = run_federated_diffusion(
        toy_data,
        tiny_unet(),
        scheduler,
        build_mode(mode),
        settings.training,
        seed=7,
        progress=False,
    )
    plan = communication_plan(tiny_unet().state_dict(), [mode], 4, 2, 3, seed=7).iloc[0]
    for col in ("params_up", "params_down", "bytes_up", "bytes_down"):
        assert plan[col] == sum(row[col] for row in result.rows), col


def test_communication_script_on_the_paper_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """benchmarks/feddiffuse_communication.py on the FedDiffuse paper config: every grid dataset
    and mode, the paper's "up to" number read from the values file, FULL saving nothing."""
    import importlib.util

    import pandas as pd

    from feddiff.config import REPO_ROOT

    spec = importlib.util.spec_from_file_location(
        "feddiffuse_communication", REPO_ROOT / "benchmarks" / "feddiffuse_communication.py"
    )
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "comm"
    assert (
        script.main(
            [
                "--config",
                str(REPO_ROOT / "config/paper/feddiffuse_fid.yaml"),
                "--out",
                str(out),
                "--date",
                "2000-01-01",
            ]
        )
        == 0
    )
    table = pd.read_csv(out.with_suffix(".csv"))
    assert set(table["dataset"]) == {"fashion_mnist", "celeba"}
    assert set(table["mode"]) == {"full", "usplit", "udec", "ulatdec"}
    assert (table.loc[table["mode"] == "full", "total_reduction_vs_full_pct"] == 0).all()
    assert (
        table["params_model"] == table["part_down"] + table["part_mid"] + table["part_up"]
    ).all()
    assert (
        table["paper_max_total_saved_pct"].notna().all()
        and table["paper_source"].str.contains("arXiv").all()
    )
    md = out.with_suffix(".md").read_text()
    assert (
        "- date: 2000-01-01" in md
        and "feddiffuse_communication.py --config" in md
        and "fashion_mnist (28x28x1)" in md
    )
