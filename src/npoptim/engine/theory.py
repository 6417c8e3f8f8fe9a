r"""What theory predicts for gradient descent, heavy ball and Nesterov on a quadratic.

On :math:`f(w) = \tfrac12 (w - w^*)^\top A (w - w^*)` every method below is a
linear iteration, and in the eigenbasis of :math:`A` it splits into one
scalar recursion per eigenvalue :math:`\lambda`.  The error
:math:`e_k = w_k - w^*` then shrinks like :math:`\rho^k` (up to a factor
polynomial in :math:`k` where roots coincide), where :math:`\rho` is the
spectral radius of the iteration, the largest root modulus over all
eigenvalues (Polyak, 1987, *Introduction to Optimization*, ch. 2-3).

Gradient descent (:class:`~npoptim.SGD`, :math:`w \leftarrow w - \eta g`):

.. math:: e_{k+1} = (1 - \eta\lambda) e_k, \qquad \rho_{GD} = \max_\lambda |1 - \eta\lambda|

Heavy ball (:class:`~npoptim.Momentum`, :math:`v \leftarrow \mu v - \eta g,\ w \leftarrow w + v`;
since :math:`v_k = w_k - w_{k-1}` this is Polyak, 1964):

.. math::
    e_{k+1} = (1 + \mu - \eta\lambda) e_k - \mu e_{k-1}, \qquad
    z^2 - (1 + \mu - \eta\lambda) z + \mu = 0

Nesterov (:class:`~npoptim.Nesterov`, the form of Bengio et al. 2013:
:math:`w \leftarrow w + \mu^2 v - (1 + \mu)\eta g,\ v \leftarrow \mu v - \eta g`).
With :math:`g = \lambda e` the state :math:`(e, v)` evolves by

.. math::
    \begin{pmatrix} e \\ v \end{pmatrix} \leftarrow
    \begin{pmatrix} 1 - (1 + \mu)\eta\lambda & \mu^2 \\ -\eta\lambda & \mu \end{pmatrix}
    \begin{pmatrix} e \\ v \end{pmatrix}

whose trace is :math:`(1 + \mu)(1 - \eta\lambda)` and determinant
:math:`\mu(1 - (1 + \mu)\eta\lambda) + \mu^2\eta\lambda = \mu(1 - \eta\lambda)`, so

.. math:: z^2 - (1 + \mu)(1 - \eta\lambda) z + \mu(1 - \eta\lambda) = 0,

the characteristic polynomial of Nesterov's method (Nesterov, 1983) in its
usual form; the Bengio form is a change of variables of it.

Optimal settings for eigenvalues in :math:`[m, L]`, :math:`\kappa = L/m`:

* GD: :math:`\eta^* = 2/(L + m)`, :math:`\rho^* = (\kappa - 1)/(\kappa + 1)`.
* Heavy ball (Polyak, 1964): :math:`\eta^* = 4/(\sqrt L + \sqrt m)^2`,
  :math:`\mu^* = \bigl((\sqrt\kappa - 1)/(\sqrt\kappa + 1)\bigr)^2`,
  :math:`\rho^* = (\sqrt\kappa - 1)/(\sqrt\kappa + 1)`.
* Nesterov (Lessard, Recht & Packard, 2016, *SIAM J. Optim.* 26(1), sec. 2.2):
  :math:`\eta^* = 4/(3L + m)`,
  :math:`\mu^* = (\sqrt{3\kappa + 1} - 2)/(\sqrt{3\kappa + 1} + 2)`,
  :math:`\rho^* = 1 - 2/\sqrt{3\kappa + 1}`.

>>> round(float(spectral_radius("gd", [0.1, 2.0], 0.95)), 6)   # the book's SGD on x^2/20 + y^2
0.905
>>> round(float(spectral_radius("heavy_ball", [0.1, 2.0], 0.1, 0.9)), 6)   # complex roots: sqrt(mu)
0.948683
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "METHODS",
    "method_of",
    "spectral_radius",
    "iteration_matrix",
    "optimal_settings",
    "measured_rate",
]

#: The methods theory covers, with their display names.
METHODS: dict[str, str] = {"gd": "gradient descent", "heavy_ball": "heavy ball", "nesterov": "Nesterov"}


def method_of(optimizer: Any) -> str | None:
    """The method an optimizer instance runs, if theory covers it with its current settings.

    ``SGD`` is ``"gd"``, ``Momentum`` ``"heavy_ball"``, ``Nesterov`` ``"nesterov"``
    (by exact class: a subclass may change the rule); ``None`` for anything
    else, and for any optimizer with ``weight_decay`` set.
    """
    from ..optimizers import SGD, Momentum, Nesterov

    if getattr(optimizer, "weight_decay", 0.0):
        return None
    return {SGD: "gd", Momentum: "heavy_ball", Nesterov: "nesterov"}.get(type(optimizer))


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def _char_coefficients(method: str, x: np.ndarray, momentum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients ``(b, c)`` of :math:`z^2 - b z + c`, with ``x`` = :math:`\\eta\\lambda`."""
    if method == "heavy_ball":
        return 1.0 + momentum - x, momentum + 0.0 * x
    if method == "nesterov":
        return (1.0 + momentum) * (1.0 - x), momentum * (1.0 - x)
    raise AssertionError(method)


