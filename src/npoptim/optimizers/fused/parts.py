"""The compiled element-wise parts of the whole-tensor rules LAMB, LARS and Prodigy (issue 15).

These rules keep the base's update (one validating walk, clipping, the non-finite policy, atomicity:
see :meth:`npoptim.optimizers.base.Optimizer.update`); only how one array's element-wise arithmetic is
done changes.  For a parameter this path accepts (:func:`eligible`), its rule runs

* LAMB: one loop for ``m``, ``v`` and the direction ``u`` (into a scratch array), then the trust ratio
  ``trust_ratio(p, u)`` in NumPy on that ``u``, then one loop for ``p -= (lr ratio) u``;
* LARS: the L2 term ``g + wd p`` and the trust ratio in NumPy, then one loop for ``v`` and ``p``;
* Prodigy: per parameter the dot product in NumPy, one loop for ``m``, ``v``, ``s``, the l1 norm
  ``np.sum(np.abs(s))`` in NumPy; after ``d`` is updated, one loop for the step;

the loops of :mod:`.tensor`, which repeat the reference's operations in its order and dtype, so the
results are the same bits as ``backend="numpy"``: the reductions are the same NumPy calls on the same
arrays in both paths.

When it runs: ``backend="numba"`` -- always (the first call compiles or loads the loops, in the calling
thread). ``backend="auto"`` -- for a call (a ``dict`` of parameters) of at least
:data:`AUTO_MIN_ELEMENTS` (2**18) parameter elements once the loops for its dtypes are loaded; the first
such call starts loading them in a background thread and runs the NumPy path meanwhile (no compile ever
blocks an "auto" call). Smaller calls stay on NumPy. Declined, per parameter (the reference code runs,
same results): float16 and complex parameters, arrays that are not C-contiguous, aligned, native-endian
``np.ndarray``, read-only gradients (numba would compile another version for them) and a gradient that
shares memory with its parameter or its state.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from typing import Any

import numpy as np

__all__ = ["AUTO_MIN_ELEMENTS", "eligible", "kernels", "wanted", "warm_up"]

#: ``backend="auto"`` uses the loops from this many parameter elements per call on: the value of
#: ``fused.AUTO_MIN_ELEMENTS`` (a test checks they agree; this module does not import the package's
#: ``__init__``, which imports it from ``fused.warm_up``).
AUTO_MIN_ELEMENTS = 1 << 18

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_tensor: Any = None
_loaded: dict[np.dtype, bool] = {}  # backend="auto": True when loaded, False while loading
_errors: list[BaseException] = []
_start = threading.Lock()


def kernels() -> Any:
    """The compiled loops (:mod:`.tensor`; imports numba on first use)."""
    global _tensor
    if _tensor is None:
        from . import tensor

        _tensor = tensor
    return _tensor


def wanted(opt: Any, params: Any) -> bool:
    """Whether this call of ``opt`` (a LAMB, LARS or Prodigy) uses the compiled loops where eligible."""
    backend = opt.backend
    if backend == "numpy":
        return False
    if backend == "numba":
        return True  # the backend setter refused "numba" without numba
    if not isinstance(params, dict) or not _numba_available():
        return False
    arrays = [p for p in params.values() if isinstance(p, np.ndarray)]
    if sum(p.size for p in arrays) < AUTO_MIN_ELEMENTS:
        return False
    dtypes = {p.dtype for p in arrays} & set(_DTYPES)
    if not dtypes:
        return False
    if all(_loaded.get(dt) for dt in dtypes):
        return True
    _load_in_background(dtypes)
    return False


@functools.cache
def _numba_available() -> bool:
    """Whether numba can be imported (checked without importing it)."""
    return importlib.util.find_spec("numba") is not None


def _load_in_background(dtypes: set[np.dtype]) -> None:
    with _start:
        if _errors:
            return
        fresh = [dt for dt in dtypes if dt not in _loaded]
        for dt in fresh:
            _loaded[dt] = False
    if fresh:
        threading.Thread(target=_load, args=(fresh,), name="npoptim-numba-load-tensor", daemon=True).start()


def _load(dtypes: list[np.dtype]) -> None:
    """Load (or compile) every loop for ``dtypes``: one call each, with the argument types of real calls."""
    try:
        k = kernels()
        for dt in dtypes:
            a = [np.zeros(3, dt) for _ in range(5)]
            c = np.zeros(8, dt)
            k.lamb_direction(a[0], a[1], a[2], a[3], a[4], c, False)
            k.scaled_step(a[0], a[1], c)
            k.lars_step(a[0], a[1], a[2], c, False)
            k.prodigy_moments(a[0], a[1], a[2], a[3], c)
            k.prodigy_step(a[0], a[1], a[2], a[3], c, False, False)
            _loaded[dt] = True
    except BaseException as exc:  # noqa: BLE001 -- recorded; "auto" then stays on the NumPy path
        _errors.append(exc)


def warm_up() -> None:
    """Load (or compile) every loop for float32 and float64 now, in this thread (``fused.warm_up`` calls it)."""
    _load([dt for dt in _DTYPES if not _loaded.get(dt)])
    if _errors:
        raise _errors[0]


def _plain(a: Any) -> bool:
    return (
        type(a) is np.ndarray
        and a.dtype in _DTYPES
        and a.dtype.isnative
        and a.flags.c_contiguous
        and a.flags.aligned
        and a.flags.writeable
    )


def eligible(p: np.ndarray, g: Any, *slots: np.ndarray) -> bool:
    """Whether the loops may update ``p`` from ``g`` with state ``slots`` (all checked as :func:`_plain`,
    one dtype, ``g`` sharing no memory with the others)."""
    if not (_plain(p) and _plain(g) and g.dtype == p.dtype):
        return False
    for s in slots:
        if not (_plain(s) and s.dtype == p.dtype and s.shape == p.shape):
            return False
    return not any(np.may_share_memory(g, a) for a in (p, *slots))


def flat(a: np.ndarray) -> np.ndarray:
    """The 1-D view the loops take (of a C-contiguous array: no copy)."""
    return a.reshape(-1)


def scalars(dtype: np.dtype, *values: float) -> np.ndarray:
    """The Python floats ``values`` in ``dtype``, rounded as NumPy rounds them in ``array * value``."""
    return np.array(values, dtype)
