"""Compiled kernels of the element-wise rules issue 15 added: Rprop, ASGD, schedule-free SGD and AdamW.

The same three pieces as every rule of :mod:`.kernels` (``docs/performance.md``, "Adding a rule"): an
element loop repeating the rule's NumPy ``_rule`` operation by operation, in the same order and dtype
(so the same bits), its parallel driver and its serial small-call kernel.  They live here, beside
:mod:`.kernels` and :mod:`.serial` rather than in them, to keep those modules a readable size;
:func:`npoptim.optimizers.fused.load_kernels` and :func:`.small.kernels` merge :data:`DRIVERS` and
:data:`SERIAL` into theirs.  ``c`` holds ``(weight_decay, *_fused_scalars(t))`` in the parameter's dtype.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .kernels import _INLINE, _PARALLEL, _SERIAL, _grad, _piece
from .serial import _ACTIVE, _ROW, OK_SOME, REC, H, _prologue, _views

# --- the element loops -------------------------------------------------------------------


@njit(**_INLINE)
def _rprop(p, g, prev, step, s2, c):
    """Rprop.minus: ``c = (wd, eta_minus, eta_plus, step_min, step_max, 1, 0)``.

    ``sign(g g')`` of the reference is NaN-safe (``_sign``: sign(NaN) = 0): a NaN product is neither
    > 0 nor < 0 here either.  The clip is NumPy's: a NaN stays NaN."""
    wd, eta_minus, eta_plus, lo, hi, one, zero = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    for i in range(p.shape[0]):
        gi = _grad(p, g, i, wd)
        x = gi * prev[i]
        st = step[i] * (eta_plus if x > 0 else (eta_minus if x < 0 else one))
        st = st if st != st or st > lo else lo  # np.maximum(st, lo) of np.clip (NaN wins)
        st = st if st != st or st < hi else hi  # np.minimum(st, hi)
        step[i] = st
        gz = zero if x < 0 else gi  # after a sign flip the coordinate waits: its stored gradient is 0
        sign = one if gz > 0 else (-one if gz < 0 else zero)  # sign(NaN) = 0, as _sign
        p[i] = p[i] - sign * st
        prev[i] = gz


@njit(**_INLINE)
def _asgd(p, g, ax, s1, s2, c):
    """ASGD: ``c = (wd, 1 - lambd eta_t, eta_t, 1 if mu_t == 1 else 0, mu_t)``."""
    wd, keep, eta, copy, mu = c[0], c[1], c[2], c[3], c[4]
    if copy != 0:
        for i in range(p.shape[0]):
            pi = p[i] * keep - eta * _grad(p, g, i, wd)
            p[i] = pi
            ax[i] = pi
    else:
        for i in range(p.shape[0]):
            pi = p[i] * keep - eta * _grad(p, g, i, wd)
            p[i] = pi
            axi = ax[i]
            ax[i] = axi + (pi - axi) * mu


@njit(**_INLINE)
def _sf_sgd(p, g, z, x, s2, c):
    """Schedule-free SGD: ``c = (wd, lr, 1 - c_k+1, c_k+1, beta, 1 - beta)``; ``p`` holds y."""
    wd, lr, keep, ckp1, beta, one_beta = c[0], c[1], c[2], c[3], c[4], c[5]
    for i in range(p.shape[0]):
        zi = z[i] - lr * _grad(p, g, i, wd)
        xi = x[i] * keep + ckp1 * zi
        z[i] = zi
        x[i] = xi
        p[i] = xi * beta + zi * one_beta


@njit(**_INLINE)
def _sf_adamw_loop(p, g, z, x, v, c, decay):
    lr, keep, ckp1, beta, one_beta = c[1], c[2], c[3], c[4], c[5]
    b2, one_b2, bc, eps, lrwd = c[6], c[7], c[8], c[9], c[11]
    for i in range(p.shape[0]):
        gi = g[i]
        zi = z[i] - lrwd * p[i] if decay else z[i]  # decoupled decay at y, before the step
        vi = v[i] * b2 + one_b2 * gi * gi
        v[i] = vi
        zi = zi - lr * (gi / (np.sqrt(vi / bc) + eps))
        xi = x[i] * keep + ckp1 * zi
        z[i] = zi
        x[i] = xi
        p[i] = xi * beta + zi * one_beta


@njit(**_INLINE)
def _sf_adamw(p, g, z, x, v, c):
    """Schedule-free AdamW: ``c = (wd, lr, 1 - c_k+1, c_k+1, beta1, 1 - beta1, beta2, 1 - beta2,
    1 - beta2^(k+1), eps, decay flag, lr wd)``; the decay is decoupled (``c[0]`` is not added to g)."""
    if c[10] != 0:  # one loop each: the branch stays out of the element loop
        _sf_adamw_loop(p, g, z, x, v, c, True)
    else:
        _sf_adamw_loop(p, g, z, x, v, c, False)


# --- the parallel drivers -----------------------------------------------------------------


@njit(**_PARALLEL)
def rprop_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _rprop(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def asgd_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _asgd(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def schedulefree_sgd_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _sf_sgd(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def schedulefree_adamw_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _sf_adamw(p, g, s0, s1, s2, C[rows[k]])


# --- the serial small-call kernels (as serial.py's: check, finite check, update) ----------


@njit(**_SERIAL)
def rprop_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _rprop(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def asgd_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _asgd(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def schedulefree_sgd_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _sf_sgd(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def schedulefree_adamw_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _sf_adamw(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


#: Kernel name (``Optimizer._fused_kernel``) -> parallel driver / serial kernel; merged into
#: ``kernels.DRIVERS`` and ``serial.SERIAL`` when those are loaded.
DRIVERS = {
    "rprop": rprop_step,
    "asgd": asgd_step,
    "schedulefree_sgd": schedulefree_sgd_step,
    "schedulefree_adamw": schedulefree_adamw_step,
}
SERIAL = {
    "rprop": rprop_serial,
    "asgd": asgd_serial,
    "schedulefree_sgd": schedulefree_sgd_serial,
    "schedulefree_adamw": schedulefree_adamw_serial,
}
