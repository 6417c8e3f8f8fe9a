"""The compiled side of the fused path (imported only on first use: it imports numba).

Three kinds of function, all compiled with ``error_model="numpy"`` (no
divide-by-zero check, so loops vectorise), ``fastmath`` off (every operation
is the IEEE operation NumPy does, in the same order, so results are
bit-identical to the NumPy reference) and ``cache=True`` (the machine code is
kept on disk, see ``docs/performance.md``):

* :func:`check` -- one serial pass over the *keys* (not the elements): reads
  each parameter's and gradient's ndarray header and confirms that nothing
  the cached plan relies on has changed (type, dtype, shape, flags, data
  address, no memory shared with a parameter or the state).  Microseconds for
  thousands of arrays; anything unusual sends the call to the reference path.
* :func:`finite` -- one parallel pass over every gradient element (4 of Adam's
  28 bytes per float32 element), so that a NaN/inf refuses the step *before*
  anything is written (not run with ``on_nonfinite="propagate"``).
* one ``<rule>_step`` driver per rule -- one parallel region over all
  parameters: the elements of all arrays form one virtual vector cut into
  equal chunks (see :class:`npoptim.optimizers.fused.Plan`), and each chunk
  runs the rule's element loop on its pieces.

Adding a rule = an element loop ``_<rule>(p, g, s0, s1, s2, c)`` (``c`` holds
the per-step scalars its ``_fused_scalars`` computed in Python, cast to the
parameter dtype; ``c[0]`` is always the weight decay) and a five-line driver
``<rule>_step`` that calls it; see :data:`DRIVERS`.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

_SERIAL = {"cache": True, "error_model": "numpy", "fastmath": False, "nogil": True}
_PARALLEL = {**_SERIAL, "parallel": True}
_INLINE = {"error_model": "numpy", "fastmath": False, "inline": "always"}

# ndarray flag bits (numpy/ndarraytypes.h; part of NumPy's stable C API)
_C_CONTIGUOUS = 0x1
_ALIGNED = 0x100
_WRITEABLE = 0x400


def _loader(ty):
    """A compiled ``load(addr)``: the value of numba type ``ty`` stored at address ``addr``."""

    @intrinsic
    def load(typingctx, addr):
        def codegen(context, builder, signature, args):
            ptr = builder.inttoptr(args[0], context.get_value_type(ty).as_pointer())
            return builder.load(ptr)

        return ty(addr), codegen

    return load


_load_i64 = _loader(types.int64)  # pointers, sizes, dimensions
_load_i32 = _loader(types.int32)  # ndim, flags, dtype number
_load_u8 = _loader(types.uint8)  # byte-order character


@intrinsic
def _pointer(typingctx, addr, like):
    """``addr`` as a pointer to elements of the array ``like``'s dtype."""
    sig = types.CPointer(like.dtype)(addr, like)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


# --- the header check ----------------------------------------------------------


