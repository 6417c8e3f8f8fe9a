"""Closed-form checks of the update rules, derived from the mathematics.

Every expected value here is derived in the test's docstring from the rule's
definition or a classical theorem; none is taken from npoptim's own output.
Notation: :math:`\\eta` learning rate, :math:`\\mu` momentum, :math:`g`
gradient, :math:`w` parameter, :math:`k` the step number (from 1).
All runs are float64 with fixed seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from npoptim import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop
from numerics import assert_within, gamma, unit_roundoff


def _quadratic(dim: int, mu: float, L: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A = Q diag(lam) Q^T`` with ``lam`` spanning exactly ``[mu, L]``; returns ``A, lam, Q``.

    ``f(x) = x^T A x / 2`` has minimiser 0 and gradient ``A x``; the columns of
    the random orthogonal ``Q`` are its eigenvectors.
    """
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    lam = np.geomspace(mu, L, dim)
    lam[0], lam[-1] = mu, L
    return (q * lam) @ q.T, lam, q


# --- gradient descent on a quadratic ------------------------------------------------


@pytest.mark.parametrize("kappa", [2.0, 10.0, 100.0, 1e4])
def test_gradient_descent_contracts_at_kappa_rate_on_extreme_eigenvectors(kappa: float) -> None:
    r"""GD on :math:`f = \tfrac12 x^\top A x` at :math:`\eta = 2/(L+\mu)`.

    :math:`x_{k+1} = (I - \eta A) x_k`.  On an eigenvector with eigenvalue
    :math:`\lambda` the factor is :math:`1 - \eta\lambda`; at :math:`\lambda=\mu`
    it is :math:`1 - 2\mu/(L+\mu) = (L-\mu)/(L+\mu) = (\kappa-1)/(\kappa+1) =: q`,
    at :math:`\lambda = L` it is :math:`-q`.  So from the extreme eigenvectors
    :math:`x_k = (\pm q)^k x_0` exactly (up to rounding, ~1e-16 per step).
    """
    mu, L = 1.0, kappa
    A, lam, Q = _quadratic(6, mu, L, seed=1)
    eta = 2.0 / (L + mu)
    q = (kappa - 1.0) / (kappa + 1.0)
    for col, sign in ((0, 1.0), (-1, -1.0)):
        x0 = Q[:, col].copy()
        params = {"x": x0.copy()}
        opt = SGD(lr=eta)
        path = []
        for _ in range(40):
            opt.update(params, {"x": A @ params["x"]})
            path.append(params["x"].copy())
        k = np.arange(1, 41)[:, None]
        factor = (sign * q) ** k
        # Not bit-exact: ``A @ x`` is a BLAS product (its 6-term sums in a kernel-dependent order), and
        # ``A`` and ``Q`` come from LAPACK's QR and a matmul, so x0 is an eigenvector of the computed
        # ``A`` only to ~n u L.  Per step the update injects an error of at most 2 m u ||x_{k-1}||
        # (eta L <= 2; m = 3n + 6 roundings: n in the product, 2n for A's and Q's own errors, 6 for
        # eta, q, the scaling and the subtraction), and ||I - eta A|| = q carries each injected error
        # forward contracted by q: ||e_k|| <= sum_j q^(k-j) 2 m u q^(j-1) = 2 m u k q^(k-1) (||x0|| = 1).
        # The expected side's ``q**k`` adds (k + 4) u q^k (q's rounding raised to k, pow's <= 4 ULP).
        m = 3 * x0.size + 6
        bound = 2 * m * unit_roundoff() * k * q ** (k - 1) + gamma(k.max() + 4) * q**k
        assert_within(np.array(path), factor * x0, bound, f"kappa={kappa} GD path")
        # the norm contracts by exactly q per step: the same bound relative to q^40, plus the
        # 6-term norm's own rounding (gamma_7) and ||x0|| = 1 to QR's orthogonality (~n u)
        rel = 2 * m * unit_roundoff() * 40 / q + gamma(44) + gamma(7) + gamma(x0.size)
        assert np.linalg.norm(params["x"]) == pytest.approx(q**40, rel=rel)


