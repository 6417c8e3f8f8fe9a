"""Performance profiles (Dolan & Moré 2002) on a hand-made table, and the steps-to-target cost."""

import math

import numpy as np
import pytest

from npoptim.sweeps.profiles import performance_profile, performance_ratios, steps_to_target

INF = math.inf

# 4 problems x 3 solvers (A, B, C); costs = steps to reach the target.
COSTS = np.array(
    [
        [10.0, 20.0, INF],  # best 10: r = 1, 2, inf
        [30.0, 15.0, 15.0],  # best 15: r = 2, 1, 1
        [INF, 40.0, 100.0],  # best 40: r = inf, 1, 2.5
        [INF, INF, INF],  # nobody solves it: r = inf for all
    ]
)


def test_ratios_by_hand():
    expected = np.array([[1.0, 2.0, INF], [2.0, 1.0, 1.0], [INF, 1.0, 2.5], [INF, INF, INF]])
    # bit-exact: each ratio is one correctly rounded division whose exact value (2, 2.5, 1) is a float
    np.testing.assert_array_equal(performance_ratios(COSTS), expected)


def test_profile_fractions_by_hand():
    # rho_s(tau) = |{p : r_ps <= tau}| / 4, counted from the ratios above:
    #   tau=1:   A {p0} 1/4,       B {p1, p2} 2/4,       C {p1} 1/4
    #   tau=2:   A {p0, p1} 2/4,   B {p0, p1, p2} 3/4,   C {p1} 1/4
    #   tau=2.5: A 2/4,            B 3/4,                C {p1, p2} 2/4
    #   tau=1e9: A 2/4,            B 3/4,                C 2/4   (p3 is never solved)
    rho = performance_profile(COSTS, [1.0, 2.0, 2.5, 1e9])
    expected = np.array([[0.25, 0.5, 0.25], [0.5, 0.75, 0.25], [0.5, 0.75, 0.5], [0.5, 0.75, 0.5]])
    np.testing.assert_array_equal(rho, expected)  # bit-exact: counts / 4, exact in binary


def test_profile_is_nondecreasing_and_best_at_one():
    rng = np.random.default_rng(1)
    costs = rng.integers(1, 50, size=(30, 5)).astype(float)
    costs[rng.random(costs.shape) < 0.2] = INF
    taus = np.geomspace(1, 100, 50)
    rho = performance_profile(costs, taus)
    assert (np.diff(rho, axis=0) >= 0).all()
    # at tau = 1 every problem that someone solves is counted for at least one solver (its best)
    solved = np.isfinite(costs).any(axis=1).sum()
    assert rho[0].sum() * len(costs) >= solved


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.array([[1.0, 0.0]]), "> 0 or \\+inf"),
        (np.array([[1.0, np.nan]]), "> 0 or \\+inf"),
        (np.array([[1.0, -2.0]]), "solver 1"),
        (np.array([1.0, 2.0]), "2-D"),
    ],
)
def test_bad_costs_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        performance_ratios(bad)


def test_taus_below_one_rejected():
    with pytest.raises(ValueError, match="taus must be >= 1"):
        performance_profile(COSTS, [0.5])


def test_steps_to_target():
    steps = np.array([0, 10, 20, 30])
    curve = np.array([5.0, 2.0, 0.5, 0.1])
    assert steps_to_target(steps, curve, 1.0) == 20
    assert steps_to_target(steps, curve, 0.01) == INF
    assert steps_to_target(steps, curve, 10.0) == 1  # at least one step
    with pytest.raises(ValueError, match="same shape"):
        steps_to_target(steps, curve[:2], 1.0)