@njit(**_SERIAL)
def check(
    ptuple,
    gtuple,
    idx,
    pids,
    none_id,
    ndarray_type,
    descr,
    type_num,
    layout,
    pinfo,
    dims,
    spans,
    state_spans,
    gptr,
    active,
):
    """Confirm the cached plan still describes this call; fill ``gptr`` and ``active``.

    ``ptuple``/``gtuple`` are the addresses of tuples of this call's parameter
    and gradient objects in plan order (their item pointers are the objects'
    addresses); ``idx[k]`` is the position of this group's key ``k`` in them and
    ``pids[k]`` the planned parameter object (held by the plan, so an equal
    address means the same object).
    ``layout`` = byte offsets of (ob_type, data, nd, dimensions, descr, flags)
    in the ndarray object and of (type_num, byteorder) in the dtype object;
    ``pinfo[k]`` = (type, data, nd, first dim index, itemsize, size, dtype) of
    parameter ``k`` when the plan was made; ``descr``/``type_num`` the group's
    canonical dtype (a gradient may also carry an equal dtype object, e.g. after
    pickling: same type number, native byte order); ``spans`` the parameters'
    byte ranges sorted by start, ``state_spans`` the state buffers'.
    Returns -1 if everything is as planned; else ``k`` if parameter ``k`` is
    not as planned (the caller re-plans) or ``n + k`` if gradient ``k`` is
    unusual (the caller takes the reference path).
    """
    o_type, o_data, o_nd, o_dims, o_descr, o_flags = layout[0], layout[1], layout[2], layout[3], layout[4], layout[5]
    o_num, o_order, o_items = layout[6], layout[7], layout[8]
    n = pids.shape[0]
    need_p = _C_CONTIGUOUS | _ALIGNED | _WRITEABLE
    need_g = _C_CONTIGUOUS | _ALIGNED
    starts = spans[:, 0]
    for k in range(n):
        p = _load_i64(ptuple + o_items + 8 * idx[k])
        if p != pids[k]:
            return k
        nd = pinfo[k, 2]
        d0 = pinfo[k, 3]
        if (
            _load_i64(p + o_type) != pinfo[k, 0]
            or _load_i64(p + o_data) != pinfo[k, 1]
            or _load_i32(p + o_nd) != nd
            or _load_i64(p + o_descr) != pinfo[k, 6]
            or (_load_i32(p + o_flags) & need_p) != need_p
        ):
            return k
        pd = _load_i64(p + o_dims)
        for j in range(nd):
            if _load_i64(pd + 8 * j) != dims[d0 + j]:
                return k
        g = _load_i64(gtuple + o_items + 8 * idx[k])
        if g == none_id:
            active[k] = False
            gptr[k] = 0
            continue
        if (
            _load_i64(g + o_type) != ndarray_type
            or _load_i32(g + o_nd) != nd
            or (_load_i32(g + o_flags) & need_g) != need_g
        ):
            return n + k
        gdescr = _load_i64(g + o_descr)
        if gdescr != descr and (_load_i32(gdescr + o_num) != type_num or _load_u8(gdescr + o_order) != 61):  # "="
            return n + k
        gd = _load_i64(g + o_dims)
        for j in range(nd):
            if _load_i64(gd + 8 * j) != dims[d0 + j]:
                return n + k
        lo = _load_i64(g + o_data)
        hi = lo + pinfo[k, 4] * pinfo[k, 5]
        if hi > lo:  # a gradient sharing memory with a parameter or the state is left to the reference path
            i = np.searchsorted(starts, hi) - 1
            if i >= 0 and spans[i, 1] > lo:
                return n + k
            for b in range(state_spans.shape[0]):
                if state_spans[b, 0] < hi and lo < state_spans[b, 1]:
                    return n + k
        gptr[k] = lo
        active[k] = True
    return -1


# --- the finite check --------------------------------------------------------------


@njit(**_PARALLEL)
def finite(gptr, active, keyinfo, seg, chunks, exponent):
    """True if every element of every active gradient is finite.

    ``exponent``: a one-element unsigned array of the gradients' width holding the exponent
    mask; a NaN/inf has all exponent bits set, so max(bits & mask) == mask.  An unsigned max-
    reduction vectorises (a float one would not without fast-math; a boolean OR read 2x slower)."""
    nchunks = chunks.shape[0] - 1
    bad = np.zeros(nchunks, np.bool_)
    e = exponent[0]
    for r in prange(nchunks):
        # Backwards: the update pass then starts with the gradients read last, still in cache.
        c = nchunks - 1 - r
        found = exponent[0] ^ exponent[0]  # zero of the bits' width (``e & 0`` would widen to int64)
        for j in range(chunks[c], chunks[c + 1]):
            k = seg[j, 0]
            if active[k]:
                g = numba.carray(_pointer(gptr[k], exponent), keyinfo[k, 1])[seg[j, 1] : seg[j, 2]]
                for i in range(g.shape[0]):  # from 0: numba then knows i >= 0 (no wraparound check)
                    x = g[i] & e
                    found = x if x > found else found
        bad[c] = found == e
    return not bad.any()


# --- the rules -----------------------------------------------------------------------
# Each element loop repeats its rule's NumPy `_rule` (rules.py) operation by
# operation, in the same order and the same dtype, so the results are the same bits.
# ``c`` = (weight_decay, *the rule's `_fused_scalars(t)`), already in p's dtype.