@pytest.mark.parametrize("kappa", [10.0, 100.0])
def test_gradient_descent_contracts_at_most_at_kappa_rate(kappa: float) -> None:
    r"""From a random start every step contracts the error norm by at most :math:`q`.

    :math:`\|I - \eta A\|_2 = \max_\lambda |1 - \eta\lambda| = q` for
    :math:`\lambda\in[\mu, L]` (the maximum of a linear function's modulus is at
    an end), so :math:`\|x_{k+1}\| \le q\|x_k\|`.  The interior eigen-components
    shrink strictly faster, so after they have died out only the two extreme
    components (factors :math:`\pm q`) remain and the ratio *equals* :math:`q`.
    """
    A, _, _ = _quadratic(8, 1.0, kappa, seed=2)
    eta = 2.0 / (kappa + 1.0)
    q = (kappa - 1.0) / (kappa + 1.0)
    params = {"x": np.random.default_rng(3).standard_normal(8)}
    opt = SGD(lr=eta)
    ratios = []
    for _ in range(600):
        before = np.linalg.norm(params["x"])
        opt.update(params, {"x": A @ params["x"]})
        ratios.append(np.linalg.norm(params["x"]) / before)
    # ||I - eta A|| = q exactly for the exact A; the computed ratio adds two 8-term norms and a
    # division (2 gamma_9 + u, relative), and the step's rounding and A's own error (A from a QR and
    # a matmul, A @ x in BLAS): at most eta * L * gamma_{3n} absolute, with eta L = 2 kappa/(kappa+1).
    n = params["x"].size
    assert max(ratios) <= q * (1 + 2 * gamma(n + 1) + gamma(1)) + eta * kappa * gamma(3 * n)
    # The slowest interior component (kappa=100, 8 log-spaced eigenvalues: lambda = 100**(1/7) = 1.93,
    # factor 1 - 2*1.93/101 = 0.962 against q = 0.980) has shrunk relative to the extreme ones by
    # (0.962/0.980)**600 ~ 1e-5 in amplitude; being orthogonal to them it changes the norm ratio only
    # at second order, ~1e-10 * (1 - 0.98) = 2e-12 (7.8e-13 measured; rounding adds only ~1e-14, the
    # bound just above): 1e-11 is that estimate with a margin of 5.
    assert ratios[-1] == pytest.approx(q, rel=1e-11)


# --- heavy ball at its optimal tuning ---------------------------------------------------


def _heavy_ball_optimum(mu: float, L: float) -> tuple[float, float, float]:
    """Polyak's tuning: ``eta = 4/(sqrt L + sqrt mu)^2``, ``beta = rho^2``, ``rho = (sqrt k - 1)/(sqrt k + 1)``."""
    s, r = math.sqrt(L), math.sqrt(mu)
    rho = (s - r) / (s + r)
    return 4.0 / (s + r) ** 2, rho**2, rho


