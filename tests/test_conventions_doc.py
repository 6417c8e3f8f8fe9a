"""Checks of the "equals ours under settings X" claims in ``docs/conventions.md``.

The parity tests (``test_parity_torch.py``) cover torch at constant settings.
Here are the claims they do not cover:

* a changing learning rate: our Momentum/Nesterov keep the rate inside the
  velocity (Keras' form, re-implemented below from the formulas in the doc),
  while torch's ``SGD`` multiplies the whole buffer by the current rate; the
  difference after one change is predicted analytically, :math:`\\mu g_1(\\eta_2-\\eta_1)`;
* Adam's "epsilon hat" form (Keras; Kingma & Ba 2015, section 2) equals
  Algorithm 1 with the step-dependent :math:`\\epsilon_t = \\hat\\epsilon/\\sqrt{1-\\beta_2^t}`;
* epsilon inside the root (optax/Keras AdaGrad and RMSprop, optax's default
  ``eps_in_sqrt=True``) equals ours only at :math:`\\epsilon = 0`; first-step
  closed forms for both placements;
* a nonzero initial AdaGrad accumulator (Keras/optax 0.1) reproduced by loading
  it into our state;
* Keras' decoupled weight decay equals our L2 for plain SGD, not for Momentum.

The "other library" updates are written in NumPy from the formulas stated in
the doc (which were read from those libraries' sources); jax/optax/keras are
not imported.
"""

from __future__ import annotations

import numpy as np
import pytest

from npoptim import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop
from numerics import assert_within, gamma

SHAPE = (7,)

# Tolerances.  Both sides of every comparison here (except the torch one) are NumPy element-wise + - * /
# and sqrt, correctly rounded on every machine, and Python-float bias corrections (b**t, the same libm pow
# on both sides in this process): the results do not depend on the CPU or BLAS, only the order of the
# operations differs.  Each bound is (steps) x (roundings per step that differ) x u, relative to the
# magnitudes the path had, written beside it; u = 1.1e-16.


def _grads(seed: int, n: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return scale * rng.normal(size=(n, *SHAPE))


def _w0(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=SHAPE)


# --- a changing learning rate: Momentum / Nesterov ---------------------------


def _keras_sgd(w: np.ndarray, grads: np.ndarray, lrs: np.ndarray, mu: float, nesterov: bool) -> np.ndarray:
    """Keras 3 SGD: velocity <- mu*velocity - lr*g; w <- w + velocity, or w <- w + mu*velocity - lr*g."""
    w, vel = w.copy(), np.zeros_like(w)
    for g, lr in zip(grads, lrs, strict=True):
        vel = mu * vel - lr * g
        w = w + (mu * vel - lr * g if nesterov else vel)
    return w


@pytest.mark.parametrize("cls, nesterov", [(Momentum, False), (Nesterov, True)])
def test_changing_lr_matches_keras_form(cls: type, nesterov: bool) -> None:
    mu, grads = 0.85, _grads(1, 40)
    lrs = np.random.default_rng(2).uniform(0.001, 0.1, size=len(grads))
    params, opt = {"w": _w0(3)}, cls(lr=0.01, momentum=mu)
    expected = _keras_sgd(params["w"], grads, lrs, mu, nesterov)
    for g, lr in zip(grads, lrs, strict=True):
        opt.lr = float(lr)
        opt.update(params, {"w": g})
    # v is computed by the same operations on both sides (mu v - lr g); w differs by <= 4 roundings per step
    # (Nesterov's w + (mu^2 v - (1 + mu) lr g) vs w + (mu v' - lr g)) of terms <= S = max |w| + 2 max |v| on
    # the path: 40 steps x gamma(4) x S
    scale = np.abs(params["w"]).max() + np.abs(expected).max() + 2 * lrs.max() * np.abs(grads).max() / (1 - mu)
    assert_within(params["w"], expected, len(grads) * gamma(4) * scale, f"{cls.__name__} vs Keras")


def test_changing_lr_differs_from_torch_by_predicted_amount() -> None:
    torch = pytest.importorskip("torch", reason="torch is the oracle for this claim")
    mu, eta1, eta2 = 0.9, 0.1, 0.03
    w0, (g1, g2) = _w0(4), _grads(5, 2)

    params, opt = {"w": w0.copy()}, Momentum(lr=eta1, momentum=mu)
    opt.update(params, {"w": g1})
    opt.lr = eta2
    opt.update(params, {"w": g2})

    p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    topt = torch.optim.SGD([p], lr=eta1, momentum=mu)
    for g, lr in ((g1, eta1), (g2, eta2)):
        for group in topt.param_groups:
            group["lr"] = lr
        p.grad = torch.tensor(g, dtype=torch.float64)
        topt.step()
    ours_minus_torch = params["w"] - p.detach().numpy()
    # ours: w0 - eta1*g1 + (-mu*eta1*g1 - eta2*g2); torch: w0 - eta1*g1 - eta2*(mu*g1 + g2)
    # torch's own kernels (its SIMD add(alpha=) may fuse the multiply-add): 2 steps, <= 4 roundings each side
    # of terms <= |w0| + 2 eta1 (|g1| + |g2|), then the difference (1) and the prediction (3, relative)
    terms = np.abs(w0) + 2 * eta1 * (np.abs(g1) + np.abs(g2))
    predicted = mu * g1 * (eta2 - eta1)
    assert_within(ours_minus_torch, predicted, gamma(9) * 2 * terms + gamma(3) * np.abs(predicted), "ours - torch")
    assert np.abs(ours_minus_torch).max() > 1e-3  # the difference is real, not rounding


# --- Adam: Algorithm 1 vs the epsilon-hat form --------------------------------


def _adam_eps_hat(w: np.ndarray, grads: np.ndarray, lr: float, b1: float, b2: float, eps_hat: float) -> np.ndarray:
    """Keras 3 Adam: alpha_t = lr*sqrt(1-b2^t)/(1-b1^t); w <- w - alpha_t * m / (sqrt(v) + eps_hat)."""
    w, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps_hat)
    return w