@njit(**_INLINE)
def _grad(p, g, i, wd):
    return g[i] + wd * p[i] if wd != 0 else g[i]


@njit(**_INLINE)
def _sgd(p, g, s0, s1, s2, c):
    wd, lr = c[0], c[1]
    for i in range(p.shape[0]):
        p[i] = p[i] - lr * _grad(p, g, i, wd)


@njit(**_INLINE)
def _momentum(p, g, v, s1, s2, c):
    wd, lr, mu = c[0], c[1], c[2]
    for i in range(p.shape[0]):
        vi = v[i] * mu - lr * _grad(p, g, i, wd)
        v[i] = vi
        p[i] = p[i] + vi


@njit(**_INLINE)
def _nesterov(p, g, v, s1, s2, c):
    wd, lr, mu, mu2, one_mu = c[0], c[1], c[2], c[3], c[4]
    for i in range(p.shape[0]):
        step = lr * _grad(p, g, i, wd)
        vi = v[i]
        p[i] = p[i] + (mu2 * vi - one_mu * step)
        v[i] = vi * mu - step


@njit(**_INLINE)
def _adagrad(p, g, h, s1, s2, c):
    wd, lr, eps = c[0], c[1], c[2]
    for i in range(p.shape[0]):
        gi = _grad(p, g, i, wd)
        hi = h[i] + gi * gi
        h[i] = hi
        p[i] = p[i] - lr * gi / (np.sqrt(hi) + eps)


@njit(**_INLINE)
def _rmsprop(p, g, h, s1, s2, c):
    wd, lr, rho, one_rho, eps = c[0], c[1], c[2], c[3], c[4]
    for i in range(p.shape[0]):
        gi = _grad(p, g, i, wd)
        hi = h[i] * rho + one_rho * gi * gi
        h[i] = hi
        p[i] = p[i] - lr * gi / (np.sqrt(hi) + eps)


# RMSprop's options, one loop each (a branch inside the loop costs ~30% here): slots h, [gbar], [v];
# c = (wd, lr, rho, 1 - rho, eps, centered, mu, has_v) as RMSprop._fused_scalars gives them.
@njit(**_INLINE)
def _rmsprop_centered(p, g, h, gbar, s2, c):
    wd, lr, rho, one_rho, eps = c[0], c[1], c[2], c[3], c[4]
    for i in range(p.shape[0]):
        gi = _grad(p, g, i, wd)
        hi = h[i] * rho + one_rho * gi * gi
        h[i] = hi
        gb = gbar[i] * rho + one_rho * gi
        gbar[i] = gb
        p[i] = p[i] - lr * gi / (np.sqrt(hi - gb * gb) + eps)


@njit(**_INLINE)
def _rmsprop_momentum(p, g, h, v, s2, c):
    wd, lr, rho, one_rho, eps, mu = c[0], c[1], c[2], c[3], c[4], c[6]
    for i in range(p.shape[0]):
        gi = _grad(p, g, i, wd)
        hi = h[i] * rho + one_rho * gi * gi
        h[i] = hi
        vi = v[i] * mu - lr * gi / (np.sqrt(hi) + eps)
        v[i] = vi
        p[i] = p[i] + vi


@njit(**_INLINE)
def _rmsprop_centered_momentum(p, g, h, gbar, v, c):
    wd, lr, rho, one_rho, eps, mu = c[0], c[1], c[2], c[3], c[4], c[6]
    for i in range(p.shape[0]):
        gi = _grad(p, g, i, wd)
        hi = h[i] * rho + one_rho * gi * gi
        h[i] = hi
        gb = gbar[i] * rho + one_rho * gi
        gbar[i] = gb
        vi = v[i] * mu - lr * gi / (np.sqrt(hi - gb * gb) + eps)
        v[i] = vi
        p[i] = p[i] + vi


@njit(**_INLINE)
def _adam(p, g, m, v, s2, c):
    wd, b1, one_b1, b2, one_b2, sqrt_bc2, eps, step = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    for i in range(p.shape[0]):
        gi = _grad(p, g, i, wd)
        mi = m[i] * b1 + one_b1 * gi
        vi = v[i] * b2 + one_b2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - step * (mi / (np.sqrt(vi) / sqrt_bc2 + eps))


