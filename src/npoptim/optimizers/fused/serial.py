"""Serial kernels of the fused path: small calls in ONE compiled call, no parallel region.

For a call of at most :data:`npoptim.optimizers.fused.SERIAL_MAX_ELEMENTS` elements
(the book's MLP, a 2-D trajectory), waking numba's worker threads costs more
than the whole update.  Each ``<rule>_serial`` here does, in one serial call
and in this order: the header check (as :func:`.kernels.check`: nothing the
plan relies on has changed), the finite check over every gradient element
(if asked), and only then the rule's element loop (the same inline loop the
parallel driver runs, so the same bits).  A refusal at any stage returns
before anything is written.

All integer inputs come packed in one int64 array ``M`` (fewer arguments:
each array argument costs numba's dispatcher ~0.15 us) -- its layout is
built by :class:`npoptim.optimizers.fused.Plan` (``_pack``):

* ``M[0:9]``   byte offsets in ndarray / dtype / tuple objects (``fused._ndarray_layout``);
* ``M[9:18]``  id(None), id(np.ndarray), the group's dtype object id and type number,
  n (keys), number of state buffers, check-finite flag (0/1), number of dims,
  all-active flag (1: a ``None`` gradient refuses the call, see ``small.make_lane``);
* ``M[H:]``    per key ``k`` a record of :data:`REC` int64 at ``H + REC*k``:
  (param id, type id, data address, ndim, first dim index, itemsize, size,
  dtype id, gradient address [out], active [out], row of ``C``, state offset);
* then the dims of every parameter, the parameters' byte spans sorted by start
  (all starts, then all ends) and the state buffers' spans (start, end pairs).

Return codes: :data:`OK` (every key updated), :data:`OK_SOME` (keys with a
``None`` gradient skipped), :data:`REPLAN` (a parameter is not the planned
one), :data:`DECLINE` (an unusual gradient), :data:`NONFINITE` (a NaN/inf):
the last three wrote nothing.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit

from .kernels import (
    _ALIGNED,
    _C_CONTIGUOUS,
    _INLINE,
    _SERIAL,
    _WRITEABLE,
    _adadelta,
    _adagrad,
    _adam,
    _adam_amsgrad,
    _adamax,
    _adamw,
    _adamw_amsgrad,
    _lion,
    _load_i32,
    _load_i64,
    _load_u8,
    _momentum,
    _nadam,
    _nesterov,
    _pointer,
    _radam,
    _rmsprop,
    _rmsprop_centered,
    _rmsprop_centered_momentum,
    _rmsprop_momentum,
    _sgd,
)

OK, OK_SOME, REPLAN, DECLINE, NONFINITE = 0, 1, 2, 3, 4
#: Header length and per-key record length in ``M``.
H, REC = 24, 12
# record fields
_PID, _TYPE, _DATA, _ND, _D0, _ITEM, _SIZE, _DESCR, _GPTR, _ACTIVE, _ROW, _OFF = range(REC)


@njit(**_INLINE)
def _check(ptuple, gtuple, M):
    """The header check of :func:`.kernels.check` on the packed ``M``; fills gradient addresses and active flags."""
    o_type, o_data, o_nd, o_dims, o_descr, o_flags = M[0], M[1], M[2], M[3], M[4], M[5]
    o_num, o_order, o_items = M[6], M[7], M[8]
    none_id, ndarray_type, descr, type_num, n, nb, ndims = M[9], M[10], M[11], M[12], M[13], M[14], M[16]
    dims = H + REC * n
    starts = M[dims + ndims : dims + ndims + n]
    ends = M[dims + ndims + n : dims + ndims + 2 * n]
    sspans = dims + ndims + 2 * n
    need_p = _C_CONTIGUOUS | _ALIGNED | _WRITEABLE
    need_g = _C_CONTIGUOUS | _ALIGNED
    status = OK
    for k in range(n):
        r = H + REC * k
        p = _load_i64(ptuple + o_items + 8 * k)
        nd = M[r + _ND]
        d0 = dims + M[r + _D0]
        if (
            p != M[r + _PID]
            or _load_i64(p + o_type) != M[r + _TYPE]
            or _load_i64(p + o_data) != M[r + _DATA]
            or _load_i32(p + o_nd) != nd
            or _load_i64(p + o_descr) != M[r + _DESCR]
            or (_load_i32(p + o_flags) & need_p) != need_p
        ):
            return REPLAN
        pd = _load_i64(p + o_dims)
        for j in range(nd):
            if _load_i64(pd + 8 * j) != M[d0 + j]:
                return REPLAN
        g = _load_i64(gtuple + o_items + 8 * k)
        if g == none_id:
            M[r + _ACTIVE] = 0
            M[r + _GPTR] = 0
            status = OK_SOME
            continue
        if (
            _load_i64(g + o_type) != ndarray_type
            or _load_i32(g + o_nd) != nd
            or (_load_i32(g + o_flags) & need_g) != need_g
        ):
            return DECLINE
        gdescr = _load_i64(g + o_descr)
        if gdescr != descr and (_load_i32(gdescr + o_num) != type_num or _load_u8(gdescr + o_order) != 61):  # "="
            return DECLINE
        gd = _load_i64(g + o_dims)
        for j in range(nd):
            if _load_i64(gd + 8 * j) != M[d0 + j]:
                return DECLINE
        lo = _load_i64(g + o_data)
        hi = lo + M[r + _ITEM] * M[r + _SIZE]
        if hi > lo:  # a gradient sharing memory with a parameter or the state is left to the reference path
            i = np.searchsorted(starts, hi) - 1
            if i >= 0 and ends[i] > lo:
                return DECLINE
            for b in range(nb):
                if M[sspans + 2 * b] < hi and lo < M[sspans + 2 * b + 1]:
                    return DECLINE
        M[r + _GPTR] = lo
        M[r + _ACTIVE] = 1
    return status


@njit(**_INLINE)
def _finite(M, E):
    """True if every element of every active gradient is finite (exponent bits not all set; see kernels.finite)."""
    e = E[0]
    found = E[0] ^ E[0]  # a zero of the gradients' unsigned width (``e & 0`` would widen to int64)
    for k in range(M[13]):
        r = H + REC * k
        if M[r + _ACTIVE]:
            g = numba.carray(_pointer(M[r + _GPTR], E), M[r + _SIZE])
            for i in range(g.shape[0]):
                x = g[i] & e
                found = x if x > found else found  # an unsigned max-reduction: vectorises, ~100 GB/s in cache
    return found != e


@njit(**_INLINE)
def _prologue(ptuple, gtuple, M, E):
    status = _check(ptuple, gtuple, M)
    if status == OK_SOME and M[17] != 0:  # the lane's call: it handles only calls where every key has a gradient
        return DECLINE
    if status <= OK_SOME and M[15] != 0 and not _finite(M, E):
        return NONFINITE
    return status


@njit(**_INLINE)
def _views(M, S, k):
    """Parameter, gradient and state views of key ``k`` (state: rows of ``S``, unused slots alias row 0)."""
    r = H + REC * k
    n, off = M[r + _SIZE], M[r + _OFF]
    p = numba.carray(_pointer(M[r + _DATA], S), n)
    g = numba.carray(_pointer(M[r + _GPTR], S), n)
    ns = S.shape[0]
    s0 = S[0, off : off + n]
    s1 = S[min(1, ns - 1), off : off + n]
    s2 = S[min(2, ns - 1), off : off + n]
    return p, g, s0, s1, s2


# --- one serial kernel per rule: check, finite check, update --------------------------------


@njit(**_SERIAL)
def sgd_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _sgd(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def momentum_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _momentum(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def nesterov_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _nesterov(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def adagrad_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _adagrad(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def rmsprop_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _rmsprop(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def adam_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _adam(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def adamw_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _adamw(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def nadam_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _nadam(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def adamax_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _adamax(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def adadelta_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _adadelta(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def radam_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _radam(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def lion_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _lion(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def rmsprop_centered_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _rmsprop_centered(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def rmsprop_momentum_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _rmsprop_momentum(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def rmsprop_centered_momentum_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _rmsprop_centered_momentum(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def adam_amsgrad_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _adam_amsgrad(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


@njit(**_SERIAL)
def adamw_amsgrad_serial(ptuple, gtuple, M, S, C, E):
    status = _prologue(ptuple, gtuple, M, E)
    if status <= OK_SOME:
        for k in range(M[13]):
            if M[H + REC * k + _ACTIVE]:
                p, g, s0, s1, s2 = _views(M, S, k)
                _adamw_amsgrad(p, g, s0, s1, s2, C[M[H + REC * k + _ROW]])
    return status


#: The kernel name an optimizer declares (``Optimizer._fused_kernel``) -> its serial kernel.
SERIAL = {
    "sgd": sgd_serial,
    "momentum": momentum_serial,
    "nesterov": nesterov_serial,
    "adagrad": adagrad_serial,
    "rmsprop": rmsprop_serial,
    "adam": adam_serial,
    "adamw": adamw_serial,
    "nadam": nadam_serial,
    "adamax": adamax_serial,
    "adadelta": adadelta_serial,
    "radam": radam_serial,
    "lion": lion_serial,
    "rmsprop_centered": rmsprop_centered_serial,
    "rmsprop_momentum": rmsprop_momentum_serial,
    "rmsprop_centered_momentum": rmsprop_centered_momentum_serial,
    "adam_amsgrad": adam_amsgrad_serial,
    "adamw_amsgrad": adamw_amsgrad_serial,
}
