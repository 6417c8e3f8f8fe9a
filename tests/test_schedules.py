"""Learning-rate schedules: boundary values from their formulas, torch parity, plain-data round trips,
validation, the ``npoptim schedule`` command, and the Momentum-vs-torch convention under a changing rate.

Convention under test: ``sched(t)`` is the rate of the update that follows ``t`` applied updates
(``t`` from 0).  A torch scheduler stepped after every ``optimizer.step()`` holds ``sched(k)`` in
``group["lr"]`` before the ``(k + 1)``-th ``optimizer.step()``.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from npoptim.cli import main
from npoptim.optimizers.base import nonnegative
from npoptim.schedules import (
    SCHEDULES,
    Constant,
    CosineDecay,
    CosineRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    OneCycle,
    Schedule,
    StepDecay,
    Warmup,
    resolve_lr,
    schedule_from_dict,
    validate_lr,
)
from numerics import assert_within, gamma, unit_roundoff

EXAMPLES = [
    Constant(lr=0.05),
    StepDecay(lr=0.1, step_size=7, gamma=0.5),
    ExponentialDecay(lr=0.1, gamma=0.99),
    InverseTimeDecay(lr=0.1, decay=0.01),
    CosineDecay(lr=0.1, decay_steps=50, min_lr=1e-3),
    CosineRestarts(lr=0.1, period=10, period_mult=2, min_lr=1e-3),
    Warmup(steps=5, start_lr=0.01, schedule=CosineDecay(lr=0.1, decay_steps=20)),
    Warmup(steps=3, schedule=Warmup(steps=2, start_lr=0.02, schedule=StepDecay(lr=0.1, step_size=4))),
    OneCycle(max_lr=0.1, total_steps=100),
    OneCycle(max_lr=0.2, total_steps=40, pct_start=0.25, div_factor=10, final_div_factor=100, anneal_strategy="linear"),
]


def test_registry_lists_every_schedule_once_by_its_name():
    assert set(SCHEDULES) == {
        "constant",
        "step",
        "exponential",
        "inverse_time",
        "cosine",
        "cosine_restarts",
        "warmup",
        "onecycle",
    }
    for name, cls in SCHEDULES.items():
        assert cls.name == name and issubclass(cls, Schedule)
    assert {type(s) for s in EXAMPLES} == set(SCHEDULES.values())


# --- values at boundaries, from the formulas -----------------------------------------------------


def test_constant():
    assert Constant(lr=0.3).values(5).tolist() == [0.3] * 5


def test_step_decay_boundaries():
    s = StepDecay(lr=0.1, step_size=4, gamma=0.5)
    # floor(t / 4): 0 for t < 4, 1 for 4 <= t < 8, 2 at t = 8
    assert [s(t) for t in (0, 3, 4, 7, 8)] == [0.1, 0.1, 0.05, 0.05, 0.025]  # exact: powers of 0.5 scale exactly
    # exact: lr * gamma**0 = lr and lr * gamma**1 = lr * gamma (pow with exponent 0 or 1 is exact); 0.1**2 is one pow
    assert StepDecay(lr=1.0, step_size=3).values(7).tolist() == [1, 1, 1, 0.1, 0.1, 0.1, pytest.approx(0.01)]


def test_exponential_decay_ratio_and_decay_rate_mapping():
    s = ExponentialDecay(lr=0.2, gamma=0.9)
    v = s.values(50)
    assert v[0] == 0.2  # exact: 0.9**0 = 1
    # each v[t] = lr * gamma**t: pow (libm, <= 1 ULP = 2u) then a product (u); the ratio adds one division
    assert_within(v[1:] / v[:-1], 0.9, 0.9 * gamma(7), "ratio of consecutive rates")
    # Keras/optax "decay_rate r over decay_steps T" is gamma = r ** (1 / T): the rate is lr * r at t = T
    r, T = 0.1, 250
    # gamma's own error (pow: 2u, 1/T: u * |ln r| / T) is raised to the power T: 250 * 2u, plus pow, the
    # product and the expected product: 2u + u + u; so gamma(2 * T + 8)
    assert ExponentialDecay(lr=0.2, gamma=r ** (1 / T))(T) == pytest.approx(0.2 * r, rel=gamma(2 * T + 8), abs=0)


def test_inverse_time_decay_halves_at_one_over_k_and_reciprocal_is_linear():
    s = InverseTimeDecay(lr=0.1, decay=0.01)
    assert s(0) == 0.1  # exact: 0.1 / (1 + 0.01 * 0)
    assert s(100) == 0.05  # exact: fl(0.01 * 100) = 1, 1 + 1 = 2 and 0.1 / 2 are exact (IEEE, any machine)
    inv = 1.0 / s.values(300)
    # inv[t] carries 4 roundings (k t, 1 + k t, the division, the reciprocal): gamma(4) inv[t] each; the
    # expected 0.01 / 0.1 and the difference add 2 more relative to the slope
    assert_within(np.diff(inv), 0.01 / 0.1, gamma(4) * (inv[1:] + inv[:-1]) + gamma(2) * 0.1, "1/lr slope")


def test_cosine_decay_boundaries_symmetry_and_floor():
    lr, lo, T = 0.1, 0.01, 40
    s = CosineDecay(lr=lr, decay_steps=T, min_lr=lo)
    assert s(0) == lr  # exact here: cos(0) = 1 in every libm, then lo + fl(lr - lo) = lr (IEEE, any machine)
    # cos(fl(pi)/2) ~ 6e-17 < u: 1 + c rounds to 1; then 2 roundings (lr - lo, + lo) vs 1 (+, /2 exact): <= 3u
    assert s(T // 2) == pytest.approx((lr + lo) / 2, rel=gamma(3), abs=0)
    assert s(T) == pytest.approx(lo, rel=gamma(3), abs=0)  # cos(fl(pi)) = -1 to within 1 ULP: 1 + c ~ 0
    assert s(T + 1) == s(T + 1000) == s(T)  # held at the floor: the same call min(t, T) -> the same bits
    v = s.values(T + 1)
    # point symmetry about (T/2, mid): cos(pi x) + cos(pi (1 - x)) = 0 exactly; computed, each cos has the
    # argument's error (x = t/T, fl(pi), the product: gamma(3) pi, times |sin| <= 1) and libm's <= 1 ULP (2u),
    # scaled by (lr - lo)/2; then 4 roundings of each value and the sum's
    cos_err = math.pi * gamma(3) + 2 * unit_roundoff()
    assert_within(v + v[::-1], lr + lo, (lr - lo) * cos_err + gamma(5) * 2 * (lr + lo), "cosine symmetry")
    assert np.all(np.diff(v) < 0)


def test_cosine_restarts_restart_points_and_periods():
    lr, lo = 0.1, 0.001
    s = CosineRestarts(lr=lr, period=10, period_mult=2, min_lr=lo)
    # periods 10, 20, 40, 80: restarts at t = 0, 10, 30, 70, 150
    for t in (0, 10, 30, 70, 150):
        assert s(t) == lr  # exact: t_cur = 0 (integer arithmetic), cos(0) = 1
    # the last step of each period: cos(pi (T_i - 1) / T_i)
    for t, T_i in ((9, 10), (29, 20), (69, 40), (149, 80)):
        # the same formula, its argument rounded in another order (pi (T-1)/T vs pi * ((T-1)/T)): |sin| pi
        # gamma(3) + two libm calls (2 ULP) on the cosine, times (lr - lo)/2, against a value >= lo
        bound = (lr - lo) / 2 * (math.pi * gamma(3) + 4 * unit_roundoff()) + gamma(4) * lr
        want = lo + (lr - lo) / 2 * (1 + math.cos(math.pi * (T_i - 1) / T_i))
        assert abs(s(t) - want) <= bound, (t, s(t), want)
    assert s(20) == pytest.approx((lr + lo) / 2, rel=gamma(3), abs=0)  # middle of the second period (as above)
    v = s.values(150)
    jumps = np.flatnonzero(np.diff(v) > 0) + 1
    assert jumps.tolist() == [10, 30, 70]
    periodic = CosineRestarts(lr=lr, period=7).values(70)
    # bit-exact: t % 7 is integer arithmetic, so each period repeats the same calls on the same arguments
    np.testing.assert_array_equal(periodic.reshape(10, 7), np.tile(periodic[:7], (10, 1)))


def test_warmup_ramp_then_inner_from_its_own_step_zero():
    inner = CosineDecay(lr=0.1, decay_steps=20, min_lr=0.0)
    s = Warmup(steps=10, start_lr=0.02, schedule=inner)
    assert s(0) == 0.02  # exact: start + (peak - start) * 0
    assert s(5) == pytest.approx((0.02 + 0.1) / 2, rel=gamma(3), abs=0)  # 3 roundings (-, *, +) vs 2 (+, /2 exact)
    assert np.all(np.diff(s.values(11)) > 0)
    for k in range(25):
        assert s(10 + k) == inner(k)  # bit-exact: Warmup calls inner._value(t - steps), the same call
    assert s(30) == 0.0  # floor reached W + T updates in: cos(fl(pi)) + 1 = 0 exactly (-1 correctly rounded)
    assert Warmup(steps=4, schedule=Constant(lr=1.0)).values(6).tolist() == [0, 0.25, 0.5, 0.75, 1, 1]


def test_one_cycle_defaults_and_phases():
    T, max_lr = 1000, 0.1
    s = OneCycle(max_lr=max_lr, total_steps=T)
    v = s.values(T)
    peak = round(0.3 * T - 1)  # pct_start * T - 1 = 299
    # t = 0: max + (initial - max)/2 * (cos(0) + 1) cancels to 0.004: 3 roundings of terms <= max_lr
    assert v[0] == pytest.approx(max_lr / 25, rel=0, abs=gamma(3) * max_lr)
    # the peak: frac = 299/299 = 1, 1 + cos(fl(pi)) = 0 (libm within 1 ULP of -1: <= 2u * 0.05 off)
    assert v[peak] == pytest.approx(max_lr, rel=gamma(3), abs=0) and v.argmax() == peak
    assert v[-1] == max_lr / 25 / 1e4  # bit-exact: t >= last returns max_lr / div / final_div, these divisions
    assert s(T) == s(10 * T) == v[-1]  # bit-exact: t >= last returns the same stored expression
    assert np.all(np.diff(v[: peak + 1]) > 0) and np.all(np.diff(v[peak:]) < 0)
    lin = OneCycle(
        max_lr=1.0, total_steps=11, pct_start=0.5, div_factor=2, final_div_factor=5, anneal_strategy="linear"
    )
    # peak at 0.5 * 11 - 1 = 4.5: rising 0.5 -> 1 over 4.5 steps, falling 1 -> 0.1 over 5.5 steps
    expected = [0.5 + 0.5 * t / 4.5 for t in range(5)] + [1 - 0.9 * (t - 4.5) / 5.5 for t in range(5, 11)]
    # the same line in another order: <= 4 roundings on each side, each relative to at most 1 = max_lr
    assert_within(lin.values(11), expected, 2 * gamma(4) * 1.0, "linear one-cycle")


def test_values_shapes_and_agreement_with_call():
    for s in EXAMPLES:
        v = s.values(37)
        assert v.shape == (37,) and v.dtype == np.float64
        assert v.tolist() == [s(t) for t in range(37)]  # bit-exact: values(n) calls the same _value(t)
        assert np.all(v >= 0) and np.all(np.isfinite(v))
        assert s.values(0).shape == (0,)
        assert s(np.int64(3)) == v[3] and isinstance(s(3), float)


# --- torch parity --------------------------------------------------------------------------------


def _torch_lrs(make_scheduler, n: int, lr: float) -> np.ndarray:
    """group["lr"] before each of n optimizer steps, the scheduler stepped after each."""
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_scheduler(opt, torch.optim.lr_scheduler)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


TORCH_CASES = [
    ("StepLR", StepDecay(lr=0.1, step_size=7, gamma=0.5), 100, lambda o, L: L.StepLR(o, 7, 0.5)),
    ("ExponentialLR", ExponentialDecay(lr=0.1, gamma=0.99), 1000, lambda o, L: L.ExponentialLR(o, 0.99)),
    ("CosineAnnealingLR", CosineDecay(lr=0.1, decay_steps=500), 501, lambda o, L: L.CosineAnnealingLR(o, 500)),
    (
        "CosineAnnealingLR-eta_min",
        CosineDecay(lr=0.1, decay_steps=300, min_lr=1e-3),
        301,
        lambda o, L: L.CosineAnnealingLR(o, 300, eta_min=1e-3),
    ),
    (
        "CosineAnnealingWarmRestarts",
        CosineRestarts(lr=0.1, period=10, period_mult=2, min_lr=1e-3),
        500,
        lambda o, L: L.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=1e-3),
    ),
    (
        "CosineAnnealingWarmRestarts-mult1",
        CosineRestarts(lr=0.1, period=13),
        200,
        lambda o, L: L.CosineAnnealingWarmRestarts(o, T_0=13),
    ),
    (
        "OneCycleLR",
        OneCycle(max_lr=0.1, total_steps=1000),
        1000,
        lambda o, L: L.OneCycleLR(o, max_lr=0.1, total_steps=1000, cycle_momentum=False),
    ),
    (
        "OneCycleLR-custom",
        OneCycle(max_lr=0.3, total_steps=77, pct_start=0.4, div_factor=10.0, final_div_factor=50.0),
        77,
        lambda o, L: L.OneCycleLR(
            o, max_lr=0.3, total_steps=77, pct_start=0.4, div_factor=10.0, final_div_factor=50.0, cycle_momentum=False
        ),
    ),
    (
        "LinearLR-warmup",
        Warmup(steps=10, start_lr=0.01, schedule=Constant(lr=0.1)),
        30,
        lambda o, L: L.LinearLR(o, start_factor=0.1, total_iters=10),
    ),
    (
        "SequentialLR-warmup-cosine",
        Warmup(steps=10, start_lr=0.025, schedule=CosineDecay(lr=0.1, decay_steps=50)),
        61,
        lambda o, L: L.SequentialLR(
            o, [L.LinearLR(o, start_factor=0.25, total_iters=10), L.CosineAnnealingLR(o, 50)], milestones=[10]
        ),
    ),
]


def _cos_err(x):
    """|computed - exact| of cos(pi x) for a rounded x in [0, 1] (either library, Python's math.cos):
    the argument pi * x carries gamma(3) relative error (x = t/T, fl(pi), the product), times |sin|; libm's
    cos is within 1 ULP of its argument's cosine."""
    x = np.asarray(x, dtype=float)
    return math.pi * x * gamma(3) * np.abs(np.sin(np.pi * x)) + np.spacing(np.abs(np.cos(np.pi * x)))


def _closed_cosine_err(hi, lo, x):
    """Error of lo + (hi - lo)/2 (1 + cos(pi x)) as computed (ours, or torch's closed forms): the cosine's
    error scaled by (hi - lo)/2, and 4 roundings (hi - lo, 1 + c, the product, + lo) of at most hi."""
    return (hi - lo) / 2 * _cos_err(x) + gamma(4) * hi


def _recursive_cosine_err(hi, lo, T, n):
    """Error of torch's CosineAnnealingLR recurrence D_s = D_{s-1} (1 + c_s) / (1 + c_{s-1}), D = lr - lo:
    an error in D_{s-1} is scaled by the ratio r_s <= 1; each step adds the two cosines' errors, relative
    to 1 + c (numerator) and 1 + c_{s-1} (denominator), i.e. (hi - lo)/2 (e_s + r_s e_{s-1}) in absolute
    terms, and 4 roundings (ratio, product, - lo, + lo) of at most the value."""
    s = np.minimum(np.arange(n), T)
    c = np.cos(np.pi * s / T)
    e = _cos_err(s / T)
    err = np.zeros(n)
    for t in range(1, n):
        r = (1 + c[t]) / (1 + c[t - 1]) if 1 + c[t - 1] > 0 else 1.0
        err[t] = err[t - 1] * r + (hi - lo) / 2 * (e[t] + r * e[t - 1]) + gamma(4) * (lo + (hi - lo) / 2 * (1 + c[t]))
    return err


def _gammas(m):
    """gamma(m) element-wise, for an array of rounding counts m."""
    mu = np.asarray(m, dtype=float) * unit_roundoff()
    return mu / (1 - mu)


def _parity_bound(label, ours, n):
    """|ours - torch| allowed at each t: each side's error from its own formula (docstrings above)."""
    t = np.arange(n)
    v = ours.values(n)
    if label == "ExponentialLR":  # torch: lr *= gamma each step (t roundings); ours: one pow (2u) and a product
        return _gammas(t + 3) * v
    if label.startswith("CosineAnnealingLR"):  # torch's recurrence vs our closed form
        T = ours.decay_steps
        return _recursive_cosine_err(ours.lr, ours.min_lr, T, n) + _closed_cosine_err(ours.lr, ours.min_lr, t / T)
    if label.startswith("CosineAnnealingWarmRestarts"):  # two closed forms, the argument rounded differently
        x = np.empty(n)
        for i in range(n):
            period, t_cur = ours.period, i
            while t_cur >= period:
                t_cur, period = t_cur - period, period * ours.period_mult
            x[i] = t_cur / period
        return 2 * _closed_cosine_err(ours.lr, ours.min_lr, x)
    if label == "LinearLR-warmup":  # torch: lr *= 1 + (1 - f)/(T f + (t - 1)(1 - f)) each step: 5 roundings
        return _gammas(5 * np.minimum(t, ours.steps) + 3) * v
    if label == "SequentialLR-warmup-cosine":  # LinearLR for W steps, then CosineAnnealingLR from lr
        W, inner = ours.steps, ours.schedule
        bound = _gammas(5 * np.minimum(t, W) + 3) * v
        cos_part = _recursive_cosine_err(inner.lr, inner.min_lr, inner.decay_steps, n - W)
        cos_part += _closed_cosine_err(
            inner.lr, inner.min_lr, np.minimum(t[: n - W], inner.decay_steps) / inner.decay_steps
        )
        bound[W:] = cos_part
        return bound
    raise AssertionError(f"no error budget for {label}")


#: torch runs the very operations ours does, so the same bits: StepLR multiplies by gamma = 0.5 at each
#: milestone (powers of two scale exactly, as 0.5**k does); OneCycleLR's _annealing_cos is our _cosine,
#: term for term, on the same pct (same divisions), and both call Python's math.cos in this process.
SAME_OPS = {"StepLR", "OneCycleLR", "OneCycleLR-custom"}


@pytest.mark.parametrize(("label", "ours", "n", "make"), TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_parity_with_torch_lr_scheduler(label, ours, n, make):
    lr = ours.schedule(0) if isinstance(ours, Warmup) else getattr(ours, "lr", getattr(ours, "max_lr", None))
    theirs = _torch_lrs(make, n, lr)
    if label in SAME_OPS:
        np.testing.assert_array_equal(ours.values(n), theirs)
    else:
        assert_within(ours.values(n), theirs, _parity_bound(label, ours, n), label)


def test_parity_with_torch_one_cycle_linear():
    ours = OneCycle(max_lr=0.1, total_steps=37, pct_start=0.25, anneal_strategy="linear")
    theirs = _torch_lrs(
        lambda o, L: L.OneCycleLR(
            o, max_lr=0.1, total_steps=37, pct_start=0.25, anneal_strategy="linear", cycle_momentum=False
        ),
        37,
        0.1,
    )
    # torch's last value is (end - start) * 1 + start with end = 4e-7, start = 0.1: the sum cancels to
    # an absolute error of ~1e-17 (relative 1e-11); ours returns end exactly.  Relative 1e-12 elsewhere.
    # bit-exact elsewhere: torch's _annealing_linear (end - start) * pct + start is our a + (b - a) * frac
    np.testing.assert_array_equal(ours.values(37)[:-1], theirs[:-1])
    assert ours(36) == 0.1 / 25 / 1e4  # bit-exact: the same two divisions
    assert abs(theirs[-1] - ours(36)) <= gamma(2) * 0.1  # torch's sum: 2 roundings of terms <= start = 0.1


def test_inverse_time_matches_torch_adagrad_lr_decay():
    """torch.optim.Adagrad uses lr / (1 + (step - 1) lr_decay) at its 1-based step: our t = step - 1.

    With g = 1 on every step and eps = 0, Adagrad's state sum is n after step n, so a parameter reset
    to 0 before step n moves to -clr_n / sqrt(n): clr_n = -p * sqrt(n).
    """
    torch = pytest.importorskip("torch")
    ours = InverseTimeDecay(lr=0.1, decay=0.05)
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.Adagrad([p], lr=0.1, lr_decay=0.05, eps=0.0)
    clr = []
    for n in range(1, 101):
        with torch.no_grad():
            p.zero_()
        p.grad = torch.ones(1, dtype=torch.float64)
        opt.step()
        clr.append(-p.item() * math.sqrt(n))
    # torch: lr / (1 + (step-1) k) (3 roundings), sqrt(n), the division, -p * sqrt(n) here (2 more);
    # ours: 3 roundings -- gamma(10) relative
    assert_within(ours.values(100), clr, gamma(10) * ours.values(100), "Adagrad lr_decay")


# --- plain data ------------------------------------------------------------------------------------


def _only_json_scalars(x) -> bool:
    if isinstance(x, dict):
        return all(isinstance(k, str) and _only_json_scalars(v) for k, v in x.items())
    return isinstance(x, (int, float, str)) and not isinstance(x, bool)


@pytest.mark.parametrize("s", EXAMPLES, ids=lambda s: type(s).__name__)
def test_to_dict_round_trip_gives_equal_object_and_values(s):
    d = s.to_dict()
    assert set(d) == {"name", "args"} and d["name"] == s.name
    assert _only_json_scalars(d)
    back = schedule_from_dict(json.loads(json.dumps(d)))
    assert back == s and type(back) is type(s) and hash(back) == hash(s)
    np.testing.assert_array_equal(back.values(120), s.values(120))  # bit-exact: equal fields, the same calls


def test_to_dict_nested_form():
    s = Warmup(steps=3, schedule=StepDecay(lr=0.1, step_size=4))
    assert s.to_dict() == {
        "name": "warmup",
        "args": {
            "steps": 3,
            "schedule": {"name": "step", "args": {"lr": 0.1, "step_size": 4, "gamma": 0.1}},
            "start_lr": 0.0,
        },
    }


def test_ints_given_for_rates_are_stored_as_floats_so_round_trips_compare_equal():
    s = StepDecay(lr=1, step_size=np.int64(5), gamma=1)
    assert s.to_dict()["args"] == {"lr": 1.0, "step_size": 5, "gamma": 1.0}
    assert type(s.lr) is float and type(s.step_size) is int
    assert schedule_from_dict(s.to_dict()) == s


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ({"name": "cosin", "args": {"lr": 0.1, "decay_steps": 3}}, "unknown schedule 'cosin'"),
        ({"name": "cosine", "args": {"lr": 0.1, "decay_steps": 3, "min_lr": 0.0, "alpha": 1}}, r"unknown: \['alpha'\]"),
        ({"name": "cosine", "args": {"lr": 0.1, "min_lr": 0.0}}, r"missing: \['decay_steps'\]"),
        ({"name": "cosine", "args": {"lr": -0.1, "decay_steps": 3, "min_lr": 0.0}}, r"invalid lr=-0\.1"),
        ({"name": "cosine", "args": {"lr": "0.1", "decay_steps": 3, "min_lr": 0.0}}, r"lr must be a real number"),
        ({"name": "step", "args": {"lr": 0.1, "step_size": 2.5, "gamma": 0.1}}, r"step_size must be an integer"),
        ({"name": "cosine", "args": [0.1, 3]}, "args must be a mapping"),
        ({"name": "cosine"}, "expected a mapping with keys"),
        ([("name", "cosine")], "expected a mapping"),
        (
            {"name": "warmup", "args": {"steps": 2, "start_lr": 0.0, "schedule": {"name": "nope", "args": {}}}},
            "unknown schedule 'nope'",
        ),
        (
            {
                "name": "onecycle",
                "args": {
                    "max_lr": 0.1,
                    "total_steps": 10,
                    "pct_start": 0.3,
                    "div_factor": 25.0,
                    "final_div_factor": 1e4,
                    "anneal_strategy": "cosine",
                },
            },
            "anneal_strategy='cosine'",
        ),
    ],
)
def test_schedule_from_dict_rejects_bad_input_naming_it(d, match):
    with pytest.raises(ValueError, match=match):
        schedule_from_dict(d)


