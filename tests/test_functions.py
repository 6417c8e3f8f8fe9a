"""Test functions: analytic gradients against finite differences, minima that are minima.

Reference values come from the definitions (stated in :mod:`npoptim.functions`)
and from central differences, never from npoptim's own output.
"""

from __future__ import annotations

import numpy as np
import pytest

from npoptim.functions import FUNCTIONS, get_function
from numerics import assert_within, sum_bound

SPECS = [
    "anisotropic",
    "rosenbrock",
    "rosenbrock:a=2,b=10",
    "beale",
    "booth",
    "himmelblau",
    "rastrigin",
    "rastrigin:dim=3",
    "quadratic",
    "quadratic:kappa=1000,dim=6",
    "quadratic:kappa=50,dim=4,rotate=1,seed=3",
]


def test_every_registered_function_is_covered():
    assert {s.partition(":")[0] for s in SPECS} == set(FUNCTIONS)


def _central_difference(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """(f(x + h e_i) - f(x - h e_i)) / 2h, error O(h^2 f''')."""
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@pytest.mark.parametrize("spec", SPECS)
def test_gradient_matches_finite_differences(spec):
    fn = get_function(spec)
    rng = np.random.default_rng(0)
    lo = np.array([d[0] for d in fn.domain])
    hi = np.array([d[1] for d in fn.domain])
    for _ in range(20):
        x = rng.uniform(lo, hi)
        fd = _central_difference(lambda p: float(fn.value(p)), x)
        g = fn.gradient(x)
        scale = max(1.0, float(np.abs(fd).max()))
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * scale, err_msg=f"{spec} at {x}")