def test_adam_eps_hat_equals_ours_with_step_dependent_eps() -> None:
    lr, b1, b2, eps_hat = 0.01, 0.9, 0.999, 1e-3
    grads = _grads(6, 60, scale=1e-2)  # small gradients, so epsilon matters
    params, opt = {"w": _w0(7)}, Adam(lr=lr, beta1=b1, beta2=b2, eps=eps_hat)
    expected = _adam_eps_hat(params["w"], grads, lr, b1, b2, eps_hat)
    for t, g in enumerate(grads, start=1):
        opt.eps = eps_hat / np.sqrt(1 - b2**t)
        opt.update(params, {"w": g})
    # m, v: the same operations on both sides; the step differs by <= 6 roundings relative to itself
    # (|step| <= lr |m| / eps_hat-ish <= |w|) and w's own rounding: 60 steps x gamma(7) ~ 1e-13 relative
    # (rtol 1e-12 is ~10x that)
    np.testing.assert_allclose(params["w"], expected, rtol=1e-12)


def test_adam_constant_eps_first_step_closed_forms() -> None:
    # First step: m_hat = g, sqrt(v_hat) = |g|.  Ours: lr*g/(|g|+eps).
    # eps-hat form: lr*g/(|g| + eps/sqrt(1-b2)), i.e. eps is ~31.6x larger at b2=0.999.
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-3
    w0, g = _w0(8), _grads(9, 1, scale=1e-2)
    params = {"w": w0.copy()}
    Adam(lr=lr, beta1=b1, beta2=b2, eps=eps).update(params, {"w": g[0]})
    # the step is read back as w0 - w: w's rounding (u |w0|) relative to a step ~ lr/2 = 0.05 is <= 40u,
    # plus ~8 roundings of the step itself: ~50u = 5.6e-15; rtol 1e-12 leaves room for |w0| up to ~4
    # (measured 8 and 27 ULP)
    np.testing.assert_allclose(w0 - params["w"], lr * g[0] / (np.abs(g[0]) + eps), rtol=1e-12)
    keras = _adam_eps_hat(w0, g, lr, b1, b2, eps)
    np.testing.assert_allclose(w0 - keras, lr * g[0] / (np.abs(g[0]) + eps / np.sqrt(1 - b2)), rtol=1e-12)
    assert np.abs(keras - params["w"]).max() > 1e-3


# --- epsilon inside the root (optax / Keras AdaGrad and RMSprop) -------------


def _inside_root(w: np.ndarray, grads: np.ndarray, lr: float, rho: float | None, eps: float, h0: float) -> np.ndarray:
    """h <- h + g^2 (rho None) or rho*h + (1-rho)*g^2; w <- w - lr*g/sqrt(h + eps), h starting at h0."""
    w, h = w.copy(), np.full_like(w, h0)
    for g in grads:
        h = h + g * g if rho is None else rho * h + (1 - rho) * g * g
        w = w - lr * g / np.sqrt(h + eps)
    return w


@pytest.mark.parametrize("cls, rho", [(AdaGrad, None), (RMSprop, 0.9)])
def test_eps_inside_root_equals_ours_at_eps_zero(cls: type, rho: float | None) -> None:
    grads, lr = _grads(10, 50), 0.01
    kwargs = {} if rho is None else {"decay_rate": rho}
    params, opt = {"w": _w0(11)}, cls(lr=lr, eps=0.0, **kwargs)
    expected = _inside_root(params["w"], grads, lr, rho, 0.0, 0.0)
    for g in grads:
        opt.update(params, {"w": g})
    # h: the same operations (eps = 0); the step lr g / sqrt(h) vs lr g / (sqrt(h) + 0): bit-identical;
    # RMSprop's rho h + (1 - rho) g g likewise -- so a few roundings at most, rtol 1e-12 (measured: 0)
    np.testing.assert_allclose(params["w"], expected, rtol=1e-12)