@pytest.mark.parametrize("kappa", [16.0, 100.0, 1e3])
def test_heavy_ball_exact_path_on_extreme_eigenvectors(kappa: float) -> None:
    r"""Heavy ball (our Momentum) at its optimal :math:`(\eta, \beta)` on the extreme eigenvectors.

    Our rule :math:`v \leftarrow \beta v - \eta g`, :math:`w \leftarrow w + v`,
    :math:`v_0 = 0` is :math:`x_{k+1} = x_k - \eta\lambda x_k + \beta(x_k - x_{k-1})`
    with :math:`x_{-1} = x_0`.  Characteristic polynomial
    :math:`z^2 - (1+\beta-\eta\lambda)z + \beta`.  With :math:`s=\sqrt L`,
    :math:`r=\sqrt\mu`, :math:`\rho = (s-r)/(s+r)`, :math:`\beta=\rho^2`,
    :math:`\eta = 4/(s+r)^2`:

    * :math:`\lambda=\mu`: :math:`1+\beta-\eta\mu = 2(s^2-r^2)/(s+r)^2 = 2\rho`, a
      double root :math:`z=\rho` (a Jordan block), so :math:`x_k = (1 + c k)\rho^k x_0`;
      :math:`x_1 = (1-\eta\mu)x_0 = \rho\,(s+3r)/(s+r)\,x_0` gives :math:`c = 2r/(s+r)`.
    * :math:`\lambda=L`: :math:`1+\beta-\eta L = -2\rho`, double root :math:`-\rho`;
      :math:`x_1 = (1-\eta L) x_0 = -\rho(3s+r)/(s+r)\,x_0` gives
      :math:`x_k = (1 + 2sk/(s+r))(-\rho)^k x_0`.
    """
    mu, L = 1.0, kappa
    A, _, Q = _quadratic(5, mu, L, seed=4)
    eta, beta, rho = _heavy_ball_optimum(mu, L)
    s, r = math.sqrt(L), math.sqrt(mu)
    for col, root, c in ((0, rho, 2 * r / (s + r)), (-1, -rho, 2 * s / (s + r))):
        x0 = Q[:, col].copy()
        params = {"x": x0.copy()}
        opt = Momentum(lr=eta, momentum=beta)
        path = []
        for _ in range(150):
            opt.update(params, {"x": A @ params["x"]})
            path.append(params["x"].copy())
        k = np.arange(1, 151)[:, None]
        envelope = (1 + c * k) * abs(root) ** k
        expected = (1 + c * k) * root**k * x0
        # compared relative to the envelope (1 + c k) rho^k, which the sign changes of (-rho)^k do not touch.
        # Not bit-exact (``A @ x`` in BLAS, A and Q from LAPACK).  At a double root the propagator of
        # the 2x2 recurrence grows like (1 + c'(k - j)) rho^(k-j), so an error of m u |x_j| injected at
        # step j (m = 3n + 8: n in the product, 2n for A's and Q's errors, 8 for the momentum update
        # and the rounded eta, beta) reaches step k as ~ m u (1 + c'(k-j))(1 + c j) rho^k; summed over
        # j <= k that is ~ m u k^3 c c'/6 rho^k, i.e. <= m u k^2 relative to the envelope (c' <= 2):
        # measured <= 2 u k^2.  Also (k + 4) u for rho's rounding raised to k and pow's <= 4 ULP.
        m = 3 * x0.size + 8
        bound = m * unit_roundoff() * k**2 + gamma(int(k.max()) + 4) * np.abs(expected / envelope)
        assert_within(np.array(path) / envelope, expected / envelope, bound, f"kappa={kappa} heavy-ball path")