# Points where each function's value and gradient are evaluated with absolute values throughout
# ("f_abs"): the running-error bound |fl(f) - f| <= gamma_m * f_abs(p) holds for any expression of
# m roundings (Higham 2002, sec. 3.1).  Only three functions need one; see the test below.
def _abs_terms(spec: str, fn, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if spec.startswith("quadratic"):
        a, h = np.abs(p), np.abs(fn.hessian)
        return 0.5 * np.einsum("...i,ij,...j->...", a, h, a), a @ h
    if spec.startswith("rastrigin"):
        a, A = np.abs(p), 10.0
        return A * fn.dim + np.sum(a * a + A, axis=-1), 2.0 * a + 2.0 * np.pi * A
    assert spec == "beale", spec
    x, y = np.abs(p[..., 0]), np.abs(p[..., 1])
    cs = (1.5, 2.25, 2.625)
    value = sum((c + x + x * y**i) ** 2 for i, c in enumerate(cs, start=1))
    gx = sum(2 * (c + x + x * y**i) * (y**i + 1) for i, c in enumerate(cs, start=1))
    gy = sum(2 * (c + x + x * y**i) * i * x * y ** (i - 1) for i, c in enumerate(cs, start=1))
    return value, np.stack([gx, gy], axis=-1)


@pytest.mark.parametrize("spec", SPECS)
def test_vectorised_over_grids(spec):
    """A (5, 7, dim) array of points gives (5, 7) values and (5, 7, dim) gradients, equal to pointwise calls.

    Exact where both calls run the same correctly rounded element-wise operations (+, -, *, /, and
    ``x**2``, which NumPy evaluates as ``x*x``): anisotropic, Rosenbrock, Booth, Himmelblau.  Not
    exact where a batch and a single point may take different code paths:

    * quadratic: ``p @ A`` and an ``einsum`` go through BLAS, whose kernel (and so the order of the
      dim-term sums) depends on the shapes, the CPU and the thread count;
    * Rastrigin: ``cos``/``sin`` and a sum over the last axis, Beale: ``y**3`` (``pow``) -- NumPy's
      SIMD transcendental loops (selected by CPU) are accurate to <= 4 ULP, not correctly rounded.

    There the bound is 2 gamma_m f_abs(p): m = the dim-term sum's roundings plus 8 per
    transcendental (two implementations, 4 ULP each) plus the formula's ~10 operations.
    """
    fn = get_function(spec)
    rng = np.random.default_rng(1)
    pts = rng.uniform(-2, 2, size=(5, 7, fn.dim))
    v, g = fn.value(pts), fn.gradient(pts)
    assert v.shape == (5, 7) and g.shape == (5, 7, fn.dim)
    pv = np.array([[fn.value(pts[i, j]) for j in range(7)] for i in range(5)])
    pg = np.array([[fn.gradient(pts[i, j]) for j in range(7)] for i in range(5)])
    if spec.partition(":")[0] in ("anisotropic", "rosenbrock", "booth", "himmelblau"):
        np.testing.assert_array_equal(v, pv)  # same element-wise ops, same order: bit for bit
        np.testing.assert_array_equal(g, pg)
        return
    v_abs, g_abs = _abs_terms(spec, fn, pts)
    m = fn.dim * fn.dim + 8 * 3 + 10
    assert_within(v, pv, sum_bound(v_abs, m), f"{spec} values")
    assert_within(g, pg, sum_bound(g_abs, m), f"{spec} gradients")


@pytest.mark.parametrize("spec", SPECS)
def test_minima_are_minima(spec):
    """Gradient ~ 0 and value = stated minimum at each minimiser; 200 nearby points are all higher."""
    fn = get_function(spec)
    rng = np.random.default_rng(2)
    for m in fn.minimizers:
        m = np.asarray(m, dtype=float)
        # The stated minimisers are exact (0, (a, a^2), (3, 1/2)) or, for Himmelblau, correctly rounded
        # roots: |grad| <= |H| * 1 ulp(m) ~ 1e-13 and |f - f*| ~ (1e-13)^2, far inside both bounds,
        # whatever the BLAS (the quadratic's gradient at 0 is exactly 0 in any order).
        assert np.abs(fn.gradient(m)).max() < 1e-9, spec
        assert float(fn.value(m)) == pytest.approx(fn.minimum, abs=1e-12)
        d = rng.standard_normal((200, fn.dim))
        d *= 1e-3 / np.linalg.norm(d, axis=1, keepdims=True)
        assert (fn.value(m + d) > fn.minimum).all(), spec


def test_stated_minima_of_the_literature():
    """Values from the definitions: Rosenbrock's minimiser is (a, a^2); Himmelblau has four zeros;
    Beale's is (3, 1/2): residuals 1.5 - 3 + 1.5 = 0, 2.25 - 3 + 0.75 = 0, 2.625 - 3 + 0.375 = 0."""
    assert get_function("rosenbrock:a=2,b=10").minimizers == ((2.0, 4.0),)
    assert len(get_function("himmelblau").minimizers) == 4
    assert get_function("beale").minimizers == ((3.0, 0.5),)
    # Himmelblau's minima are distinct and each a zero of both squares
    h = get_function("himmelblau")
    pts = np.array(h.minimizers)
    assert len({tuple(np.round(p, 6)) for p in pts}) == 4
    np.testing.assert_allclose(pts[:, 0] ** 2 + pts[:, 1] - 11, 0, atol=1e-12)
    np.testing.assert_allclose(pts[:, 0] + pts[:, 1] ** 2 - 7, 0, atol=1e-12)


@pytest.mark.parametrize("kappa,dim,rotate", [(10.0, 2, False), (1000.0, 6, False), (50.0, 4, True)])
def test_quadratic_has_the_chosen_condition_number(kappa, dim, rotate):
    """The Hessian, measured by differencing the gradient, has condition number kappa, eigenvalues in [1/kappa, 1]."""
    fn = get_function(f"quadratic:kappa={kappa},dim={dim},rotate={int(rotate)}")
    x = np.random.default_rng(4).standard_normal(dim)
    h = 1e-4
    hess = np.stack([(fn.gradient(x + h * e) - fn.gradient(x - h * e)) / (2 * h) for e in np.eye(dim)])
    eig = np.linalg.eigvalsh(0.5 * (hess + hess.T))
    assert eig.max() / eig.min() == pytest.approx(kappa, rel=1e-6)
    assert eig.max() == pytest.approx(1.0, rel=1e-6)
    # the quadratic is (1/2) x^T H x exactly
    assert float(fn.value(x)) == pytest.approx(0.5 * x @ hess @ x, rel=1e-8)
    assert fn.dim == dim and len(fn.start) == dim


def test_anisotropic_is_the_books():
    """f(-7, 2) = 49/20 + 4 = 6.45, gradient (x/10, 2y) = (-0.7, 4); Hessian diag(1/10, 2)."""
    fn = get_function("anisotropic")
    assert fn.start == (-7.0, 2.0)
    assert float(fn.value(np.array([-7.0, 2.0]))) == pytest.approx(6.45)
    np.testing.assert_allclose(fn.gradient(np.array([-7.0, 2.0])), [-0.7, 4.0])
    np.testing.assert_allclose(fn.hessian, np.diag([0.1, 2.0]))


@pytest.mark.parametrize(
    "spec,needle",
    [
        ("sphere", "'sphere'"),
        ("quadratic:kappa=0.5", "kappa=0.5"),
        ("quadratic:kapa=10", "'kapa'"),
        ("quadratic:dim=two", "'two'"),
        ("quadratic:dim=0", "dim=0"),
        ("rosenbrock:b", "'b'"),
    ],
)
def test_bad_specs_name_the_culprit(spec, needle):
    with pytest.raises(ValueError, match=needle):
        get_function(spec)


def test_start_and_domain_are_consistent():
    for spec in SPECS:
        fn = get_function(spec)
        assert len(fn.domain) == fn.dim == len(fn.start)
        for (lo, hi), s in zip(fn.domain, fn.start, strict=True):
            assert lo < s < hi, spec
        for m in fn.minimizers:
            assert all(lo <= c <= hi for (lo, hi), c in zip(fn.domain, m, strict=True)), spec
