r"""Performance profiles (Dolan & Moré, 2002) and the cost they are computed from.

Definition
----------
Dolan, E. D. & Moré, J. J. (2002), "Benchmarking optimization software with
performance profiles", *Mathematical Programming* 91(2), 201-213, section 2.
For a set of problems :math:`P` and solvers :math:`S`, let
:math:`t_{p,s} > 0` be the cost for solver :math:`s` to solve problem
:math:`p` (here: the number of steps to reach a target), with
:math:`t_{p,s} = \infty` when it never does.  The *performance ratio* is

.. math::
    r_{p,s} = \frac{t_{p,s}}{\min_{s' \in S} t_{p,s'}}

(:math:`r_{p,s} = \infty` when :math:`t_{p,s} = \infty`, and for every
solver when no solver solves :math:`p`), and the *performance profile* of
solver :math:`s` is the fraction of problems it solves within a factor
:math:`\tau \ge 1` of the best solver:

.. math::
    \rho_s(\tau) = \frac{1}{|P|}\,\bigl|\{\, p \in P : r_{p,s} \le \tau \,\}\bigr|.

:math:`\rho_s(1)` is the fraction of problems on which :math:`s` is (one of)
the best; :math:`\lim_{\tau\to\infty}\rho_s(\tau)` the fraction it solves at all.

Cost used by sweeps
-------------------
The convergence test of Moré & Wild (2009), "Benchmarking derivative-free
optimization algorithms", *SIAM J. Optim.* 20(1), eq. 2.8: a run has solved
the problem at the first recorded step :math:`t` with

.. math:: f(x_t) \le f_L + \mathrm{tol}\,\bigl(f(x_0) - f_L\bigr)

where :math:`f_L` is the known minimum (test functions: the metric is the
suboptimality, so :math:`f_L = 0`) or, when none is known (training), the
smallest value any optimizer reached on that problem.  The curve tested is
the mean over the rerun seeds.  The cost is that step (at least 1).
"""

from __future__ import annotations

import numpy as np

__all__ = ["performance_ratios", "performance_profile", "steps_to_target"]


def _costs(costs: np.ndarray) -> np.ndarray:
    t = np.asarray(costs, dtype=float)
    if t.ndim != 2 or 0 in t.shape:
        raise ValueError(f"costs must be a non-empty 2-D table (problems x solvers), got shape {t.shape}")
    if np.isnan(t).any() or (t <= 0).any():
        bad = np.argwhere(np.isnan(t) | (t <= 0))[0]
        raise ValueError(
            f"costs must be > 0 or +inf (inf: not solved); got {t[tuple(bad)]!r} at problem {bad[0]}, solver {bad[1]}"
        )
    return t


def performance_ratios(costs: np.ndarray) -> np.ndarray:
    """:math:`r_{p,s}` for a ``(problems, solvers)`` cost table (inf where unsolved)."""
    t = _costs(costs)
    best = t.min(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        r = t / best
    r[~np.isfinite(t) | ~np.isfinite(np.broadcast_to(best, t.shape))] = np.inf
    return r


def performance_profile(costs: np.ndarray, taus: np.ndarray) -> np.ndarray:
    r""":math:`\rho_s(\tau)` for every solver and every ``tau``: shape ``(len(taus), solvers)``."""
    taus = np.atleast_1d(np.asarray(taus, dtype=float))
    if np.isnan(taus).any() or (taus < 1).any():
        raise ValueError(f"taus must be >= 1, got {taus.tolist()}")
    r = performance_ratios(costs)
    return (r[None, :, :] <= taus[:, None, None]).mean(axis=1)


def steps_to_target(steps: np.ndarray, curve: np.ndarray, target: float) -> float:
    """The first recorded step at which ``curve <= target`` (at least 1), or ``inf``."""
    steps, curve = np.asarray(steps), np.asarray(curve, dtype=float)
    if steps.shape != curve.shape:
        raise ValueError(f"steps and curve must have the same shape, got {steps.shape} and {curve.shape}")
    hit = np.flatnonzero(curve <= target)
    return float(max(int(steps[hit[0]]), 1)) if hit.size else float("inf")