def test_rmsprop_first_step_inside_vs_outside_closed_forms() -> None:
    lr, rho, eps = 0.01, 0.9, 1e-4
    w0, g = _w0(12), _grads(13, 1, scale=1e-2)
    params = {"w": w0.copy()}
    RMSprop(lr=lr, decay_rate=rho, eps=eps).update(params, {"w": g[0]})
    ours_step = w0 - params["w"]
    inside_step = w0 - _inside_root(w0, g, lr, rho, eps, 0.0)
    # steps ~ lr g / sqrt(...) ~ 1e-3..1e-2 read back as w0 - w: w's rounding u |w0| is <= ~1000u = 1.1e-13
    # relative to the step (|w0| <= 3), plus ~6 roundings of the step: rtol 1e-12 (measured <= 173 ULP)
    np.testing.assert_allclose(ours_step, lr * g[0] / (np.sqrt(1 - rho) * np.abs(g[0]) + eps), rtol=1e-12)
    np.testing.assert_allclose(inside_step, lr * g[0] / np.sqrt((1 - rho) * g[0] ** 2 + eps), rtol=1e-12)
    assert np.abs(ours_step - inside_step).max() > 1e-4


def test_adagrad_initial_accumulator_loaded_into_state() -> None:
    h0, lr, grads = 0.1, 0.05, _grads(14, 30)
    params, opt = {"w": _w0(15)}, AdaGrad(lr=lr, eps=0.0)
    sd = opt.state_dict()
    sd["state"] = {"w": {"step": 0, "h": np.full(SHAPE, h0)}}
    opt.load_state_dict(sd)
    expected = _inside_root(params["w"], grads, lr, None, 0.0, h0)
    for g in grads:
        opt.update(params, {"w": g})
    np.testing.assert_allclose(params["w"], expected, rtol=1e-12)  # the same operations (eps = 0, as above)


# --- Keras' decoupled weight decay ----------------------------------------------


def _keras_decoupled(w: np.ndarray, grads: np.ndarray, lr: float, wd: float, mu: float) -> np.ndarray:
    """Keras 3: w <- w - lr*wd*w before the rule; the rule sees the raw gradient."""
    w, vel = w.copy(), np.zeros_like(w)
    for g in grads:
        w = w - w * wd * lr
        vel = mu * vel - lr * g
        w = w + vel
    return w


def test_keras_decoupled_decay_equals_l2_for_sgd_only() -> None:
    lr, wd, grads = 0.05, 0.1, _grads(16, 30)
    w0 = _w0(17)
    sgd = {"w": w0.copy()}
    mom = {"w": w0.copy()}
    opt_sgd, opt_mom = SGD(lr=lr, weight_decay=wd), Momentum(lr=lr, momentum=0.9, weight_decay=wd)
    for g in grads:
        opt_sgd.update(sgd, {"w": g})
        opt_mom.update(mom, {"w": g})
    # w - lr (g + wd w) vs (w - w wd lr) + (0 v - lr g): <= 4 roundings per step of terms <= S = |w0| + lr sum|g|
    # (|w| on the path, as (1 - lr wd) < 1), 30 steps: 30 gamma(4) S
    scale = np.abs(w0) + lr * np.abs(grads).sum(axis=0)
    assert_within(sgd["w"], _keras_decoupled(w0, grads, lr, wd, 0.0), len(grads) * gamma(4) * scale, "SGD decoupled")
    assert np.abs(mom["w"] - _keras_decoupled(w0, grads, lr, wd, 0.9)).max() > 1e-2


# --- every registered optimizer has its row (issue 15) -----------------------------------------


def test_every_registered_optimizer_has_a_row_in_the_conventions_table() -> None:
    """The table compares *each* of our rules with the other libraries: a new rule needs its row
    (``| **ClassName** ...``), wrappers and whole-tensor rules included."""
    from pathlib import Path

    import npoptim

    doc = (Path(__file__).resolve().parents[1] / "docs" / "conventions.md").read_text(encoding="utf-8")
    rows = {line.split("**")[1] for line in doc.splitlines() if line.startswith("| **")}
    classes = [*npoptim.OPTIMIZERS.values(), *npoptim.TENSOR_OPTIMIZERS.values(), *npoptim.WRAPPERS.values(),
               *npoptim.COMPOSITES.values()]
    missing = [cls.__name__ for cls in classes if cls.__name__ not in rows]
    assert not missing, f"docs/conventions.md has no row for {missing}"