@njit(**_INLINE)
def _adam_amsgrad(p, g, m, v, vmax, c):
    wd, b1, one_b1, b2, one_b2, sqrt_bc2, eps, step = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    for i in range(p.shape[0]):
        gi = _grad(p, g, i, wd)
        mi = m[i] * b1 + one_b1 * gi
        vi = v[i] * b2 + one_b2 * gi * gi
        m[i] = mi
        v[i] = vi
        vm = vmax[i] if vmax[i] > vi or vmax[i] != vmax[i] else vi  # np.maximum: a NaN on either side wins
        vmax[i] = vm
        p[i] = p[i] - step * (mi / (np.sqrt(vm) / sqrt_bc2 + eps))


# AdamW: c[0] (weight decay) is decoupled: p is first scaled by c[9] = 1 - lr*wd; g is used as given.
@njit(**_INLINE)
def _adamw(p, g, m, v, s2, c):
    b1, one_b1, b2, one_b2, sqrt_bc2, eps, step, keep = c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[9]
    for i in range(p.shape[0]):
        pi = p[i] * keep
        gi = g[i]
        mi = m[i] * b1 + one_b1 * gi
        vi = v[i] * b2 + one_b2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = pi - step * (mi / (np.sqrt(vi) / sqrt_bc2 + eps))


@njit(**_INLINE)
def _adamw_amsgrad(p, g, m, v, vmax, c):
    b1, one_b1, b2, one_b2, sqrt_bc2, eps, step, keep = c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[9]
    for i in range(p.shape[0]):
        pi = p[i] * keep
        gi = g[i]
        mi = m[i] * b1 + one_b1 * gi
        vi = v[i] * b2 + one_b2 * gi * gi
        m[i] = mi
        v[i] = vi
        vm = vmax[i] if vmax[i] > vi else vi
        vmax[i] = vm
        p[i] = pi - step * (mi / (np.sqrt(vm) / sqrt_bc2 + eps))


@njit(**_INLINE)
def _nadam(p, g, m, v, s2, c):
    wd, b1, one_b1, b2, one_b2, bc2, eps, coef_g, coef_m = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
    for i in range(p.shape[0]):
        gi = _grad(p, g, i, wd)
        mi = m[i] * b1 + one_b1 * gi
        vi = v[i] * b2 + one_b2 * gi * gi
        m[i] = mi
        v[i] = vi
        denom = np.sqrt(vi / bc2) + eps
        pi = p[i] - coef_g * (gi / denom)
        p[i] = pi - coef_m * (mi / denom)


@njit(**_INLINE)
def _adamax(p, g, m, u, s2, c):
    wd, b1, one_b1, b2, eps, step = c[0], c[1], c[2], c[3], c[4], c[5]
    for i in range(p.shape[0]):
        gi = _grad(p, g, i, wd)
        mi = m[i] * b1 + one_b1 * gi
        m[i] = mi
        a = u[i] * b2
        b = np.abs(gi) + eps
        ui = a if a >= b or a != a else b  # np.maximum: a NaN on either side wins
        u[i] = ui
        p[i] = p[i] - step * (mi / ui)


@njit(**_INLINE)
def _adadelta(p, g, h, d, s2, c):
    wd, lr, rho, one_rho, eps = c[0], c[1], c[2], c[3], c[4]
    for i in range(p.shape[0]):
        gi = _grad(p, g, i, wd)
        hi = h[i] * rho + one_rho * gi * gi
        h[i] = hi
        delta = np.sqrt(d[i] + eps) / np.sqrt(hi + eps) * gi
        d[i] = d[i] * rho + one_rho * delta * delta
        p[i] = p[i] - lr * delta


@njit(**_INLINE)
def _radam(p, g, m, v, s2, c):
    wd, b1, one_b1, b2, one_b2, rectified, step, eps = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    for i in range(p.shape[0]):
        gi = _grad(p, g, i, wd)
        mi = m[i] * b1 + one_b1 * gi
        vi = v[i] * b2 + one_b2 * gi * gi
        m[i] = mi
        v[i] = vi
        if rectified != 0:
            p[i] = p[i] - step * (mi / (np.sqrt(vi) + eps))
        else:
            p[i] = p[i] - step * mi


