"""Sharing modes: USPLIT's pairing and part-wise averaging over exactly the uploaders."""

import numpy as np
import pytest
import torch

from feddiff.diffusion.federated import Upload, aggregate_parts
from feddiff.diffusion.modes import ALL, build_mode, usplit_assignment


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_usplit_covers_every_client_every_round(n: int) -> None:
    mode = build_mode("usplit")
    for rnd in range(1, 30):
        clients = sorted(np.random.default_rng(rnd).choice(20, size=n, replace=False).tolist())
        plan = mode.uploads(clients, seed=7, round=rnd)
        assert sorted(plan) == clients
        counts = {p: sum(p in parts for parts in plan.values()) for p in ALL}
        pairs = n // 2
        assert counts["mid"] == pairs + n % 2  # once per pair, plus the odd one out
        assert counts["up"] + counts["down"] == n  # each client sends exactly one of up/down
        assert pairs <= counts["up"] <= pairs + n % 2 and pairs <= counts["down"] <= pairs + n % 2
        assert all(
            parts in ({"up"}, {"down"}, {"up", "mid"}, {"down", "mid"}) for parts in plan.values()
        )
    # seeded: the same (seed, round) gives the same plan, another round another one
    assert mode.uploads(list(range(8)), 1, 1) == mode.uploads(list(range(8)), 1, 1)
    assert (
        len({tuple(sorted(mode.uploads(list(range(8)), 1, r).items())) for r in range(1, 10)}) > 1
    )


def test_usplit_pairs_split_up_and_down() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        plan = usplit_assignment(list(range(6)), rng)
        ups = [c for c, p in plan.items() if "up" in p]
        downs = [c for c, p in plan.items() if "down" in p]
        assert len(ups) == len(downs) == 3 and not set(ups) & set(downs)
    odd = usplit_assignment([4], np.random.default_rng(1))
    assert "mid" in odd[4] and len(odd[4]) == 2


def test_modes_share_what_the_paper_says() -> None:
    assert build_mode("full").shared == ALL and not build_mode("full").private
    assert build_mode("udec").private == {"down", "mid"}
    assert build_mode("ulatdec").private == {"down"}
    udec = build_mode("udec")
    assert udec.downloads(first_time=True) == ALL and udec.downloads(first_time=False) == {"up"}
    assert build_mode("usplit").downloads(first_time=False) == ALL


def test_each_part_is_averaged_over_its_uploaders_only() -> None:
    parts_map = {"down": frozenset({"d"}), "mid": frozenset({"m"}), "up": frozenset({"u"})}
    glob = {"d": torch.tensor([100.0]), "m": torch.tensor([200.0]), "u": torch.tensor([300.0])}
    uploads = [
        Upload(
            frozenset({"up", "mid"}), {"u": torch.tensor([1.0]), "m": torch.tensor([10.0])}, 1.0
        ),
        Upload(frozenset({"down"}), {"d": torch.tensor([2.0])}, 3.0),
        Upload(
            frozenset({"up", "down"}), {"u": torch.tensor([5.0]), "d": torch.tensor([6.0])}, 3.0
        ),
    ]
    out = aggregate_parts(glob, uploads, parts_map)
    assert out["u"].item() == pytest.approx((1 * 1 + 5 * 3) / 4)  # uploaders 0 and 2
    assert out["d"].item() == pytest.approx((2 * 3 + 6 * 3) / 6)  # uploaders 1 and 2
    assert out["m"].item() == pytest.approx(10.0)  # only uploader 0
    nobody = aggregate_parts(glob, uploads[1:2], parts_map)
    assert nobody["u"].item() == 300.0 and nobody["m"].item() == 200.0  # no uploader: unchanged