@pytest.mark.parametrize("kappa", [16.0, 100.0, 1e3])
def test_heavy_ball_asymptotic_rate(kappa: float) -> None:
    r"""From a random start the late per-step rate is :math:`\rho = (\sqrt\kappa-1)/(\sqrt\kappa+1)`.

    At the optimal tuning every eigenvalue :math:`\lambda\in[\mu, L]` gives the
    2x2 iteration matrix a spectral radius :math:`\sqrt\beta = \rho` (the
    discriminant :math:`(1+\beta-\eta\lambda)^2 - 4\beta \le 0`, so the roots are
    complex conjugates of modulus :math:`\sqrt\beta`, or the double roots
    :math:`\pm\rho` at the ends).  Hence
    :math:`\|x_k\| = \rho^k p(k)` with :math:`p` between positive constants and a
    linear function of :math:`k` (the Jordan blocks at :math:`\mu`, :math:`L`).
    Over the window :math:`[k_1, k_2] = [300, 600]` the measured
    :math:`(\|x_{k_2}\|/\|x_{k_1}\|)^{1/(k_2-k_1)}` is :math:`\rho\,(p(k_2)/p(k_1))^{1/300}`;
    late in the run the Jordan terms dominate, :math:`p(k_2)/p(k_1) \approx k_2/k_1 = 2`,
    and :math:`2^{1/300} = 1.0023`.  Tolerance: 1 %, which still separates
    :math:`\rho` from gradient descent's :math:`(\kappa-1)/(\kappa+1)` by far
    (e.g. 0.818 vs 0.980 at :math:`\kappa = 100`).
    """
    A, _, _ = _quadratic(10, 1.0, kappa, seed=5)
    eta, beta, rho = _heavy_ball_optimum(1.0, kappa)
    params = {"x": np.random.default_rng(6).standard_normal(10)}
    opt = Momentum(lr=eta, momentum=beta)
    k1, k2 = 300, 600
    norms = {}
    for k in range(1, k2 + 1):
        opt.update(params, {"x": A @ params["x"]})
        if k in (k1, k2):
            norms[k] = np.linalg.norm(params["x"])
    rate = (norms[k2] / norms[k1]) ** (1.0 / (k2 - k1))
    assert rate == pytest.approx(rho, rel=0.01)
    # sharper: with the Jordan terms (a + b k) rho^k dominating, p(k2)/p(k1) -> k2/k1
    assert rate == pytest.approx(rho * (k2 / k1) ** (1.0 / (k2 - k1)), rel=1e-3)
    gd_rate = (kappa - 1) / (kappa + 1)
    assert abs(rate - rho) < 0.1 * abs(gd_rate - rho)


# --- first steps of the adaptive rules --------------------------------------------------