# --- validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: Constant(lr=-1.0), ValueError, r"Constant: invalid lr=-1\.0: must be >= 0"),
        (lambda: Constant(lr=float("nan")), ValueError, r"invalid lr=nan: must be finite"),
        (lambda: Constant(lr=True), TypeError, r"lr must be a real number, got True"),
        (lambda: StepDecay(lr=0.1, step_size=0), ValueError, r"StepDecay: invalid step_size=0: must be >= 1"),
        (lambda: StepDecay(lr=0.1, step_size=3, gamma=0.0), ValueError, r"invalid gamma=0\.0: must be > 0"),
        (lambda: ExponentialDecay(lr=0.1, gamma=-0.5), ValueError, r"ExponentialDecay: invalid gamma=-0\.5"),
        (lambda: InverseTimeDecay(lr=0.1, decay=-1e-3), ValueError, r"invalid decay=-0\.001"),
        (lambda: CosineDecay(lr=0.1, decay_steps=-5), ValueError, r"CosineDecay: invalid decay_steps=-5"),
        (lambda: CosineDecay(lr=0.1, decay_steps=10.0), TypeError, r"decay_steps must be an integer, got 10\.0"),
        (lambda: CosineDecay(lr=0.1, decay_steps=10, min_lr=-0.1), ValueError, r"invalid min_lr=-0\.1"),
        (lambda: CosineRestarts(lr=0.1, period=0), ValueError, r"CosineRestarts: invalid period=0"),
        (lambda: CosineRestarts(lr=0.1, period=5, period_mult=0), ValueError, r"invalid period_mult=0"),
        (lambda: CosineRestarts(lr=0.1, period=5, period_mult=1.5), TypeError, r"period_mult must be an integer"),
        (lambda: Warmup(steps=0, schedule=Constant(lr=0.1)), ValueError, r"Warmup: invalid steps=0"),
        (lambda: Warmup(steps=5, schedule=0.1), TypeError, r"Warmup: schedule must be a Schedule, got 0\.1"),
        (lambda: Warmup(steps=5, schedule=Constant(lr=0.1), start_lr=-0.01), ValueError, r"invalid start_lr=-0\.01"),
        (lambda: OneCycle(max_lr=0.1, total_steps=1), ValueError, r"OneCycle: invalid total_steps=1: must be >= 2"),
        (lambda: OneCycle(max_lr=0.1, total_steps=10, pct_start=1.0), ValueError, r"invalid pct_start=1\.0"),
        (lambda: OneCycle(max_lr=0.1, total_steps=10, pct_start=0.1), ValueError, r"pct_start=0\.1 with total_steps"),
        (lambda: OneCycle(max_lr=0.1, total_steps=10, div_factor=0), ValueError, r"invalid div_factor=0\.0"),
        (lambda: OneCycle(max_lr=0.1, total_steps=10, final_div_factor=-1), ValueError, r"final_div_factor=-1\.0"),
        (lambda: OneCycle(max_lr=0.1, total_steps=10, anneal_strategy="cosine"), ValueError, r"anneal_strategy="),
        (lambda: Constant(lr=0.1)(-1), ValueError, r"Constant: invalid step t=-1"),
        (lambda: Constant(lr=0.1)(1.0), TypeError, r"step t must be an integer, got 1\.0"),
        (lambda: Constant(lr=0.1)(True), TypeError, r"step t must be an integer, got True"),
        (lambda: Constant(lr=0.1).values(-3), ValueError, r"invalid steps=-3"),
    ],
)
def test_bad_arguments_raise_naming_argument_and_value(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_arguments_are_keyword_only_and_objects_frozen():
    with pytest.raises(TypeError):
        StepDecay(0.1, 5)  # type: ignore[misc]
    with pytest.raises(TypeError, match="missing"):
        CosineDecay(lr=0.1)  # type: ignore[call-arg]
    s = Constant(lr=0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.lr = 0.2  # type: ignore[misc]


# --- resolve_lr / validate_lr ----------------------------------------------------------------------------


def test_resolve_lr_numbers_and_schedules():
    s = StepDecay(lr=0.1, step_size=2)
    assert [resolve_lr(s, t) for t in range(4)] == [0.1, 0.1, pytest.approx(0.01), pytest.approx(0.01)]
    assert resolve_lr(0.5, 123) == 0.5 and isinstance(resolve_lr(np.float32(0.25), 0), float)
    assert resolve_lr(1, 0) == 1.0 and type(resolve_lr(1, 0)) is float


def test_validate_lr_accepts_schedules_and_checks_numbers_like_base_nonnegative():
    s = CosineDecay(lr=0.1, decay_steps=10)
    assert validate_lr("SGD", "lr", s) is s
    assert validate_lr("SGD", "lr", 0.1) == 0.1 and validate_lr("SGD", "lr", 0) == 0.0
    for bad in (-0.1, float("nan"), float("inf"), "0.1", True, None, [0.1]):
        with pytest.raises((TypeError, ValueError)) as ours:
            validate_lr("Adam", "lr", bad)
        with pytest.raises((TypeError, ValueError)) as base:
            nonnegative("Adam", "lr", bad)
        assert type(ours.value) is type(base.value) and str(ours.value) == str(base.value)
        assert "Adam" in str(ours.value) and "lr" in str(ours.value)
    with pytest.raises(TypeError, match=r"Momentum: lr must be a real number or an npoptim.schedules.Schedule"):
        validate_lr("Momentum", "lr", lambda t: 0.1)


# --- Momentum's convention vs torch's under a changing rate ---------------------------------------------


def _simulate(etas, grads, mu):
    """Both recurrences from their formulas; returns the displacements w_k - w_{k-1}.

    ours (npoptim Momentum): v <- mu v - eta_t g;  w <- w + v
    torch SGD(momentum):    b <- mu b + g;        w <- w - eta_t b
    """
    v = b = 0.0
    ours, torch_like = [], []
    for eta, g in zip(etas, grads, strict=True):
        v = mu * v - eta * g
        b = mu * b + g
        ours.append(v)
        torch_like.append(-eta * b)
    return np.array(ours), np.array(torch_like)


def test_momentum_conventions_agree_for_constant_rate_and_differ_as_derived_after_a_step_change():
    mu, eta, k, n = 0.9, 0.1, 200, 400  # one halving, at t = k (the next would be at 2k = n)
    rng = np.random.default_rng(0)
    g = rng.normal(size=n)
    const = Constant(lr=eta).values(n)
    a, b = _simulate(const, g, mu)
    # v = -eta b when eta is constant.  Rounding: each step adds <= 3u (v: mu v, eta g, the difference) and
    # 2u (b), of at most 2 S (S = max |v|); mu < 1 damps an old error, so the sum is <= (3 + 2) 2u S / (1 - mu),
    # plus the final -eta b (u): gamma(10) S / (1 - mu) + gamma(1) S
    scale = np.abs(b).max()
    bound = (gamma(10) / (1 - mu) + gamma(1)) * scale
    assert_within(a, b, bound, "constant rate")

    sched = StepDecay(lr=eta, step_size=k, gamma=0.5)  # eta halves at t = k
    etas = sched.values(n)
    a, b = _simulate(etas, g, mu)
    assert_within(a[:k], b[:k], bound, "before the change")  # as above
    # at step k: ours = mu v_{k-1} - eta' g_k with v_{k-1} = -eta b_{k-1} (old rate kept),
    # torch = -eta' (mu b_{k-1} + g_k): the whole buffer at the new rate.  Difference -(eta - eta') mu b_{k-1}.
    _, b_prev = _simulate(etas[:k], g[:k], mu)
    buf_prev = -b_prev[-1] / eta  # b_{k-1}
    bound = (gamma(10) / (1 - mu) + gamma(1)) * max(scale, np.abs(a).max())  # both runs' errors, as above
    assert a[k] - b[k] == pytest.approx(-(eta - eta / 2) * mu * buf_prev, rel=gamma(4), abs=2 * bound)
    # and in general ours_{k+n} - torch_{k+n} = -(eta - eta') mu^{n+1} b_{k-1}: decays geometrically
    m = np.arange(0, n - k)
    predicted = -(eta / 2) * mu ** (m + 1) * buf_prev  # mu**(m+1): pow (2u) + 3 roundings, gamma(5) relative
    assert_within(a[k:] - b[k:], predicted, 2 * bound + gamma(5) * np.abs(predicted), "after the change")


def test_momentum_conventions_extra_distance_under_constant_gradient():
    """From steady state under g = 1 (b = 1/(1-mu)), halving eta: torch's step is halved at once
    (-eta'/(1-mu)); ours is -[eta' + (eta - eta') mu^{n+1}]/(1-mu) at n steps after the change, so ours
    travels (eta - eta') mu / (1-mu)^2 farther in total."""
    mu, eta, k, n = 0.8, 0.2, 300, 600  # mu^300 ~ 1e-29: steady state at k; one halving before n = 2k
    etas = StepDecay(lr=eta, step_size=k, gamma=0.5).values(n)
    a, b = _simulate(etas, np.ones(n), mu)
    # Rounding budget: the recurrences reach floating-point fixed points within u / (1 - mu) per rounding
    # (2 for b, 3 for v: 10u, 15u relative), then a few roundings of the step and of the expected value.
    fixed = 3 / (1 - mu)  # in units of u: v's three roundings, damped by 1 - mu
    # torch: next step halved entirely
    assert b[k] == pytest.approx(0.5 * b[k - 1], rel=gamma(2 * round(fixed) + 4), abs=0)
    # ours: old velocity kept
    assert a[k] == pytest.approx(-(eta / 2 + eta / 2 * mu) / (1 - mu), rel=gamma(round(fixed) + 7), abs=0)
    assert a[k] / a[k - 1] == pytest.approx((1 + mu) / 2, rel=gamma(2 * round(fixed) + 4), abs=0)
    # n - k differences of values of scale eta / (1 - mu) = 1, each off by both fixed points' errors (2 * 15u +
    # 4u), summed (gamma(n - k) of the sum of |terms| <= 1); the expected value is 2
    total = np.sum(a[k:] - b[k:])
    assert abs(total - (-(eta / 2) * mu / (1 - mu) ** 2)) <= (n - k) * gamma(2 * round(fixed) + 4) + gamma(n - k) * 2.0


# --- the npoptim schedule command -------------------------------------------------------------------------


def test_cli_schedule_writes_a_real_png_and_results(tmp_path):
    from PIL import Image

    out = tmp_path / "plots"
    warm = json.dumps(Warmup(steps=20, schedule=CosineRestarts(lr=0.05, period=30, period_mult=2)).to_dict())
    rc = main(
        [
            "schedule",
            "--schedule",
            "cosine:lr=0.1,decay_steps=200",
            "--schedule",
            "onecycle:max_lr=0.1,total_steps=200",
            "--schedule",
            warm,
            "--steps",
            "200",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    png = out / "schedules.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        assert im.size == (800, 500)
        rgb = np.asarray(im.convert("RGB")).reshape(-1, 3)
    assert rgb.std() > 10 and len(np.unique(rgb, axis=0)) > 50  # not blank
    for colour in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E), (0x2C, 0xA0, 0x2C)):  # the three lines (C0, C1, C2)
        assert np.count_nonzero((rgb == colour).all(axis=1)) > 200
    res = json.loads((out / "results.json").read_text())
    assert res["steps"] == 200 and len(res["schedules"]) == 3
    cos, one, wu = res["schedules"]
    assert cos["first"] == 0.1 and cos["argmax"] == 0  # exact: cos(0) = 1, min_lr 0; JSON keeps repr's digits
    assert one["max"] == pytest.approx(0.1, rel=gamma(3), abs=0) and one["argmax"] == 59  # 0.3 * 200 - 1 (as above)
    assert one["first"] == pytest.approx(0.1 / 25) and one["last"] == pytest.approx(0.1 / 25 / 1e4)
    assert schedule_from_dict(wu["schedule"]) == Warmup(
        steps=20, schedule=CosineRestarts(lr=0.05, period=30, period_mult=2)
    )
    assert wu["first"] == 0.0 and wu["argmax"] == 20
    assert "schedules.png" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--schedule", "cosine:lr=-0.5,decay_steps=100"], "lr=-0.5"),
        (["--schedule", "cosin:lr=0.1"], "'cosin'"),
        (["--schedule", "step:lr=0.1,step_size=10,gama=0.5"], "['gama']"),
        (["--schedule", "step:lr=0.1"], "['step_size']"),
        (["--schedule", "constant:lr=0.1", "--steps", "0"], "--steps=0"),
        (["--schedule", '{"name": "warmup", "args": {"steps": 5}'], "invalid JSON"),
    ],
)
def test_cli_schedule_bad_argument_exits_2_with_one_line(tmp_path, capsys, argv, named):
    rc = main(["schedule", *argv, "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("npoptim schedule: error:")
    assert named in err
    assert not (tmp_path / "o").exists()
