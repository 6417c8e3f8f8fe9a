"""The checks of one :meth:`~npoptim.optimizers.base.Optimizer.update` call, array by array, and the clipping norm.

Each raises the error the API documents (``TypeError`` / ``ValueError`` naming the key) before anything is
written; :meth:`Optimizer._prepare` calls them in its one walk over the dicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import NonFiniteGradientError

__all__: list[str] = []  # private to the optimizers package


def _skip_nonfinite(owner: str, on_nonfinite: str, work: list[Any], step: int) -> bool:
    """The non-finite check of a call, on its validated (and clipped) gradients ``work``.

    False: go on (every gradient finite, or ``on_nonfinite="propagate"``). True: ``"skip"`` and some
    gradient is NaN/inf (the caller counts the skipped step). ``"raise"``: raises
    :class:`NonFiniteGradientError` naming the keys and ``step``; nothing has been written either way.
    """
    if on_nonfinite == "propagate":
        return False
    bad = [key for key, _, g, _ in work if not np.isfinite(g).all()]
    if not bad:
        return False
    if on_nonfinite == "skip":
        return True
    raise NonFiniteGradientError(
        f"{owner}: non-finite gradient (NaN or inf) for key(s) {bad} at step {step}; nothing was updated",
        keys=bad,
        step=step,
    )


def _check_param(owner: str, key: str, p: Any) -> None:
    where = f"{owner}.update: params[{key!r}]"
    if not isinstance(p, np.ndarray):
        raise TypeError(f"{where} must be a np.ndarray, got {type(p).__name__}")
    if p.dtype.kind not in "fc":
        raise TypeError(
            f"{where} has dtype {p.dtype}; parameters must be floating (float16/32/64) or complex, "
            "since an in-place update of an integer or bool array would silently truncate"
        )
    if not p.flags.writeable:
        raise ValueError(f"{where} is not writeable; updates are made in place")
    if p.dtype.kind == "c" and not p.flags.c_contiguous:
        raise ValueError(
            f"{where} is a non-contiguous complex array; it must be C-contiguous to be viewed as pairs of reals"
        )


def _check_no_overlap(owner: str, params: Mapping[str, np.ndarray]) -> None:
    """Refuse parameters that share memory: each would be updated once per key that sees it.

    Sorts the arrays' byte ranges (O(n log n)) and asks ``np.shares_memory``
    only about ranges that overlap (interleaved strided views may not share).
    """
    spans = sorted(
        (*np.lib.array_utils.byte_bounds(p), key) for key, p in params.items() if p.size
    )
    hi, hi_key = -1, None
    for lo, end, key in spans:
        if lo < hi and np.shares_memory(params[key], params[hi_key]):
            same = params[key] is params[hi_key]
            how = "is the same array as" if same else "shares memory with"
            raise ValueError(
                f"{owner}.update: params[{key!r}] {how} params[{hi_key!r}]; "
                "each parameter must be its own array (an in-place update would apply twice)"
            )
        if end > hi:
            hi, hi_key = end, key


def _check_grad(owner: str, key: str, p: np.ndarray, g: Any) -> np.ndarray:
    where = f"{owner}.update: grads[{key!r}]"
    if isinstance(g, np.generic) and p.ndim == 0:
        g = np.asarray(g)  # ``2.0 * w`` of a 0-d array w is a NumPy scalar, not an array
    if not isinstance(g, np.ndarray):
        raise TypeError(f"{where} must be a np.ndarray or None, got {type(g).__name__}")
    if g.dtype.kind not in ("fc" if p.dtype.kind == "c" else "f"):
        allowed = "floating or complex" if p.dtype.kind == "c" else "real floating"
        raise TypeError(f"{where} has dtype {g.dtype}; a gradient for a {p.dtype} parameter must be {allowed}")
    if g.shape != p.shape:
        raise ValueError(f"{where} has shape {g.shape} but params[{key!r}] has shape {p.shape}")
    if g.dtype != p.dtype:
        with np.errstate(over="ignore"):  # an overflow becomes inf, which the finite check reports
            g = g.astype(p.dtype)
    return g


def _global_norm(arrays: list[np.ndarray]) -> float:
    """:math:`\\sqrt{\\sum_i \\|a_i\\|_2^2}` in float64 (complex: over real and imaginary parts)."""
    total = 0.0
    for a in arrays:
        r = np.ravel(a).astype(np.complex128 if a.dtype.kind == "c" else np.float64, copy=False)
        total += float(np.vdot(r, r).real)
    if math.isinf(total):  # the squares overflowed: scale by the largest magnitude (NaN/inf stay as they are)
        big = max(float(np.max(np.abs(a))) if a.size else 0.0 for a in arrays)
        if math.isfinite(big):
            return big * _global_norm([np.asarray(a / big) for a in arrays])
    return math.sqrt(total)


def _as_real(a: np.ndarray) -> np.ndarray:
    """View a C-contiguous complex array as interleaved reals (writes go through)."""
    return np.ascontiguousarray(a).reshape(-1).view(a.real.dtype)
