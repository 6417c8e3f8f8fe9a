"""The fast path of :meth:`Optimizer.update`: one compiled pass over all parameters.

What it does
------------
The NumPy reference (``Optimizer._rule`` applied key by key) makes about ten
passes over memory per step (one per ufunc) and pays Python per array.  This
path runs each rule as ONE loop over every element of every parameter, in
ONE parallel region per step, compiled by numba.  Results are bit-identical
to the reference (same IEEE operations in the same order, in the same dtype;
no fast-math), which ``tests/test_fused.py`` checks for every rule.

How a step goes (see ``docs/performance.md``)
----------------------------------------------
1. A :class:`Plan` describes the last call that went through here: the keys,
   the parameter arrays (held, so their identities stay meaningful), their
   dtypes, shapes and addresses, and the state -- one flat buffer per slot
   and dtype, whose per-key views ARE ``opt.state[key][slot]``.  The plan is
   made once, after the reference validation (``Optimizer._prepare``, the one
   walk over the dicts) accepted a call, and remade only when the keys, the
   parameter objects or the state change.
2. Each step, Python only confirms the key sets, the parameter identities and
   collects the gradients' object ids (C-level ``map`` calls, ~0.1 us per key).
   The compiled :func:`~.kernels.check` then reads every parameter's and
   gradient's ndarray header (dtype, shape, flags, address): anything unlike
   the plan -- a gradient of another dtype or shape, a non-contiguous or
   read-only array, a list, shared memory -- makes this path decline, and the
   reference path handles the call (and raises its usual errors).
3. A parallel finite check over the gradients; on NaN/inf the path declines,
   so the reference path raises or skips exactly as documented, having
   written nothing.
4. The per-step scalars (learning rate, bias corrections, ...) are computed
   once in Python by the rule's ``_fused_scalars(t)`` -- one row per distinct
   step count -- and the rule's driver updates everything.

What it declines (the reference path runs instead, same results): float16
and complex parameters, parameters or gradients that are not C-contiguous,
aligned, native-endian float32/float64 ``np.ndarray`` (gradients: exactly
``np.ndarray``), gradients of another dtype than their parameter, parameters
that share memory, mappings other than ``dict``, and rules without a kernel.
"""

from __future__ import annotations

import functools
import importlib.util
import operator
import os
import threading
from typing import Any

import numpy as np

from . import parts, small  # parts: LAMB/LARS/Prodigy's loops, for warm_up
from .layout import ndarray_layout as _ndarray_layout

__all__ = ["BACKENDS", "numba_available", "try_update", "warm_up", "load_kernels", "declare_classes"]

_DECLARED: list[type] = []  # the classes warm_up loads kernels for, as the registry declares them


def declare_classes(classes: Any) -> None:
    """Tell the fast path which optimizer classes exist (the registry, a floor above, calls this on import)."""
    _DECLARED[:] = list(classes)


#: The values of the ``backend`` constructor argument.
BACKENDS = ("auto", "numba", "numpy")

#: Elements per unit of parallel work (a chunk may span several small arrays).
BLOCK = 1 << 16

#: ``backend="auto"`` uses the compiled path only from this many parameter elements
#: on: below it, waking the worker threads and checking headers costs more than
#: NumPy's passes (the book's MNIST MLP, ~110K elements, ran faster on the NumPy
#: path here), and a tiny problem never pays numba's start-up.  ``backend="numba"``
#: ignores it.
AUTO_MIN_ELEMENTS = 1 << 18

#: Plans of one dtype and at most this many elements run serially: header check, finite
#: check and update in ONE compiled call, no parallel region (``small.py``).  Below it
#: ``backend="auto"`` also uses the compiled path, once that rule's serial kernel is loaded.
SERIAL_MAX_ELEMENTS = 1 << 18

#: ``backend="auto"``: once a process has spent this many seconds in NumPy-path steps, a small
#: call starts loading its serial kernel in the background.  Loading (import numba, load the
#: machine code: 1-3 s of CPU, mostly holding the GIL) pays off only for a process that goes on
#: stepping for longer than that: a 25,000-call sweep (0.4 s of steps) ran 2.3x slower when it
#: loaded after its first 500 calls (docs/performance.md).
AUTO_LOAD_AFTER_SECONDS = 2.0
_reference_seconds = 0.0

