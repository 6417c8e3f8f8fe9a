"""Tolerances derived from the arithmetic a test checks (Higham, *Accuracy and Stability of
Numerical Algorithms*, 2nd ed., 2002, §2.2 and §3.1).

Two computations may be compared bit for bit only when both run the *same* IEEE operations in
the *same* order: element-wise ``+ - * / sqrt`` (correctly rounded, whatever the SIMD width) on
the same operands.  Everything else gets a bound from this module, with its reason beside the
assertion:

* a matrix product, ``einsum``, ``np.sum``/``np.mean``/``np.linalg.norm`` or a dot product is
  free to add its terms in any order (BLAS kernel, thread count, SIMD width, pairwise blocking);
  two orders of the same n terms differ by at most ``2 γ_n Σ|terms|`` (:func:`sum_bound`);
* a transcendental function (``exp``, ``log``, ``cos``, ``**``) is not correctly rounded: NumPy
  dispatches SIMD versions by CPU (e.g. AVX-512 SVML) that differ from libm by a few ULP;
* torch, optax and other oracles run their own kernels: a few ULP per operation, compounded over
  the steps of a run (each test states its own budget).

``u`` is the unit roundoff (half the machine epsilon): 2⁻⁵³ for float64, 2⁻²⁴ for float32.
"""

from __future__ import annotations

import numpy as np


def unit_roundoff(dtype=np.float64) -> float:
    """u = ε/2 for the dtype: every correctly rounded operation has relative error ≤ u."""
    return float(np.finfo(dtype).eps) / 2.0


def gamma(n: int, dtype=np.float64) -> float:
    """γ_n = n u / (1 − n u), Higham's bound on the relative error of n chained roundings."""
    nu = n * unit_roundoff(dtype)
    if nu >= 1.0:
        raise ValueError(f"gamma: n={n} is too large for {np.dtype(dtype).name}")
    return nu / (1.0 - nu)


def sum_bound(abs_terms, n: int, dtype=np.float64, orders: int = 2) -> np.ndarray:
    """Bound on |s₁ − s₂| for two evaluation orders of the same sum of ``n`` terms.

    Each order satisfies |fl(s) − s| ≤ γ_{n−1} Σ|xᵢ| (Higham eq. 3.5, any order, any blocking),
    so two of them differ by at most ``orders · γ_n · Σ|xᵢ|``; ``abs_terms`` is Σ|xᵢ| (an array
    for element-wise bounds, e.g. ``np.abs(A) @ np.abs(x)`` for ``A @ x``).
    """
    return orders * gamma(max(int(n), 1), dtype) * np.asarray(abs_terms, dtype=float)


def assert_within(actual, expected, bound, what: str = "") -> None:
    """|actual − expected| ≤ bound element-wise (bound broadcast), with a message naming the worst."""
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    bound = np.broadcast_to(np.asarray(bound, dtype=float), np.broadcast(actual, expected).shape)
    err = np.abs(actual - expected)
    bad = ~(err <= bound)  # NaN counts as a failure
    if bad.any():
        i = np.unravel_index(int(np.argmax(np.where(bad, err - bound, -np.inf))), err.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {err.size} elements off by more than the derived bound; worst at "
            f"{tuple(int(k) for k in i)}: {actual[i]!r} vs {expected[i]!r}, |diff| {err[i]:.3g} > {bound[i]:.3g}"
        )


def assert_canvas(size, figsize, dpi) -> None:
    """``size`` (width, height) is a size matplotlib may give a figure of ``figsize`` inches at ``dpi``:
    each side is ``int()`` (matplotlib <= 3.10) or ``round()`` (3.11) of inches x dpi, which differ by a
    pixel when the product falls a hair below an integer in floating point (5.1 x 100 = 509.99999999999994)."""
    allowed = tuple({int(w * dpi), round(w * dpi)} for w in figsize)
    assert all(s in a for s, a in zip(size, allowed, strict=True)), f"{size} not in {allowed} ({figsize} in at {dpi})"
