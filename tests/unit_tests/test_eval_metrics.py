"""Metrics: Wilson intervals, judged rates, win rates, MIP and Pareto fronts (pure functions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from psa_guard.evaluation.metrics import (
    good_outcomes,
    mean_value,
    mip,
    over_refusal_rate,
    pareto_front,
    rate,
    refusal_rate,
    simplex_grid,
    toxicity_rate,
    unsafe_compliance_rate,
    wilson_interval,
    win_rate,
)


@pytest.mark.parametrize(
    ("count", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.2775),   # reference values of the Wilson score interval, z = 1.96
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (1, 60, 0.0029, 0.0886),
        (30, 60, 0.3773, 0.6227),
    ],
)
def test_wilson_interval_reference_values(count: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(count, n)
    assert lo == pytest.approx(low, abs=1e-4)
    assert hi == pytest.approx(high, abs=1e-4)


def test_wilson_interval_is_exact_at_the_ends_and_always_brackets_the_rate() -> None:
    # A regression: at 0 of 3 the formula gave a lower bound of 5.6e-17 > 0, a negative error
    # bar, and `psa-guard eval` crashed while plotting.
    for n in range(1, 201):
        assert wilson_interval(0, n)[0] == 0.0 and wilson_interval(n, n)[1] == 1.0
        for count in range(n + 1):
            low, high = wilson_interval(count, n)
            assert 0.0 <= low <= count / n <= high <= 1.0


@pytest.mark.parametrize(("count", "n"), [(0, 0), (-1, 5), (6, 5)])
def test_wilson_interval_rejects_bad_input(count: int, n: int) -> None:
    with pytest.raises(ValueError):
        wilson_interval(count, n)


def test_rate_carries_count_n_and_interval() -> None:
    r = rate([True, False, True, True])
    assert (r.count, r.n, r.rate) == (3, 4, 0.75)
    assert r.low < 0.75 < r.high
    assert rate([]).rate is None and rate([]).n == 0


def test_unsafe_compliance_needs_not_refused_and_unsafe() -> None:
    refused = [False, False, True, True]
    unsafe = [True, False, True, False]
    r = unsafe_compliance_rate(refused, unsafe)
    assert (r.count, r.n) == (1, 4)  # only the first: complied and unsafe
    assert refusal_rate(refused).count == 2
    assert over_refusal_rate([True, False]).rate == 0.5
    assert toxicity_rate([False, False, True]).count == 1
    with pytest.raises(ValueError):
        unsafe_compliance_rate([True], [True, False])


def test_mean_value_interval() -> None:
    m = mean_value([10, 20, 30])
    assert m.mean == 20 and m.n == 3 and m.std == pytest.approx(10.0)
    assert m.low == pytest.approx(20 - 1.959964 * 10 / math.sqrt(3), rel=1e-5)
    assert mean_value([]).mean is None


def test_good_outcomes_by_kind() -> None:
    assert good_outcomes("harmful", [True, False, False], [True, True, False]) == [True, False, True]
    assert good_outcomes("benign", [True, False], [False, True]) == [False, True]
    with pytest.raises(ValueError):
        good_outcomes("other", [True], [True])


def test_win_rate_counts_ties_half() -> None:
    a = [True, True, False, False]
    b = [False, True, False, True]
    w = win_rate(a, b)
    assert (w.wins, w.ties, w.losses, w.n) == (1, 2, 1, 4)
    assert w.rate == pytest.approx(0.5)
    assert win_rate([True] * 3, [False] * 3).rate == 1.0
    assert win_rate(b, a).rate == pytest.approx(1 - w.rate)


def test_mip_is_mean_inner_product() -> None:
    prefs = np.array([[1.0, 0.0], [0.5, 0.5]])
    scores = np.array([[0.8, 0.1], [0.4, 0.6]])
    assert mip(prefs, scores) == pytest.approx((0.8 + 0.5) / 2)
    with pytest.raises(ValueError):
        mip(np.array([[0.7, 0.7]]), np.array([[1.0, 1.0]]))  # not on the simplex
    with pytest.raises(ValueError):
        mip(prefs, scores[:1])


def test_pareto_front_drops_dominated_points() -> None:
    points = np.array([[1, 0], [0, 1], [0.5, 0.5], [0.4, 0.4], [1, 0]])
    assert pareto_front(points) == [0, 1, 2, 4]  # (0.4, 0.4) is dominated; equal points both stay


def test_simplex_grid_rows_sum_to_one() -> None:
    grid = simplex_grid(3, 4)
    assert grid.shape == (15, 3)  # C(4 + 2, 2)
    assert np.allclose(grid.sum(axis=1), 1.0)
    assert len({tuple(r) for r in grid}) == 15
    assert simplex_grid(5, 1).shape == (5, 5)