_NONE_ID = id(None)
_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_lock = threading.Lock()  # numba's workqueue threading layer must not be entered by two threads at once
_kernels: Any = None
# backend="auto" loads kernels in the background: (class, dtype) -> True when loaded, False while loading
_warm: dict[tuple[str, np.dtype], bool] = {}  # keyed by kernel name: options may have their own kernel
_warm_serial: dict[tuple[str, np.dtype], bool] = {}  # the same for the serial kernels
_warm_errors: list[BaseException] = []


@functools.cache
def numba_available() -> bool:
    """Whether numba can be imported (checked without importing it)."""
    return importlib.util.find_spec("numba") is not None


def load_kernels() -> Any:
    """The compiled kernels module, importing numba on first use."""
    global _kernels
    if _kernels is None:
        _configure_threading()
        from . import kernels as k
        from . import rprop_asgd_sf  # issue 15's rules, in a module of their own
        k.DRIVERS.update(rprop_asgd_sf.DRIVERS)
        _kernels = k
    return _kernels


def _configure_threading() -> None:
    """Keep numba off its OpenMP threading layer unless the user chose one.

    numba's ``omp`` layer and torch's OpenMP runtime in one process made torch's
    CPU steps ~90x slower here.  Unless ``NUMBA_THREADING_LAYER`` is set (or the
    layer is already running), prefer ``tbb`` then ``workqueue``; this changes
    ``numba.config`` of this process only, never the environment.
    """
    import numba
    from numba.np.ufunc import parallel

    if "NUMBA_THREADING_LAYER" in os.environ or parallel._is_initialized:
        return
    if numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER_PRIORITY = ["tbb", "workqueue", "omp"]


def fast_path_possible() -> bool:
    """numba importable and this interpreter's ndarray header layout understood."""
    return numba_available() and _ndarray_layout() is not None