def spectral_radius(
    method: str, eigenvalues: Sequence[float] | np.ndarray, lr: float | np.ndarray, momentum: float | np.ndarray = 0.0
) -> np.ndarray:
    r"""Predicted per-step contraction :math:`\rho` (module docstring), broadcast over ``lr`` and ``momentum``.

    ``eigenvalues`` are those of the Hessian; the result has the broadcast
    shape of ``lr`` and ``momentum``.  ``momentum`` is ignored for ``"gd"``.
    """
    _check_method(method)
    lam = np.asarray(eigenvalues, dtype=float).reshape(-1)
    lr_b, mom_b = np.broadcast_arrays(np.asarray(lr, dtype=float), np.asarray(momentum, dtype=float))
    x = lr_b[..., None] * lam  # (..., n)
    if method == "gd":
        return np.abs(1.0 - x).max(axis=-1)
    b, c = _char_coefficients(method, x, mom_b[..., None])
    disc = np.sqrt((b * b - 4.0 * c).astype(complex))
    roots = np.maximum(np.abs((b + disc) / 2.0), np.abs((b - disc) / 2.0))
    return roots.max(axis=-1)


def iteration_matrix(method: str, eigenvalue: float, lr: float, momentum: float = 0.0) -> np.ndarray:
    """The 2x2 (1x1 for ``"gd"``) matrix of the recursion for one eigenvalue, as in the module docstring."""
    _check_method(method)
    x = lr * eigenvalue
    if method == "gd":
        return np.array([[1.0 - x]])
    if method == "heavy_ball":  # state (e_k, e_{k-1})
        return np.array([[1.0 + momentum - x, -momentum], [1.0, 0.0]])
    return np.array([[1.0 - (1.0 + momentum) * x, momentum**2], [-x, momentum]])  # state (e, v)


def optimal_settings(method: str, m: float, L: float) -> dict[str, float]:  # noqa: N803
    """The rate-optimal ``lr``, ``momentum`` and the resulting ``rate`` for eigenvalues in ``[m, L]``."""
    _check_method(method)
    if not (0 < m <= L) or not math.isfinite(L):
        raise ValueError(f"optimal_settings: need 0 < m <= L, got m={m!r}, L={L!r}")
    kappa = L / m
    if method == "gd":
        return {"lr": 2.0 / (L + m), "momentum": 0.0, "rate": (kappa - 1.0) / (kappa + 1.0)}
    if method == "heavy_ball":
        sk = math.sqrt(kappa)
        return {
            "lr": 4.0 / (math.sqrt(L) + math.sqrt(m)) ** 2,
            "momentum": ((sk - 1.0) / (sk + 1.0)) ** 2,
            "rate": (sk - 1.0) / (sk + 1.0),
        }
    s = math.sqrt(3.0 * kappa + 1.0)
    return {"lr": 4.0 / (3.0 * L + m), "momentum": (s - 2.0) / (s + 2.0), "rate": 1.0 - 2.0 / s}


def measured_rate(distances: Sequence[float] | np.ndarray, *, floor: float = 1e-12, min_steps: int = 4) -> float | None:
    r"""Per-step contraction measured on a run: the slope of :math:`\log E_k` over the second half.

    With :math:`d_k = \lVert w_k - w^*\rVert`, let
    :math:`E_k = \sqrt{d_k^2 + d_{k-1}^2}`: two consecutive iterates, because a
    momentum method's distance oscillates when its roots are complex while the
    pair, which determines the state of a second-order recursion, does not
    dip to zero between peaks.  The run is cut before the first :math:`E_k`
    below ``floor`` times :math:`E_1` (round-off) or not finite, leaving
    :math:`k \le K`; a least-squares line :math:`\log E_k \approx a + k \log\hat\rho`
    over :math:`K/2 \le k \le K` gives :math:`\hat\rho` (a line fit averages out the
    remaining oscillation better than the ratio of two end points).

    ``None`` when fewer than ``min_steps`` usable steps remain.

    >>> round(measured_rate(0.9 ** np.arange(50)), 12)
    0.9
    """
    d = np.asarray(distances, dtype=float)
    if d.size < 3:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.sqrt(d[1:] ** 2 + d[:-1] ** 2)  # e[j] = E_{j+1}
    if not np.isfinite(e[0]) or e[0] == 0:
        return None
    bad = ~np.isfinite(e) | (e <= floor * e[0])
    last = int(np.argmax(bad)) - 1 if bad.any() else e.size - 1
    if last < min_steps:
        return None
    first = last // 2
    k = np.arange(first, last + 1, dtype=float)
    slope = np.polyfit(k, np.log(e[first : last + 1]), 1)[0]
    return float(np.exp(slope))