def _varied_gradient(seed: int, n: int = 200) -> np.ndarray:
    """Random signs, magnitudes spread log-uniformly over 1e-8 .. 1e8."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-8, 8, n)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(Adam, {"lr": 0.01}), (Adam, {"lr": 0.3, "beta1": 0.5, "beta2": 0.9}), (AdaGrad, {"lr": 0.05})],
    ids=["adam-default-betas", "adam-other-betas", "adagrad"],
)
def test_first_step_is_lr_times_sign(cls: type, kwargs: dict) -> None:
    r"""Adam and AdaGrad's first step is :math:`\eta\,\mathrm{sign}(g)` (up to :math:`\epsilon`).

    Adam, step 1 from :math:`m_0 = v_0 = 0`: :math:`m_1 = (1-\beta_1)g`,
    :math:`v_1 = (1-\beta_2)g^2`, so :math:`\hat m = g`, :math:`\hat v = g^2` and
    :math:`\Delta w = -\eta g/(|g| + \epsilon)`.  AdaGrad from :math:`h_0 = 0`:
    :math:`h_1 = g^2`, the same :math:`\Delta w`.  With :math:`\epsilon = 0` this
    is :math:`-\eta\,\mathrm{sign}(g)` (checked to rounding); with the default
    :math:`\epsilon` it is :math:`-\eta g/(|g|+\epsilon)`, which differs from
    :math:`-\eta\,\mathrm{sign}(g)` by :math:`\eta\epsilon/(|g|+\epsilon)`.
    """
    g = _varied_gradient(7)
    w0 = np.random.default_rng(8).standard_normal(g.size)

    eta = kwargs["lr"]
    params = {"w": w0.copy()}
    cls(**kwargs, eps=0.0).update(params, {"w": g})
    # Element-wise IEEE operations only (the same on every CPU), but not exact: the rule rounds the
    # step at most 9 times (Adam: m, v (2), sqrt, sqrt(1 - beta2), the division, m/denom,
    # lr/(1 - beta1), the product; AdaGrad 4), w0 + step rounds by u|w1| and the test's
    # subtraction once more: |error| <= gamma_11 eta + u |w1|.
    u = unit_roundoff()
    w1 = params["w"]
    assert_within(w1 - w0, -eta * np.sign(g), gamma(11) * eta + u * np.abs(w1), f"{cls.__name__} first step")

    opt = cls(**kwargs)  # the default eps
    eps = opt.eps
    assert eps > 0
    params = {"w": w0.copy()}
    opt.update(params, {"w": g})
    step = params["w"] - w0
    expected = -eta * g / (np.abs(g) + eps)  # 3 more roundings on this side: gamma_14 in all
    assert_within(step, expected, gamma(14) * np.abs(expected) + u * np.abs(params["w"]), "first step, eps > 0")
    # "approximately sign": within eta*eps/|g| of it (exactly eta*eps/(|g|+eps) <= eta*eps/|g|; the
    # roundings above add gamma_14 eta + u|w1|), and close (1e-5 relative) where |g| >= 1e-2
    slack = gamma(14) * eta + u * np.abs(params["w"])
    assert np.all(np.abs(step + eta * np.sign(g)) <= eta * eps / np.abs(g) + slack)
    big = np.abs(g) >= 1e-2
    np.testing.assert_allclose(step[big], -eta * np.sign(g[big]), rtol=1e-5)


# --- invariance to the scale of the loss ---------------------------------------------------


def _rounding_budget(steps: int, lr: float) -> float:
    """How far rounding alone can move two runs of the same rule apart, per coordinate.

    Each run rounds each step at most 12 times (the scaled gradient, the accumulators, sqrt, the
    ratio, the learning-rate factor, the update), each by at most u of a step of at most
    ``lr * R`` (R = 1/sqrt(1 - 0.9) = 3.2 bounds RMSprop's first steps at decay 0.9; AdaGrad's
    ratio is <= 1, Adam's ~1): two runs, ``steps`` steps.  Measured: <= 4 u lr steps.
    """
    return 2 * 12 * unit_roundoff() * lr * steps / math.sqrt(1 - 0.9)


def _loss_gradient(w: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Gradient of ``f(w) = sum(log cosh(w - target)) + 0.05 |w|^2`` (non-quadratic, path-dependent)."""
    return np.tanh(w - target) + 0.1 * w


#: name -> (class, hyperparameters other than eps)
SCALE_INVARIANT: dict[str, tuple[type, dict[str, float]]] = {
    "adam": (Adam, {"lr": 0.05}),
    "adagrad": (AdaGrad, {"lr": 0.1}),
    "rmsprop": (RMSprop, {"lr": 0.01, "decay_rate": 0.9}),
}


@pytest.mark.parametrize("c", [4.0, 2.0**-20, 3.7, 1e3, 1e-3, 123456.789])
@pytest.mark.parametrize("name", list(SCALE_INVARIANT))
def test_path_invariant_to_loss_scale_with_eps_zero(name: str, c: float) -> None:
    r"""With :math:`\epsilon = 0` the paths for losses :math:`f` and :math:`cf` (:math:`c>0`) coincide.

    Gradients become :math:`cg`; Adam's :math:`m \to cm`, :math:`v \to c^2 v`,
    :math:`\hat m/\sqrt{\hat v}` unchanged; AdaGrad's and RMSprop's
    :math:`h \to c^2 h` and :math:`g/\sqrt h` unchanged.  So the iterates are
    equal in exact arithmetic, for any gradient field.  In floating point: for
    :math:`c` a power of 2 every operation is scaled exactly (no under/overflow
    here), so the paths are bit-identical; otherwise rtol 1e-12.
    """
    rng = np.random.default_rng(9)
    target = 5.0 + rng.standard_normal(12)  # far from 0, so the iterates stay O(1)-O(5)
    w0 = rng.standard_normal(12)
    a, b = {"w": w0.copy()}, {"w": w0.copy()}
    cls, kwargs = SCALE_INVARIANT[name]
    opt_a, opt_b = cls(**kwargs, eps=0.0), cls(**kwargs, eps=0.0)
    for _ in range(150):
        opt_a.update(a, {"w": _loss_gradient(a["w"], target)})
        opt_b.update(b, {"w": c * _loss_gradient(b["w"], target)})
    assert not np.allclose(a["w"], w0, rtol=0, atol=1e-2), "the run must actually move"
    if math.frexp(c)[0] == 0.5:  # a power of two
        # bit-exact: c g, c^2 v and sqrt(c^2 v) = c sqrt(v) are exact scalings (even exponent), so both
        # runs round the same significands in the same element-wise operations, and tanh sees equal inputs
        np.testing.assert_array_equal(b["w"], a["w"])
    else:
        # element-wise operations only (CPU-independent), but c g rounds and the two runs drift apart
        # by rounding alone: the budget of _rounding_budget (an absolute bound: |w| passes near 0)
        assert_within(b["w"], a["w"], _rounding_budget(150, kwargs["lr"]), f"{name}, c={c}")


@pytest.mark.parametrize("c", [0.1, 0.5, 3.0, 10.0])
@pytest.mark.parametrize("name", list(SCALE_INVARIANT))
def test_path_nearly_invariant_to_loss_scale_with_default_eps(name: str, c: float) -> None:
    r"""With the default :math:`\epsilon`, scaling by :math:`c` only moves :math:`\epsilon` to :math:`\epsilon/c`.

    Each rule's step is :math:`\eta\,n/(d + \epsilon)` with :math:`n` linear and
    :math:`d` positively homogeneous of degree 1 in the gradients; for gradients
    :math:`cg` it is :math:`\eta\,n/(d + \epsilon/c)`.  With a fixed gradient
    sequence (so both runs see the same :math:`g`; here :math:`|g| \in [0.5, 2]`)
    the per-step difference is
    :math:`\eta|n|\,|\epsilon - \epsilon/c| / ((d+\epsilon)(d+\epsilon/c))
    \le \eta\,n_{\max}|\epsilon-\epsilon/c|/d_{\min}^2`
    with :math:`n_{\max} = 2` (a weighted mean of, or one of, the :math:`g`) and
    :math:`d_{\min}`: 0.5 for Adam (:math:`\sqrt{\hat v}`, an rms of the
    :math:`|g|`) and AdaGrad (:math:`\sqrt h \ge |g_1|`), and
    :math:`0.5\sqrt{1-\rho}` for RMSprop (:math:`h_k \ge (1-\rho^k)\,0.25`).
    Summed over the steps this bounds :math:`\|w^{(c)} - w\|_\infty`.
    """
    steps = 100
    rng = np.random.default_rng(10)
    gs = [rng.choice([-1.0, 1.0], 9) * rng.uniform(0.5, 2.0, 9) for _ in range(steps)]
    w0 = rng.standard_normal(9)
    a, b = {"w": w0.copy()}, {"w": w0.copy()}
    cls, kwargs = SCALE_INVARIANT[name]
    opt_a, opt_b = cls(**kwargs), cls(**kwargs)  # the default eps
    for g in gs:
        opt_a.update(a, {"w": g})
        opt_b.update(b, {"w": c * g})
    d_min = 0.5 * (math.sqrt(1 - opt_a.decay_rate) if name == "rmsprop" else 1.0)
    bound = steps * opt_a.lr * 2.0 * abs(opt_a.eps - opt_a.eps / c) / d_min**2
    assert np.max(np.abs(b["w"] - a["w"])) <= bound + _rounding_budget(steps, opt_a.lr)  # + rounding's share
    # the bound is meaningful: under 1e-4 of the distance the path can travel (steps * lr)
    assert bound < 1e-4 * steps * opt_a.lr


# --- Nesterov --------------------------------------------------------------------------------


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_nesterov_with_zero_momentum_is_sgd(weight_decay: float) -> None:
    r"""At :math:`\mu=0`: :math:`w \leftarrow w + 0\cdot v - (1+0)\eta g = w - \eta g`, i.e. SGD, bit for bit."""
    rng = np.random.default_rng(12)
    target = rng.standard_normal((3, 4))
    a = {"w": rng.standard_normal((3, 4)), "b": np.asarray(rng.standard_normal())}
    b = {k: v.copy() for k, v in a.items()}
    nes, sgd = Nesterov(lr=0.07, momentum=0.0, weight_decay=weight_decay), SGD(lr=0.07, weight_decay=weight_decay)
    for _ in range(60):
        nes.update(a, {"w": _loss_gradient(a["w"], target), "b": np.asarray(np.sin(a["b"]))})
        sgd.update(b, {"w": _loss_gradient(b["w"], target), "b": np.asarray(np.sin(b["b"]))})
    for k in a:
        # bit-exact: 0*0*v = 0 and 0 - 1*(lr g) = -(lr g) exactly, so both rules round lr*g and w - lr*g
        # alone, element-wise, in the same order; sin and tanh then see equal inputs
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("mu", [0.5, 0.9, 0.99])
def test_nesterov_first_steps(mu: float) -> None:
    r"""Nesterov in the form of Bengio et al. (2013), eq. 7, from :math:`v_0 = 0`.

    :math:`w \leftarrow w + \mu^2 v - (1+\mu)\eta g`, then :math:`v \leftarrow \mu v - \eta g`.
    From :math:`v_0 = 0`: :math:`\Delta w_1 = -(1+\mu)\eta g_1` and
    :math:`v_1 = -\eta g_1`; then :math:`\Delta w_2 = -\mu^2\eta g_1 - (1+\mu)\eta g_2`.
    The teaching code applied the parameter update with the *already updated*
    velocity, :math:`\Delta w_1 = \mu^2(-\eta g_1) - (1+\mu)\eta g_1 = -(1+\mu+\mu^2)\eta g_1`;
    the correct first step is :math:`(1+\mu)/(1+\mu+\mu^2)` of that (0.701 at 0.9).
    """
    eta = 0.03
    rng = np.random.default_rng(13)
    g1, g2 = rng.standard_normal(7), rng.standard_normal(7)
    w0 = rng.standard_normal(7)
    params = {"w": w0.copy()}
    opt = Nesterov(lr=eta, momentum=mu)
    opt.update(params, {"w": g1})
    step1 = params["w"] - w0
    # Element-wise only (CPU-independent); roundings: the rule's lr*g, 1+mu, the product and the
    # update (4), the test's subtraction (1) and its own -(1+mu)*eta*g (3), plus w1's u|w1|
    u = unit_roundoff()
    expected1 = -(1 + mu) * eta * g1
    slack1 = gamma(8) * np.abs(expected1) + u * np.abs(params["w"])
    assert_within(step1, expected1, slack1, "first step")
    buggy = -(1 + mu + mu**2) * eta * g1
    ratio = (1 + mu) / (1 + mu + mu**2)
    # the ratio: step1's relative error, plus buggy's 5 and the quotients' 4 roundings
    assert_within(step1 / buggy, ratio, (slack1 / np.abs(expected1) + gamma(9)) * ratio, "first step / buggy")
    w1 = params["w"].copy()
    opt.update(params, {"w": g2})
    # step 2: ~8 roundings on each side, relative to the *terms* (they may cancel), and u|w2|
    terms = mu**2 * eta * np.abs(g1) + (1 + mu) * eta * np.abs(g2)
    assert_within(params["w"] - w1, -(mu**2) * eta * g1 - (1 + mu) * eta * g2,
                  gamma(16) * terms + u * np.abs(params["w"]), "second step")


# --- Momentum under a constant gradient -------------------------------------------------------


@pytest.mark.parametrize("mu", [0.5, 0.9])
def test_momentum_velocity_is_a_geometric_series(mu: float) -> None:
    r"""Constant :math:`g`, :math:`v_0 = 0`: :math:`v_k = \mu v_{k-1} - \eta g = -\eta g\,(1-\mu^k)/(1-\mu)`.

    So :math:`v_k \to -\eta g/(1-\mu)` with error :math:`\eta|g|\mu^k/(1-\mu)`,
    and :math:`w_k = w_0 + \sum_{j\le k} v_j = w_0 - \frac{\eta g}{1-\mu}\left(k - \mu\frac{1-\mu^k}{1-\mu}\right)`.
    """
    eta = 0.01
    rng = np.random.default_rng(14)
    g, w0 = rng.standard_normal(5), rng.standard_normal(5)
    params = {"w": w0.copy()}
    opt = Momentum(lr=eta, momentum=mu)
    limit = -eta * g / (1 - mu)
    vs, ws = [], []
    for _ in range(300):
        opt.update(params, {"w": g})
        vs.append(opt.state["w"]["v"].copy())
        ws.append(params["w"].copy())
    k = np.arange(1, 301)[:, None]
    # Element-wise only, so CPU-independent up to pow.  v: each step rounds 3 times, <= 3u (mu|v| +
    # eta|g|) <= 3u eta|g|/(1-mu), carried forward with factor mu: relative to |v_k| that sums to
    # 3u/(1-mu).  Expected side: limit (3), 1 - mu**k and the product (2), and pow's <= 4 ULP of
    # mu^k, relative to 1 - mu^k: 4u mu/(1-mu) at worst (k = 1).
    n_v = int(3 / (1 - mu) + 4 * mu / (1 - mu) + 5) + 1
    v_expected = limit * (1 - mu**k)
    assert_within(np.array(vs), v_expected, gamma(n_v) * np.abs(v_expected), f"mu={mu} velocity")
    # w: the running sum rounds once per step (<= k u max|w|), adds the v errors (k of them), and the
    # closed form rounds ~8 times relative to its terms |w0| + eta|g|/(1-mu) (k + mu/(1-mu))
    ws_ = np.array(ws)
    w_expected = w0 - eta * g / (1 - mu) * (k - mu * (1 - mu**k) / (1 - mu))
    scale = eta * np.abs(g) / (1 - mu)
    w_bound = (gamma(300) * np.abs(ws_).max(axis=0) + k * gamma(n_v) * scale
               + gamma(8) * (np.abs(w0) + scale * (k + mu / (1 - mu))))
    assert_within(ws_, w_expected, w_bound, f"mu={mu} position")
    # v_300 - limit = limit mu^300 (0.9**300 ~ 2e-14) plus the rounding above
    assert_within(vs[-1], limit, (mu**300 + gamma(n_v)) * np.abs(limit), f"mu={mu} limit")


# --- weight decay -----------------------------------------------------------------------------


@pytest.mark.parametrize(("eta", "lam"), [(0.1, 0.01), (0.5, 1.0), (0.01, 10.0)])
def test_sgd_weight_decay_shrinks_geometrically(eta: float, lam: float) -> None:
    r"""Zero gradient, L2 decay: :math:`g = 0 + \lambda w`, :math:`w \leftarrow (1-\eta\lambda)w`.

    Hence :math:`w_k = (1-\eta\lambda)^k w_0`.
    """
    rng = np.random.default_rng(15)
    w0 = rng.standard_normal((4, 3))
    params = {"w": w0.copy()}
    opt = SGD(lr=eta, weight_decay=lam)
    path = []
    for _ in range(50):
        opt.update(params, {"w": np.zeros_like(w0)})
        path.append(params["w"].copy())
    k = np.arange(1, 51)[:, None, None]
    # Element-wise only.  Per step the rule rounds lam*w, eta*g and the subtraction (the last two
    # amplified by eta lam/(1 - eta lam) <= 1): <= 3u; the expected factor 1 - eta*lam rounds twice
    # (2u relative on the factor, raised to k) and pow adds <= 4 ULP, the product w0 * ... one more:
    # relative error <= (5k + 5) u.
    np.testing.assert_allclose(np.array(path), (1 - eta * lam) ** k * w0, rtol=gamma(5 * 50 + 5), atol=0)
