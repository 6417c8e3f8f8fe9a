"""The explorer's numbers, without a browser: state checking, the view computed through run_path, tuning, theory."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from npoptim.engine.paths import run_path
from npoptim.engine.theory import spectral_radius
from npoptim.explore.compute import compute_view, contour, tune
from npoptim.explore.state import (
    HYPER_MAX,
    LR_MAX,
    LR_MIN,
    MAX_STEPS,
    ViewState,
    clamp,
    default_state,
    from_query,
    to_query,
)
from npoptim.optimizers.registry import ALL_OPTIMIZERS, BOOK_OPTIMIZERS, OPTIMIZERS, create_optimizer
from numerics import assert_within, unit_roundoff

U = unit_roundoff()


def test_default_state_is_the_books_figure():
    s = default_state()
    assert s.function == "anisotropic" and s.start == (-7.0, 2.0) and s.steps == 30
    assert s.names == s.shown == BOOK_OPTIMIZERS
    assert s.lrs == {"sgd": 0.95, "momentum": 0.1, "nesterov": 0.1, "adagrad": 1.5, "rmsprop": 0.1, "adam": 0.3}
    assert s.hyper["momentum"] == {"momentum": 0.9} and s.hyper["adam"] == {"beta1": 0.9, "beta2": 0.999}


def test_every_registered_optimizer_gets_its_controls_and_a_path():
    """Every rule of ``--optimizers all``: the element-wise ones, the whole-tensor ones and muon+adamw."""
    s = default_state(names=tuple(ALL_OPTIMIZERS))
    view = compute_view(s)
    assert list(view["optimizers"]) == list(ALL_OPTIMIZERS) and set(OPTIMIZERS) < set(ALL_OPTIMIZERS)
    for name, entry in view["optimizers"].items():
        opt = create_optimizer(name, lr=s.lrs[name], **s.hyper[name])
        np.testing.assert_array_equal(entry["path"], run_path("anisotropic", opt, s.start, 30).points, err_msg=name)
    json.dumps(view, allow_nan=False)  # strict JSON: non-finite numbers are None


def test_the_query_round_trips_every_field():
    s = default_state("booth")
    s = replace(s, shown=("sgd", "adam"), steps=77, start=(1.5, -2.25), inspect="adam",
                lrs={**s.lrs, "sgd": 0.0123, "adam": 0.5}, hyper={**s.hyper, "adam": {"beta1": 0.8, "beta2": 0.99}})
    back, notes = from_query(to_query(s), s.names)
    assert back == s and notes == []
    for at, tuned in ((12, ("sgd", "adam")), (0, ("momentum",)), (None, ())):  # the scrub position, the Tune
        t = replace(s, at=at, tuned=tuned)
        back, notes = from_query(to_query(t), s.names)
        assert back == t and back != replace(t, at=5) and notes == []
    assert "at=" not in to_query(s) and "tuned=" not in to_query(s)


@pytest.mark.parametrize(("query", "field", "value", "note"), [
    ("steps=0", "steps", 1, "steps=0 is below the limit 1"),
    (f"steps={MAX_STEPS * 10}", "steps", MAX_STEPS, "above the limit 1000"),
    ("steps=abc", "steps", 30, "steps='abc' is not a finite number"),
    ("sgd.lr=nan", "lr", 0.95, "sgd.lr='nan' is not a finite number"),
    ("sgd.lr=-1", "lr", LR_MIN, "sgd.lr=-1 is below the limit"),
    ("sgd.lr=1e308", "lr", LR_MAX, "sgd.lr=1e+308 is above the limit 10"),
    ("sgd.lr=inf", "lr", 0.95, "not a finite number"),
    ("momentum.momentum=1.5", "momentum", HYPER_MAX, "momentum.momentum=1.5 is above the limit 0.9999"),
    ("start=1e9,2", "start", (10.0, 2.0), "start x=1e+09 is above the limit 10"),
    ("start=1", "start", (-7.0, 2.0), "expected two numbers"),
    ("show=sgd,nope", "shown", ("sgd",), "unknown optimizer(s) 'nope'"),
    ("function=sphere", "function", "anisotropic", "unknown function 'sphere'"),
    ("function=quadratic:dim=3", "function", "anisotropic", "3-dimensional"),
    ("sgd.beta1=0.5", "function", "anisotropic", "unknown URL parameter 'sgd.beta1'"),
    ("inspect=zzz", "inspect", "sgd", "inspect='zzz': unknown optimizer"),
    ("steps=40&at=41", "at", None, "at=41 is above the limit 40: 40 used"),  # 40 is the last: no `at`
    ("at=-2", "at", 0, "at=-2 is below the limit 0"),
    ("at=x", "at", None, "at='x' is not a finite number"),
    ("tuned=sgd,nope", "tuned", ("sgd",), "tuned: unknown optimizer(s) 'nope' ignored"),
])
def test_bad_url_values_are_clamped_or_replaced_and_named(query, field, value, note):
    s, notes = from_query("?" + query, BOOK_OPTIMIZERS)
    got = {"lr": s.lrs["sgd"], "momentum": s.hyper["momentum"]["momentum"]}.get(field, getattr(s, field, None))
    assert got == value
    assert any(note in n for n in notes), notes
    compute_view(s)  # and the clamped state computes


def test_garbage_from_the_page_controls_is_clamped_not_raised():
    from npoptim.explore.app import _state_from

    base = default_state()
    values = [None, "x", float("nan"), [1, 2], None]
    for n in base.names:
        values += [None, "not-a-number"] + [{"a": 1}] * len(base.hyper[n])
    s = _state_from(values, base)
    assert s.shown == () and s.steps == 30 and s.start == (-7.0, 2.0) and s.lrs == base.lrs
    assert s.messages  # every replacement said


def test_a_diverging_path_is_reported_and_kept_until_it_stops():
    s = replace(default_state(), lrs={**default_state().lrs, "sgd": 1.5}, steps=1000)
    view = compute_view(s)
    sgd = view["optimizers"]["sgd"]
    # |1 - 2 * 1.5| = 2: y doubles every update until the run's blow-up bound (1e20 times f's start value) stops it.
    assert sgd["diverged"] and sgd["stopped"] and 30 < sgd["steps_done"] < 1000
    assert any("SGD (lr 1.5) diverged after" in m for m in view["messages"])
    ref = run_path("anisotropic", create_optimizer("sgd", lr=1.5), s.start, 1000)
    np.testing.assert_array_equal(sgd["path"], ref.points)


def test_per_update_quantities_of_sgd_and_momentum():
    s = replace(default_state(), inspect="sgd")
    ins = compute_view(s)["inspect"]
    path = np.array(compute_view(s)["optimizers"]["sgd"]["path"])
    g = np.array(ins["grad"])
    np.testing.assert_array_equal(g, np.stack([path[:-1, 0] / 10, 2 * path[:-1, 1]], axis=-1))  # the same expression
    # x_k = fl(x_{k-1} - fl(lr g)); (x_{k-1} - x_k) / g then differs from lr by at most the roundings of
    # lr * g, of the subtraction forming x_k (|x_k| u), of the difference and of the division.
    eff = np.array(ins["effective_lr"])
    assert_within(eff, 0.95, 0.95 * 4 * U + 2 * U * np.abs(path[1:]) / np.abs(g), "SGD's effective lr")
    ins = compute_view(replace(s, inspect="momentum"))["inspect"]
    mpath = np.array(compute_view(s)["optimizers"]["momentum"]["path"])
    v = np.array(ins["state"]["v"])
    # w <- w + v: the velocity is the step, up to the rounding of that addition (|x_k| u) and of the difference.
    assert_within(v, mpath[1:] - mpath[:-1], 2 * U * (np.abs(mpath[1:]) + np.abs(v)), "Momentum's velocity")
    adagrad = compute_view(replace(s, inspect="adagrad"))["inspect"]
    assert list(adagrad["state"]) == ["h"]
    h = np.array(adagrad["state"]["h"])
    # AdaGrad's effective lr is lr / (sqrt(h) + eps), which only shrinks (h only grows); as for SGD, up to the
    # roundings of sqrt, + eps, the division and the product with g (8u relative, generously) and of forming x_k.
    eff = np.array(adagrad["effective_lr"])
    apath = np.array(compute_view(s)["optimizers"]["adagrad"]["path"])
    ag = np.array(adagrad["grad"])
    bound = 8 * U * eff + 2 * U * np.abs(apath[1:]) / np.abs(ag)
    assert_within(eff, 1.5 / (np.sqrt(h) + 1e-7), bound, "AdaGrad's effective lr")
    assert np.all(np.diff(eff, axis=0) <= bound[1:] + bound[:-1])


def test_theory_panel_matches_the_spectral_radius_and_the_measured_rate():
    view = compute_view(default_state())
    rows = {r["optimizer"]: r for r in view["theory"]["rows"]}
    assert set(rows) == {"sgd", "momentum", "nesterov"}  # theory covers these only
    eig = [0.1, 2.0]
    assert rows["sgd"]["predicted_rate"] == float(spectral_radius("gd", eig, 0.95))
    assert rows["momentum"]["predicted_rate"] == float(spectral_radius("heavy_ball", eig, 0.1, 0.9))
    # Gradient descent on diag(0.1, 2) with lr 0.95 scales x by 0.905 and y by -0.9 per update, so
    # log E_k = log(a 0.905^2k + b 0.9^2k) / 2 (+ const): convex in k with slope between log 0.9 and
    # log 0.905, and so is its least-squares line; the predicted rho is the larger, 0.905.
    assert 0.9 <= rows["sgd"]["measured_rate"] <= 0.905
    assert compute_view(default_state("rosenbrock"))["theory"] is None


def test_tune_is_the_tuning_of_trajectories_tune():
    from npoptim.experiments.trajectories import compute_trajectories

    cli = compute_trajectories(tune=True).result["tuning"]
    page = tune(default_state())["optimizers"]
    assert {n: t["best_lr"] for n, t in page.items()} == {n: t["best_lr"] for n, t in cli.items()}
    assert {n: t["objective"] for n, t in page.items()} == {
        n: [v if math.isfinite(v) else None for v in t["objective"]] for n, t in cli.items()}


def test_contour_is_the_function_on_its_domain():
    c = contour("anisotropic", points=5)
    assert c["x"] == [-10.0, -5.0, 0.0, 5.0, 10.0] and c["y"] == [-5.0, -2.5, 0.0, 2.5, 5.0]
    assert c["z"][2][2] == round(math.log10(1e-6), 4) and c["z"][0][0] == round(math.log10(100 / 20 + 25 + 1e-6), 4)


def test_clamp_keeps_a_good_state_unchanged():
    s = default_state("himmelblau")
    assert clamp(s) == s and clamp(s).messages == ()
    assert isinstance(s, ViewState)
