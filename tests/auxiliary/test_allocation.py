"""Who generates how many images of which class: proportional, exact total, no foreign classes."""

from __future__ import annotations

import numpy as np
import pytest

from feddiff.auxiliary.allocation import allocate, class_counts


def test_counts_per_client() -> None:
    labels = np.array([0, 0, 1, 2, 2, 2])
    counts = class_counts(labels, [np.array([0, 1, 2]), np.array([3, 4, 5])], 3)
    assert counts.tolist() == [[2, 1, 0], [0, 0, 3]]


@pytest.mark.parametrize("total", [0, 1, 7, 100, 1000, 12345])
def test_allocation_is_exact_proportional_and_local(total: int) -> None:
    rng = np.random.default_rng(total)
    counts = rng.integers(0, 50, size=(10, 10)) * (rng.random((10, 10)) < 0.4)
    out = allocate(counts, total)
    assert out.sum() == total
    assert (out[counts == 0] == 0).all()  # nobody is asked for a class it does not hold
    exact = counts * total / counts.sum()
    assert np.abs(out - exact).max() < 1.0


def test_hand_worked_example() -> None:
    # shares 2.5, 2.5, 5 of 10 -> floors 2, 2, 5; one left goes to the larger count on a tie
    counts = np.array([[1, 0], [1, 2]])
    assert allocate(counts, 10).tolist() == [[3, 0], [2, 5]]
    assert allocate(counts, 10).tolist() == allocate(counts.copy(), 10).tolist()  # deterministic


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="all zero"):
        allocate(np.zeros((2, 2), int), 5)
    with pytest.raises(ValueError, match="non-negative"):
        allocate(np.array([[-1, 2]]), 5)
    with pytest.raises(ValueError, match="matrix"):
        allocate(np.array([1, 2]), 5)
