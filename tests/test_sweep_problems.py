"""What one sweep run computes, checked against closed forms and against ``npoptim train``'s own code."""

import math

import numpy as np
import pytest

from npoptim.sweeps.problems import make_config, problem_options, run_config


def _cfg(problem, optimizer, tuned, seed=0, steps=50, jitter=0.0, noise=0.0):
    return make_config(problem, problem_options(problem, start_jitter=jitter, grad_noise=noise), optimizer, tuned,
                       seed, steps)


def test_sgd_on_the_anisotropic_quadratic_matches_the_closed_form():
    # f = x^2/20 + y^2 = 1/2 (0.1 x^2 + 2 y^2); SGD: x_t = (1 - 0.1 lr)^t x_0, y_t = (1 - 2 lr)^t y_0
    lr, steps = 0.3, 50
    res = run_config(_cfg("anisotropic", "sgd", {"lr": lr}, steps=steps))
    assert res["status"] == "ok" and not res["diverged"]
    t = res["curve_x"]
    x, y = -7.0 * (1 - 0.1 * lr) ** t, 2.0 * (1 - 2 * lr) ** t
    np.testing.assert_allclose(res["curve"], x**2 / 20 + y**2, rtol=1e-12)
    assert res["final"] == res["curve"][-1]


def test_divergence_is_a_result_not_an_error():
    # |1 - 2 lr| > 1 for lr > 1: gradient descent diverges along y
    res = run_config(_cfg("anisotropic", "sgd", {"lr": 1.5}, steps=400))
    assert res["status"] == "ok" and res["diverged"] and res["final"] == math.inf


def test_seeds_move_the_start_and_runs_are_deterministic():
    a = run_config(_cfg("rosenbrock", "adam", {"lr": 0.01}, seed=1, jitter=0.1))
    b = run_config(_cfg("rosenbrock", "adam", {"lr": 0.01}, seed=1, jitter=0.1))
    c = run_config(_cfg("rosenbrock", "adam", {"lr": 0.01}, seed=2, jitter=0.1))
    np.testing.assert_array_equal(a["curve"], b["curve"])
    assert a["curve"][0] != c["curve"][0]
    # start (-1.2, 1) unperturbed: f = 2.2^2 + 100 (1 - 1.44)^2 = 24.2
    d = run_config(_cfg("rosenbrock", "adam", {"lr": 0.01}, seed=1, jitter=0.0))
    assert d["curve"][0] == pytest.approx(24.2, rel=1e-12)


def test_gradient_noise_changes_the_path():
    a = run_config(_cfg("booth", "sgd", {"lr": 0.01}, noise=0.0))
    b = run_config(_cfg("booth", "sgd", {"lr": 0.01}, noise=1.0))
    assert a["curve"][0] == b["curve"][0] and a["curve"][-1] != b["curve"][-1]


def test_training_run_equals_npoptim_train():
    """With lr alone set, a sweep's digits run ends where ``run_training`` ends for that seed."""
    from npoptim.data import load_digits
    from npoptim.experiments.training import run_training

    opts = problem_options("digits", start_jitter=0, grad_noise=0, hidden=(16,), batch_size=32)
    res = run_config(make_config("digits", opts, "momentum", {"lr": 0.05}, 3, 25))
    assert res["status"] == "ok", res.get("error")
    ref = run_training(load_digits(), optimizers=["momentum"], lrs={"momentum": 0.05}, steps=25, batch_size=32,
                       hidden=(16,), seeds=[3])
    run = ref.results["runs"]["momentum"]["3"]
    assert res["final"] == pytest.approx(run["final_train_loss"], rel=1e-6)
    assert res["metrics"]["held_out_accuracy"] == pytest.approx(run["held_out_accuracy"])
    assert res["curve"][0] > res["curve"][-1]  # it learned something


def test_bad_problems_are_named():
    with pytest.raises(ValueError, match="sphere"):
        _cfg("sphere", "sgd", {"lr": 0.1})
    with pytest.raises(ValueError, match="--data-dir"):
        problem_options("mnist", start_jitter=0, grad_noise=0)
    with pytest.raises(TypeError, match="momentum"):
        _cfg("booth", "sgd", {"momentum": 0.9})
