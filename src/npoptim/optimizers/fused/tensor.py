"""Compiled element loops of the whole-tensor rules LAMB, LARS and Prodigy (imported only on first use).

These rules need a reduction over a whole array (LAMB/LARS: the norms of the trust ratio) or over a
whole call (Prodigy: a dot product and an l1 norm) between their element-wise parts, so they cannot be
one pass like the rules of :mod:`.kernels`.  Here are only the element-wise parts, one serial loop per
array each; the reductions stay the very NumPy calls of the reference (``trust.py``, ``prodigy.py``), on
the same arrays, so everything is the same bits as ``backend="numpy"`` (see :mod:`.parts`).

Every loop repeats the reference's IEEE operations in its order and dtype: arrays are 1-D C-contiguous
views of one dtype (float32 or float64), ``c`` holds the per-step scalars the reference combines with
the arrays (Python floats cast to that dtype, as NumPy casts them, NEP 50).  Compiled with fast-math
off (no reassociation, no FMA contraction), ``error_model="numpy"`` and ``cache=True``, as the fused
kernels; self-contained, because numba's disk cache is invalidated only by a change to this file.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPTIONS = {"cache": True, "error_model": "numpy", "fastmath": False, "nogil": True}


@njit(**_OPTIONS)
def lamb_direction(p, g, m, v, u, c, decay):
    """LAMB's moments and direction: ``u = (m/bc1) / (sqrt(v/bc2) + eps) [+ wd p]``; ``p`` is only read.

    ``c`` = (b1, 1-b1, b2, 1-b2, 1-b1^t, 1-b2^t, eps, wd).
    """
    b1, one_b1, b2, one_b2, bc1, bc2, eps, wd = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    for i in range(p.shape[0]):
        gi = g[i]
        mi = m[i] * b1 + one_b1 * gi  # m *= b1; m += (1-b1) g
        vi = v[i] * b2 + one_b2 * gi * gi  # v *= b2; v += (1-b2) g g
        m[i] = mi
        v[i] = vi
        ui = (mi / bc1) / (np.sqrt(vi / bc2) + eps)
        if decay:
            ui = ui + wd * p[i]
        u[i] = ui


@njit(**_OPTIONS)
def scaled_step(p, u, c):
    """``p -= c[0] * u`` (LAMB's step, ``c[0]`` = lr times the trust ratio)."""
    step = c[0]
    for i in range(p.shape[0]):
        p[i] = p[i] - step * u[i]


@njit(**_OPTIONS)
def lars_step(p, g, v, c, nesterov):
    """LARS after its trust ratio: ``u = c[0] g``; ``v = mu v - u``; ``p += v`` (nesterov: ``mu v - u``)."""
    step, mu = c[0], c[1]
    for i in range(p.shape[0]):
        ui = step * g[i]
        vi = v[i] * mu - ui
        v[i] = vi
        if nesterov:
            p[i] = p[i] + (mu * vi - ui)
        else:
            p[i] = p[i] + vi


@njit(**_OPTIONS)
def prodigy_moments(g, m, v, s, c):
    """Prodigy's first pass: ``m = b1 m + cm g``, ``v = b2 v + cv (g g)``, ``s = b3 s + cs g``.

    ``c`` = (b1, cm, b2, cv, b3, cs) (``cm`` = d(1-b1), ``cv`` = d^2(1-b2), ``cs`` = (d/d0) dlr or (d/d0) d).
    """
    b1, cm, b2, cv, b3, cs = c[0], c[1], c[2], c[3], c[4], c[5]
    for i in range(g.shape[0]):
        gi = g[i]
        m[i] = m[i] * b1 + cm * gi
        v[i] = v[i] * b2 + cv * (gi * gi)
        s[i] = s[i] * b3 + cs * gi


@njit(**_OPTIONS)
def prodigy_step(p, g, m, v, c, decay, momentum):
    """Prodigy's second pass: ``den = sqrt(v) + d eps``; ``p += keep p`` (decoupled decay); then
    ``p -= dlr (m / den)`` or, without momentum, ``p -= (dlr d) (g / den)``.  ``c`` = (d eps, keep, step)."""
    deps, keep, step = c[0], c[1], c[2]
    for i in range(p.shape[0]):
        den = np.sqrt(v[i]) + deps
        pi = p[i]
        if decay:
            pi = pi + keep * pi
        if momentum:
            p[i] = pi - step * (m[i] / den)
        else:
            p[i] = pi - step * (g[i] / den)


#: Every kernel here (``parts.warm_up`` loads them all; the machine-code test inspects them all).
KERNELS = {
    "lamb_direction": lamb_direction,
    "scaled_step": scaled_step,
    "lars_step": lars_step,
    "prodigy_moments": prodigy_moments,
    "prodigy_step": prodigy_step,
}
