"""`npoptim trajectories`: the book's figure, facts theory guarantees, fair tuning, the CLI.

Expected values are derived in the docstrings from the update rules and the
test functions' definitions, or computed here independently (eigenvalues of
iteration matrices written out in this file); none is copied from npoptim's output.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from npoptim import BOOK_OPTIMIZERS, OPTIMIZERS, SGD, Adam, Momentum, Nesterov
from npoptim.cli import main
from npoptim.experiments import theory
from npoptim.experiments.trajectories import run_path, run_trajectories
from npoptim.functions import get_function


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """The default run (the book's figure); rates measured over 30 updates only, to keep the test fast."""
    out = tmp_path_factory.mktemp("book")
    return out, run_trajectories(out, theory_steps=30)


def _png(path):
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"), dtype=float), im.size


# --- the book's figure ----------------------------------------------------------------


def test_book_figure_is_a_real_png_of_the_size_set(book):
    out, result = book
    spec = result["figure_specs"]["trajectories"]
    pixels, size = _png(out / result["figures"]["trajectories"])
    w, h = spec["figsize"]
    assert size == (round(w * spec["dpi"]), round(h * spec["dpi"]))
    assert pixels.var() > 0
    # six panels of contours and coloured paths: many distinct colours, not a blank or flat image
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500
    c = result["config"]
    assert c["function"] == "anisotropic" and c["start"] == [-7.0, 2.0] and c["steps"] == 30
    assert c["optimizers"] == list(BOOK_OPTIMIZERS)
    assert {k: c["lrs"][k] for k in ("sgd", "momentum", "adagrad", "adam")} == {
        "sgd": 0.95, "momentum": 0.1, "adagrad": 1.5, "adam": 0.3}


def test_result_json_is_what_was_returned(book):
    out, result = book
    assert json.loads((out / "trajectories.json").read_text()) == result
    table = [line for line in result["summary_markdown"].splitlines() if line.startswith("|")]
    assert result["caption"] and len(table) == len(BOOK_OPTIMIZERS) + 2
    theory_png, _ = _png(out / result["figures"]["theory"])
    assert theory_png.var() > 0
    assert "![trajectories](trajectories.png)" in (out / "trajectories.md").read_text()


def test_sgd_095_flips_the_sign_of_y_every_step(book):
    """f = x^2/20 + y^2, so df/dy = 2y and SGD gives y <- y - 0.95 * 2y = (1 - 1.9) y = -0.9 y,
    and x <- x - 0.95 x / 10 = 0.905 x: y changes sign at every step, x never does."""
    _, result = book
    path = np.array(result["optimizers"]["sgd"]["path"])
    assert len(path) == 31
    y, x = path[:, 1], path[:, 0]
    assert (np.sign(y[1:]) == -np.sign(y[:-1])).all()
    np.testing.assert_allclose(y[1:] / y[:-1], -0.9, rtol=1e-12)
    np.testing.assert_allclose(x[1:] / x[:-1], 0.905, rtol=1e-12)


def test_first_adam_and_adagrad_steps_have_length_eta_sqrt2(book):
    """First AdaGrad step: h = g*g, step = eta g / (|g| + eps) = eta sign(g) (1 - eps/|g|).
    First Adam step: m_hat = g, v_hat = g*g, step = eta g / (|g| + eps).  At (-7, 2), g = (-0.7, 4),
    both coordinates non-zero, so the step is eta (1, -1) and its length eta sqrt(2), to ~eps/|g| < 1e-6."""
    _, result = book
    for name, eta in (("adam", 0.3), ("adagrad", 1.5)):
        path = np.array(result["optimizers"][name]["path"])
        step = path[1] - path[0]
        assert np.linalg.norm(step) == pytest.approx(eta * math.sqrt(2), rel=1e-6)
        np.testing.assert_allclose(step, [eta, -eta], rtol=1e-6)


def test_steps_to_tol_and_distances_agree_with_the_paths(book):
    _, result = book
    tol = result["config"]["tol"]
    for o in result["optimizers"].values():
        path = np.array(o["path"])
        d = np.linalg.norm(path, axis=1)  # the minimiser is the origin
        assert o["distance_to_minimum"] == pytest.approx(d[-1])
        hit = np.flatnonzero(d <= tol)
        assert o["steps_to_tol"] == (int(hit[0]) if hit.size else None)
        assert o["final_point"] == o["path"][-1]


@pytest.mark.parametrize("eta", [1.05, 1.2, 1.5])
def test_gradient_descent_diverges_for_eta_above_one(eta):
    """y <- (1 - 2 eta) y and |1 - 2 eta| > 1 exactly when eta > 1: |y| grows by 2 eta - 1 per step."""
    run = run_path("anisotropic", SGD(lr=eta), (-7.0, 2.0), 30)
    y = run.points[:, 1]
    np.testing.assert_allclose(np.abs(y[1:] / y[:-1]), 2 * eta - 1, rtol=1e-12)
    assert run.diverged and run.values[-1] > run.values[0]
    assert theory.spectral_radius("gd", [0.1, 2.0], eta) > 1


def test_gradient_descent_just_below_one_converges():
    """At eta = 0.99, |1 - 2 eta| = 0.98 < 1 and |1 - eta/10| < 1: both coordinates shrink."""
    run = run_path("anisotropic", SGD(lr=0.99), (-7.0, 2.0), 30)
    assert not run.diverged and np.abs(run.points[-1]).max() < np.abs(run.points[0]).max()


# --- theory -----------------------------------------------------------------------------


def _iteration_matrix(method, lam, eta, mu):
    """Written from the update rules with g = lam * e (e = w - w*):
    GD: e <- (1 - eta lam) e.
    Heavy ball (v <- mu v - eta g; w <- w + v, so v_k = e_k - e_{k-1}): state (e_k, e_{k-1}),
        e_{k+1} = (1 + mu - eta lam) e_k - mu e_{k-1}.
    Nesterov (w <- w + mu^2 v - (1 + mu) eta g; v <- mu v - eta g): state (e, v),
        e' = (1 - (1 + mu) eta lam) e + mu^2 v,  v' = -eta lam e + mu v."""
    if method == "gd":
        return np.array([[1 - eta * lam]])
    if method == "heavy_ball":
        return np.array([[1 + mu - eta * lam, -mu], [1.0, 0.0]])
    return np.array([[1 - (1 + mu) * eta * lam, mu**2], [-eta * lam, mu]])


def _predicted(method, eigenvalues, eta, mu):
    return max(np.abs(np.linalg.eigvals(_iteration_matrix(method, lam, eta, mu))).max() for lam in eigenvalues)


def _measured(distances):
    """exp(slope) of a least-squares line through log sqrt(d_k^2 + d_{k-1}^2) over the second half."""
    d = np.asarray(distances)
    e = np.sqrt(d[1:] ** 2 + d[:-1] ** 2)
    k = np.arange(e.size)[e.size // 2 :]
    return math.exp(np.polyfit(k, np.log(e[k]), 1)[0])


@pytest.mark.parametrize("method", ["gd", "heavy_ball", "nesterov"])
def test_spectral_radius_matches_the_iteration_matrices(method):
    rng = np.random.default_rng(5)
    eig = np.geomspace(0.01, 1.0, 5)
    for _ in range(30):
        eta, mu = rng.uniform(0.01, 4.0), rng.uniform(0.0, 0.99)
        mu_used = 0.0 if method == "gd" else mu
        assert float(theory.spectral_radius(method, eig, eta, mu_used)) == pytest.approx(
            _predicted(method, eig, eta, mu_used), rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("method", ["gd", "heavy_ball", "nesterov"])
@pytest.mark.parametrize("kappa", [10.0, 100.0])
def test_optimal_settings_are_optimal(method, kappa):
    """The closed forms (Polyak 1964; Lessard, Recht & Packard 2016) against a brute-force grid over (eta, mu)."""
    eig = np.array([1.0 / kappa, 1.0])
    opt = theory.optimal_settings(method, 1.0 / kappa, 1.0)
    assert _predicted(method, eig, opt["lr"], opt["momentum"]) == pytest.approx(opt["rate"], abs=1e-6)
    etas = np.linspace(0.05, 4.0, 400)
    mus = np.array([0.0]) if method == "gd" else np.linspace(0.0, 0.99, 200)
    best = float(theory.spectral_radius(method, eig, etas[:, None], mus[None, :]).min())
    assert opt["rate"] <= best + 1e-9
    assert best - opt["rate"] < 5e-3  # the grid comes close to it


def test_tuned_heavy_ball_and_nesterov_beat_tuned_sgd_and_match_theory(tmp_path):
    """On f = x^T A x / 2, kappa(A) = 100, the best GD rate is (kappa-1)/(kappa+1) = 0.980 at any eta, while
    heavy ball and Nesterov at mu = 0.9 reach sqrt(0.9) = 0.949 (complex roots, |z|^2 = c) for a wide
    range of eta: with the same grid and budget both must end lower than SGD.  Their measured
    per-step rates must match the spectral radius of the iteration matrices within 0.01."""
    fn = get_function("quadratic:kappa=100,dim=4")
    result = run_trajectories(
        tmp_path, function=fn.name, optimizers=["sgd", "momentum", "nesterov"], steps=150, tune=True,
        grid=(0.01, 10.0, 10), theory_steps=150)
    o = result["optimizers"]
    grids = [result["tuning"][n]["grid"] for n in ("sgd", "momentum", "nesterov")]
    assert grids[0] == grids[1] == grids[2]
    for name in ("momentum", "nesterov"):
        assert o[name]["lr_source"] == "tuned"
        assert o[name]["final_value"] < 1e-2 * o["sgd"]["final_value"]
    eig = np.linalg.eigvalsh(fn.hessian)
    assert eig.max() / eig.min() == pytest.approx(100)
    for name, method, mu in (("sgd", "gd", 0.0), ("momentum", "heavy_ball", 0.9), ("nesterov", "nesterov", 0.9)):
        d = np.linalg.norm(np.array(o[name]["path"]), axis=1)
        predicted = _predicted(method, eig, o[name]["lr"], mu)
        assert _measured(d) == pytest.approx(predicted, abs=0.01), name
        row = next(r for r in result["theory"]["rows"] if r["optimizer"] == name and r["setting"] == "tuned")
        assert row["predicted_rate"] == pytest.approx(predicted, rel=1e-9)
        assert row["measured_rate"] == pytest.approx(predicted, abs=0.01)
    assert _predicted("heavy_ball", eig, o["momentum"]["lr"], 0.9) < _predicted("gd", eig, o["sgd"]["lr"], 0.0)
    sens, _ = _png(tmp_path / result["figures"]["lr_sensitivity"])
    assert sens.var() > 0


def test_any_registry_entry_works(monkeypatch, tmp_path):
    """An optimizer added to the registry later runs with its own default lr; theory stays out of it."""

    class Slow(SGD):
        def __init__(self, *, lr: float = 0.05, weight_decay: float = 0.0, on_nonfinite: str = "raise") -> None:
            super().__init__(lr=lr, weight_decay=weight_decay, on_nonfinite=on_nonfinite)

    monkeypatch.setitem(OPTIMIZERS, "slow", Slow)
    result = run_trajectories(tmp_path, optimizers=["slow"], steps=3, theory_steps=10)
    o = result["optimizers"]["slow"]
    assert o["lr"] == 0.05 and o["lr_source"] == "optimizer default"
    # y <- (1 - 2 * 0.05) y = 0.9 y
    assert o["path"][1][1] == pytest.approx(1.8)
    assert [r["method"] for r in result["theory"]["rows"]] == [None]
    assert theory.method_of(Momentum()) == "heavy_ball" and theory.method_of(Nesterov(weight_decay=0.1)) is None
    assert theory.method_of(Adam()) is None


# --- the command line ------------------------------------------------------------------------


def test_cli_tune_animate_on_himmelblau(tmp_path, capsys):
    out = tmp_path / "h"
    rc = main(["trajectories", "--function", "himmelblau", "--optimizers", "sgd,adam", "--lr", "sgd=0.01",
               "--start", "0", "0", "--steps", "5", "--tune", "--grid", "0.001", "0.1", "3", "--animate",
               "--out", str(out), "--quiet"])
    assert rc == 0
    assert capsys.readouterr().out == ""  # --quiet
    result = json.loads((out / "trajectories.json").read_text())
    assert result["config"]["lrs"] == {"sgd": 0.01, "adam": 0.3}
    assert result["tuning"]["sgd"]["grid"] == pytest.approx([0.001, 0.01, 0.1])
    for o in result["optimizers"].values():
        assert len(o["path"]) == 6 and o["path"][0] == [0.0, 0.0]
        assert o["lr"] in result["tuning"]["sgd"]["grid"]
    # tuned SGD ends where SGD with that lr ends, computed here: x <- x - lr * grad
    fn = get_function("himmelblau")
    x = np.zeros(2)
    for _ in range(5):
        x = x - result["optimizers"]["sgd"]["lr"] * fn.gradient(x)
    np.testing.assert_allclose(result["optimizers"]["sgd"]["final_point"], x, rtol=1e-12)
    assert result["theory"] is None  # not a quadratic
    with Image.open(out / "trajectories.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 6
    for name in ("trajectories", "trajectories_tuned", "lr_sensitivity"):
        pixels, size = _png(out / result["figures"][name])
        spec = result["figure_specs"][name]
        assert size == (round(spec["figsize"][0] * spec["dpi"]), round(spec["figsize"][1] * spec["dpi"]))
        assert pixels.var() > 0


def test_cli_high_dimensional_quadratic_and_default_out(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["trajectories", "--function", "quadratic:kappa=10,dim=3", "--optimizers", "sgd,nesterov",
               "--steps", "8", "--theory-steps", "20"])
    assert rc == 0
    out = tmp_path / "npoptim-out" / "trajectories"
    result = json.loads((out / "trajectories.json").read_text())
    assert "trajectories" not in result["figures"] and result["figures"]["theory"] == "theory.png"
    assert all(len(p) == 3 for p in result["optimizers"]["sgd"]["path"])
    assert result["theory"]["kappa"] == pytest.approx(10)
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--function", "sphere"], "'sphere'"),
        (["--optimizers", "sgd,shampoo"], "'shampoo'"),
        (["--lr", "sgd=-1"], "-1"),
        (["--lr", "sgd=fast"], "'fast'"),
        (["--start", "1", "2", "3"], "3 coordinate"),
        (["--steps", "0"], "steps=0"),
        (["--optimizers", "sgd", "--lr", "adam=0.1"], "'adam'"),
        (["--function", "quadratic:dim=3", "--animate"], "3-dimensional"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, needle):
    rc = main(["trajectories", "--out", str(tmp_path), "--quiet", *args])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("npoptim trajectories: error:")
    assert needle in err