class _Group:
    """The parameters of one dtype: their segments, state buffers and scalars."""

    def __init__(self, dtype: np.dtype, idx: list[int], params: list[np.ndarray], nslots: int) -> None:
        self.dtype = dtype
        self.idx = np.array(idx, np.int64)  # positions in Plan.keys
        sizes = np.array([params[i].size for i in idx], np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        total = int(offsets[-1])
        # state: one flat buffer per slot (rows of one 2-D store, the serial kernels' argument);
        # at least one (empty) array to carry the dtype
        self.store = np.zeros((max(nslots, 1), total if nslots else 0), dtype)
        self.buffers = [self.store[s] for s in range(nslots)]
        self.S = (self.buffers + [np.zeros(0, dtype)] * 3)[:3]  # unused slots: an empty array of the dtype
        self.keyinfo = np.array(
            [[params[i].__array_interface__["data"][0], params[i].size] for i in idx], np.int64
        ).reshape(-1, 2)
        # segments: the virtual concatenation of all arrays, cut into BLOCK-sized chunks
        segs, chunks = [], [0]
        for c0 in range(0, total, BLOCK):
            c1 = min(c0 + BLOCK, total)
            k = int(np.searchsorted(offsets, c0, side="right")) - 1
            while k < len(idx) and offsets[k] < c1:
                lo, hi = max(c0, offsets[k]) - offsets[k], min(c1, offsets[k + 1]) - offsets[k]
                if hi > lo:
                    segs.append((k, lo, hi, offsets[k] + lo))
                k += 1
            chunks.append(len(segs))
        self.seg = np.array(segs, np.int64).reshape(-1, 4)
        self.chunks = np.array(chunks, np.int64)
        self.offsets = offsets
        self.whole = False  # True when this is the only group (set by Plan)
        self.gptr = np.zeros(len(idx), np.int64)
        self.active = np.zeros(len(idx), np.bool_)
        itemsize = dtype.itemsize
        self.exponent = np.array([0x7F800000 if itemsize == 4 else 0x7FF0000000000000], f"u{itemsize}")

    def view(self, slot: int, j: int, shape: tuple[int, ...]) -> np.ndarray:
        return self.buffers[slot][self.offsets[j] : self.offsets[j + 1]].reshape(shape)


class Plan:
    """Everything about a call that stays the same from step to step."""

    def __init__(self, opt: Any, params: dict[str, np.ndarray]) -> None:
        self.keys = tuple(params)
        self.params = [params[k] for k in self.keys]
        self.state_obj = opt.state
        self.stale = False
        n = len(self.keys)
        layout = _ndarray_layout()
        assert layout is not None
        self.layout = layout
        dims: list[int] = []
        pinfo = np.zeros((n, 7), np.int64)
        for k, p in enumerate(self.params):
            pinfo[k] = (
                id(type(p)),
                p.__array_interface__["data"][0],
                p.ndim,
                len(dims),
                p.itemsize,
                p.size,
                id(p.dtype),
            )
            dims.extend(p.shape)
        self.pinfo = pinfo
        self.dims = np.array(dims, np.int64)
        self.pids = np.array([id(p) for p in self.params], np.int64)
        # the call's values in plan order, as one tuple, in one C call (KeyError if a key is missing)
        key0 = self.keys[0]
        self.getter = operator.itemgetter(*self.keys) if n > 1 else (lambda d: (d[key0],))
        order = np.argsort(pinfo[:, 1], kind="stable")
        self.spans = np.stack([pinfo[order, 1], pinfo[order, 1] + pinfo[order, 4] * pinfo[order, 5]], axis=1)
        self.groups: list[_Group] = []
        self.views: list[tuple[np.ndarray, ...]] = [()] * n
        for dt in _FAST_DTYPES:
            idx = [k for k, p in enumerate(self.params) if p.dtype == dt]  # native byte order: see eligible()
            if not idx:
                continue
            group = _Group(dt, idx, self.params, len(opt.slots))
            for j, k in enumerate(idx):
                self.views[k] = tuple(group.view(s, j, self.params[k].shape) for s in range(len(opt.slots)))
            self.groups.append(group)
        spans = [
            (b.__array_interface__["data"][0], b.__array_interface__["data"][0] + b.nbytes)
            for g in self.groups
            for b in g.buffers
        ]
        self.state_spans = np.array(spans, np.int64).reshape(-1, 2)
        # adopt existing state: copy it into the buffers and make the views the state arrays
        self.steps = np.zeros(n, np.int64)
        self.zeros = np.zeros(n, np.int64)
        for group in self.groups:
            group.whole = len(group.idx) == n  # one dtype: no per-group indexing needed
            group.pids, group.pinfo = self.pids[group.idx], self.pinfo[group.idx]
        self.lane: Any = None  # the steady-state closure of a serial plan (small.make_lane)
        self.serial = len(self.groups) == 1 and int(self.groups[0].offsets[-1]) <= SERIAL_MAX_ELEMENTS
        if self.serial:
            small.pack(self, self.groups[0], layout)
        self.has_state = np.zeros(n, np.bool_)
        self.states: list[dict[str, Any] | None] = [None] * n
        for k, key in enumerate(self.keys):
            st = opt.state.get(key)
            if st is None:
                continue
            for s, slot in enumerate(opt.slots):
                self.views[k][s][...] = st[slot]
                st[slot] = self.views[k][s]
            self.steps[k] = st["step"]
            self.has_state[k] = True
            self.states[k] = st

    def __reduce__(self) -> tuple[Any, ...]:
        # A copied or unpickled optimizer gets no plan (it makes a new one): a deep
        # copy would otherwise hold buffers its copied state arrays are not views of.
        return (type(None), ())

    @staticmethod
    def eligible(opt: Any, params: dict[str, np.ndarray]) -> bool:
        """Whether every parameter (and its state, if any) suits the compiled path."""
        if not params:
            return False
        starts = []
        for key, p in params.items():
            if (
                p.dtype not in _FAST_DTYPES
                or not p.dtype.isnative
                or not (p.flags.c_contiguous and p.flags.aligned and p.flags.writeable)
            ):
                return False
            st = opt.state.get(key)
            if st is not None:
                for slot in opt.slots:
                    a = st[slot]
                    if not isinstance(a, np.ndarray) or a.shape != p.shape or a.dtype != p.dtype:
                        return False
            if p.size:
                lo = p.__array_interface__["data"][0]
                starts.append((lo, lo + p.nbytes))
        starts.sort()
        return all(a[1] <= b[0] for a, b in zip(starts, starts[1:], strict=False))

    def state_intact(self, opt: Any) -> bool:
        """Whether ``opt.state`` still holds this plan's entries, arrays and step counts.

        ``opt.state`` is a plain dict a user can reach: ``opt.state.clear()``, ``del opt.state[key]``, an
        entry or a slot array replaced, a step count rewritten -- any of these makes the plan stale, and
        the call is planned again from what ``opt.state`` holds now, as the reference path would read it.
        """
        state, slots = opt.state, opt.slots
        for k, st in enumerate(self.states):
            if st is None:
                if self.keys[k] in state:
                    return False
                continue
            if state.get(self.keys[k]) is not st or st.get("step") != self.steps[k]:
                return False
            for slot, v in zip(slots, self.views[k], strict=True):
                if st.get(slot) is not v:
                    return False
        return True

    def resync(self, opt: Any) -> bool:
        """After a reference-path call: re-read step counts; False if the state was replaced."""
        for k, key in enumerate(self.keys):
            st = opt.state.get(key)
            if st is None:
                if self.has_state[k]:
                    return False
                continue
            if st is not self.states[k] and self.states[k] is not None:
                return False
            if any(st[slot] is not v for slot, v in zip(opt.slots, self.views[k], strict=True)):
                return False
            self.states[k] = st
            self.has_state[k] = True
            self.steps[k] = st["step"]
        self.stale = False
        return True


def _warm_in_background(opt: Any, dtypes: set[np.dtype], serial: bool = False) -> bool:
    """True if ``opt``'s kernel for ``dtypes`` is loaded; else start loading it in a thread.

    Importing numba and loading even cached machine code takes ~0.5-1.5 s (numba's
    own start-up), and compiling from a cold cache ~5-10 s per rule and dtype.
    With ``backend="auto"`` the first steps therefore run on the (bit-identical)
    NumPy path while a daemon thread does that work; later steps switch over.
    """
    kernel, warm = opt._fused_kernel, (_warm_serial if serial else _warm)
    todo = [dt for dt in dtypes if not warm.get((kernel, dt))]
    if not todo:
        return True
    if _warm_errors:
        return False
    fresh = [dt for dt in todo if (kernel, dt) not in warm]
    if fresh:
        for dt in fresh:
            warm[(kernel, dt)] = False
        args = (type(opt), opt.hyperparameters, fresh, serial)
        threading.Thread(target=_load, args=args, name="npoptim-numba-load", daemon=True).start()
    return False


def _load(cls: type, hyperparameters: dict[str, Any], dtypes: list[np.dtype], serial: bool = False) -> None:
    """Run one step of ``cls(**hyperparameters)`` on the compiled path per dtype (loads or compiles its
    parallel kernel, or with ``serial`` its serial one: only what is used is compiled)."""
    size = 3 if serial else SERIAL_MAX_ELEMENTS + 1
    try:
        for dt in dtypes:
            opt = cls(**hyperparameters, backend="numba")
            opt.update({"w": np.zeros(size, dt)}, {"w": np.ones(size, dt)})
            warm = _warm_serial if serial else _warm
            warm[(opt._fused_kernel, dt)] = opt.last_update_backend == "numba"
    except BaseException as exc:  # noqa: BLE001 -- recorded; "auto" then stays on the NumPy path
        _warm_errors.append(exc)


def try_update(opt: Any, params: Any, grads: Any, replanned: bool = False) -> bool:
    """Run ``opt``'s step on the compiled path; False (having written nothing) to decline.

    Raises exactly what the reference validation raises for an invalid call
    whose structure the plan does not know yet.
    """
    if type(params) is not dict or type(grads) is not dict:
        return False
    plan: Plan | None = opt._fused_plan
    pvals = None
    if plan is not None:
        try:
            pvals = plan.getter(params) if len(params) == len(plan.keys) else None
        except KeyError:
            pvals = None
        if (pvals is None or plan.state_obj is not opt.state or (plan.stale and not plan.resync(opt))
                or not plan.state_intact(opt)):
            plan = opt._fused_plan = None
    if plan is None:
        if opt._backend == "auto" and not _auto_accepts(opt, params):
            return False
        if opt._fused_declined is not None and opt._fused_declined == _signature(params):
            return False
        opt._prepare(params, grads)  # the one validating walk: raises the reference errors
        if not Plan.eligible(opt, params):
            opt._fused_declined = _signature(params)
            return False
        opt._fused_declined = None
        plan = opt._fused_plan = Plan(opt, params)
        pvals = plan.getter(params)
    try:
        gvals = plan.getter(grads) if len(grads) == len(plan.keys) else None
    except KeyError:
        gvals = None
    if gvals is None:
        return False  # the reference path names the missing and extra keys
    if plan.serial:  # header check, finite check and update in one serial compiled call
        status = small.run(opt, plan, pvals, gvals)
        if status == "replan" and not replanned:
            opt._fused_plan = None
            return try_update(opt, params, grads, replanned=True)
        return status == "ok"
    k = load_kernels()
    # pvals and gvals (alive until we return) hold the objects whose headers and data the kernels read
    # 1. headers: everything as planned?
    with _lock:
        status = _check_headers(k, plan, id(pvals), id(gvals))
    if status == "replan" and not replanned:  # e.g. new parameter arrays: plan again, once
        opt._fused_plan = None
        return try_update(opt, params, grads, replanned=True)
    if status != "ok":
        return False
    with _lock:
        if len(plan.groups) == 1:
            active = plan.groups[0].active.copy()
        else:
            active = np.zeros(len(plan.keys), np.bool_)
            for group in plan.groups:
                active[group.idx] = group.active
        if not active.any():
            return True
        # 2. all finite?  Otherwise the reference path raises or skips, having written nothing.
        if opt.on_nonfinite in ("raise", "skip"):
            for group in plan.groups:
                if not k.finite(group.gptr, group.active, group.keyinfo, group.seg, group.chunks, group.exponent):
                    return False
        # 3. fresh state for parameters that get their first gradient now
        fresh = np.flatnonzero(active & ~plan.has_state)
        for j in fresh:
            init = opt._init_state(plan.params[j])
            for s, slot in enumerate(opt.slots):
                plan.views[j][s][...] = init[slot]
        # 4. per-step scalars, one row per distinct step count, and the update
        steps = plan.steps + active
        if steps[0] == steps.min() == steps.max():  # the usual case: every key at the same step
            ts, rows = steps[:1], plan.zeros
        else:
            ts, rows = np.unique(steps, return_inverse=True)
        table = [(opt.weight_decay, *opt._fused_scalars(int(t))) if t > 0 else None for t in ts]
        width = max(len(r) for r in table if r is not None)
        table = [r if r is not None else (0.0,) * width for r in table]
        driver = k.DRIVERS[opt._fused_kernel]
        for group in plan.groups:
            C = np.array(table, group.dtype)
            S0, S1, S2 = group.S
            r = rows if group.whole else rows[group.idx]
            driver(group.gptr, group.active, group.keyinfo, group.seg, group.chunks, S0, S1, S2, C, r)
    small.commit(opt, plan, active, fresh, steps)  # 5. the bookkeeping
    return True


def _auto_accepts(opt: Any, params: dict[str, Any]) -> bool:
    """``backend="auto"``: whether a call with no plan yet goes to the compiled path (see BACKENDS' doc)."""
    total = sum(getattr(p, "size", 0) for p in params.values())
    dtypes = {p.dtype for p in params.values() if isinstance(p, np.ndarray)}
    if total >= AUTO_MIN_ELEMENTS:
        return _warm_in_background(opt, dtypes)
    if total > SERIAL_MAX_ELEMENTS or len(dtypes) != 1 or not dtypes <= set(_FAST_DTYPES):
        return False  # a parallel region would cost more than NumPy's passes here (or no kernel fits)
    if _warm_serial.get((opt._fused_kernel, next(iter(dtypes)))):
        return True
    return _reference_seconds >= AUTO_LOAD_AFTER_SECONDS and _warm_in_background(opt, dtypes, serial=True)


def note_reference_seconds(seconds: float) -> None:
    """``backend="auto"``: a step ran on the NumPy path for want of a loaded kernel; count its time."""
    global _reference_seconds
    _reference_seconds += seconds


def _check_headers(k: Any, plan: Plan, ptuple: int, gtuple: int) -> str:
    """ "ok", "replan" (a parameter is not the planned one) or "decline" (an unusual gradient)."""
    for group in plan.groups:
        bad = k.check(
            ptuple, gtuple, group.idx, group.pids, _NONE_ID, id(np.ndarray), id(group.dtype), group.dtype.num,
            plan.layout, group.pinfo, plan.dims, plan.spans, plan.state_spans, group.gptr, group.active,
        )  # fmt: skip
        if bad >= 0:
            return "replan" if bad < len(group.idx) else "decline"
    return "ok"


def _signature(params: dict[str, np.ndarray]) -> tuple[Any, ...]:
    """Identity of a params dict's content, to remember a structure the path declined."""
    return tuple((k, id(p), p.dtype, p.shape, p.flags.num) for k, p in params.items())


def warm_up() -> None:
    """Import numba and load (or compile) every kernel for float32 and float64, now, in this thread.

    With ``backend="auto"`` this happens by itself in the background; call this to pay the cost up front.
    """
    for cls in (c for c in _DECLARED if getattr(c, "_fused_kernel", None) is not None):
        for options in cls._fused_variants:  # every configuration with a kernel of its own
            for dt in _FAST_DTYPES:
                _load(cls, options, [dt])
                _load(cls, options, [dt], serial=True)
            if _warm_errors:
                raise _warm_errors[0]
    parts.warm_up()  # hook: the element loops of LAMB, LARS, Prodigy (fused/parts.py)