@njit(**_INLINE)
def _lion(p, g, m, s1, s2, c):
    wd, lr, b1, one_b1, b2, one_b2 = c[0], c[1], c[2], c[3], c[4], c[5]
    for i in range(p.shape[0]):
        gi = _grad(p, g, i, wd)
        mi = m[i]
        p[i] = p[i] - lr * np.sign(b1 * mi + one_b1 * gi)
        m[i] = mi * b2 + one_b2 * gi


# --- the drivers: one parallel region over all parameters ------------------------------


@njit(**_INLINE)
def _piece(j, seg, keyinfo, gptr, S0, S1, S2):
    """Views of segment ``j``: (key, param piece, grad piece, state pieces)."""
    k, lo, hi, off = seg[j, 0], seg[j, 1], seg[j, 2], seg[j, 3]
    n = keyinfo[k, 1]
    p = numba.carray(_pointer(keyinfo[k, 0], S0), n)[lo:hi]
    g = numba.carray(_pointer(gptr[k], S0), n)[lo:hi]
    e = off + hi - lo
    return k, p, g, S0[off:e], S1[off:e], S2[off:e]


@njit(**_PARALLEL)
def sgd_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _sgd(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def momentum_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _momentum(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def nesterov_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _nesterov(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def adagrad_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _adagrad(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def rmsprop_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _rmsprop(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def adam_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _adam(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def adamw_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _adamw(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def nadam_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _nadam(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def adamax_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _adamax(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def adadelta_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _adadelta(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def radam_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _radam(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def lion_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _lion(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def rmsprop_centered_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _rmsprop_centered(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def rmsprop_momentum_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _rmsprop_momentum(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def rmsprop_centered_momentum_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _rmsprop_centered_momentum(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def adam_amsgrad_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _adam_amsgrad(p, g, s0, s1, s2, C[rows[k]])


@njit(**_PARALLEL)
def adamw_amsgrad_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _adamw_amsgrad(p, g, s0, s1, s2, C[rows[k]])


#: The kernel name an optimizer declares (``Optimizer._fused_kernel``) -> its driver.
DRIVERS = {
    "sgd": sgd_step,
    "momentum": momentum_step,
    "nesterov": nesterov_step,
    "adagrad": adagrad_step,
    "rmsprop": rmsprop_step,
    "adam": adam_step,
    "adamw": adamw_step,
    "nadam": nadam_step,
    "adamax": adamax_step,
    "adadelta": adadelta_step,
    "radam": radam_step,
    "lion": lion_step,
    "rmsprop_centered": rmsprop_centered_step,
    "rmsprop_momentum": rmsprop_momentum_step,
    "rmsprop_centered_momentum": rmsprop_centered_momentum_step,
    "adam_amsgrad": adam_amsgrad_step,
    "adamw_amsgrad": adamw_amsgrad_step,
}


# --- a roofline kernel for the benchmarks: the same traffic, no math ---------------------


@njit(**_INLINE)
def _traffic(p, g, s0, s1, s2, c):
    """Read p, g and ``c[0]`` state slots; write p and those slots; one add per element."""
    nslots = int(c[0])
    if nslots == 0:
        for i in range(p.shape[0]):
            p[i] = p[i] + g[i]
    elif nslots == 1:
        for i in range(p.shape[0]):
            x = p[i] + g[i] + s0[i]
            p[i] = x
            s0[i] = x
    else:
        for i in range(p.shape[0]):
            x = p[i] + g[i] + s0[i] + s1[i]
            p[i] = x
            s0[i] = x
            s1[i] = x


@njit(**_PARALLEL)
def roofline_step(gptr, active, keyinfo, seg, chunks, S0, S1, S2, C, rows):
    """A driver whose "rule" only moves a rule's bytes: the benchmarks' 100 % (``C[:, 0]`` = slot count)."""
    for c in prange(chunks.shape[0] - 1):
        for j in range(chunks[c], chunks[c + 1]):
            k, p, g, s0, s1, s2 = _piece(j, seg, keyinfo, gptr, S0, S1, S2)
            if active[k]:
                _traffic(p, g, s0, s1, s2, C[rows[k]])
