"""Small calls on the fused path: one serial compiled call per step, and the steady-state lane.

A plan of one dtype and at most :data:`npoptim.optimizers.fused.SERIAL_MAX_ELEMENTS`
elements is *serial*: its steps run ``serial.<rule>_serial`` -- header check,
finite check and update in one compiled call without the parallel region
(:func:`run`).  After a serial step in which every key had a gradient, at the
same step count, without clipping, :func:`make_lane` builds the *lane*: a
closure that :meth:`Optimizer.update` calls first.  It does only what can
differ between two such calls -- the two dicts' lengths and values (one C-level
``itemgetter`` each), the per-step scalars -- and hands the rest to the same
serial kernel, which confirms in compiled code that every array is the planned
one with the planned header.  Anything else (a ``None`` gradient, a new key,
another array, a changed hyperparameter: ``Optimizer.__setattr__`` drops the
lane, a ``load_state_dict``: the state object changes; an entry of ``opt.state`` deleted or
replaced, a slot array replaced, a step count rewritten) makes the lane answer
False having written nothing, and the call takes the general path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...schedules import Schedule, resolve_lr

__all__: list[str] = []

_serial: Any = None


def kernels() -> Any:
    """The serial kernels module (imports numba)."""
    global _serial
    if _serial is None:
        from . import rprop_asgd_sf, serial

        serial.SERIAL.update(rprop_asgd_sf.SERIAL)  # the rules issue 15 added, kept in their own module
        _serial = serial
    return _serial


def pack(plan: Any, group: Any, layout: np.ndarray) -> None:
    """Build ``plan.M`` (the packed integers of ``serial``'s docstring) and ``plan.E`` for a one-group plan."""
    s = kernels()
    n, H, REC = len(plan.keys), s.H, s.REC
    ndims = len(plan.dims)
    nb = len(plan.state_spans)
    M = np.zeros(H + REC * n + ndims + 2 * n + 2 * nb, np.int64)
    M[0:9] = layout
    M[9:17] = (id(None), id(np.ndarray), id(group.dtype), group.dtype.num, n, nb, 1, ndims)
    rec = M[H : H + REC * n].reshape(n, REC)
    rec[:, 0] = plan.pids
    rec[:, 1:8] = plan.pinfo  # (type, data, nd, first dim, itemsize, size, dtype)
    rec[:, 11] = group.offsets[:-1]
    base = H + REC * n
    M[base : base + ndims] = plan.dims
    M[base + ndims : base + ndims + n] = plan.spans[:, 0]
    M[base + ndims + n : base + ndims + 2 * n] = plan.spans[:, 1]
    M[base + ndims + 2 * n :] = plan.state_spans.reshape(-1)
    plan.M, plan.rec, plan.E = M, rec, group.exponent


def run(opt: Any, plan: Any, pvals: tuple[Any, ...], gvals: tuple[Any, ...]) -> str:
    """One step of a serial plan: "ok", "replan" or "decline" (nothing written unless "ok")."""
    s = kernels()
    group = plan.groups[0]
    M, rec = plan.M, plan.rec
    M[15] = opt.on_nonfinite != "propagate"
    M[17] = 0
    nxt = plan.steps + 1  # each key's step if it has a gradient now
    if nxt.min() == nxt.max():
        ts, rows = nxt[:1], plan.zeros
    else:
        ts, rows = np.unique(nxt, return_inverse=True)
    rec[:, 10] = rows
    C = np.array([(opt.weight_decay, *opt._fused_scalars(int(t))) for t in ts], group.dtype)
    fresh = np.flatnonzero(~plan.has_state)
    for j in fresh:  # into the plan's own buffers, not yet anybody's state: harmless if the call declines
        init = opt._init_state(plan.params[j])
        for k, slot in enumerate(opt.slots):
            plan.views[j][k][...] = init[slot]
    status = s.SERIAL[opt._fused_kernel](id(pvals), id(gvals), M, group.store, C, plan.E)
    if status == s.REPLAN:
        return "replan"
    if status > s.OK_SOME:
        return "decline"
    active = rec[:, 9].astype(np.bool_)
    if not active.any():
        return "ok"  # no gradient at all: nothing changes, not even the step count (as the reference)
    commit(opt, plan, active, fresh[active[fresh]], plan.steps + active)
    if status == s.OK and opt.clip_norm is None and opt.clip_value is None:
        plan.lane = make_lane(opt, plan)
    return "ok"


def commit(opt: Any, plan: Any, active: np.ndarray, fresh: np.ndarray, steps: np.ndarray) -> None:
    """The bookkeeping after a compiled step: step counts, new state entries, ``step_count``."""
    plan.steps = steps
    for j in fresh:
        key = plan.keys[j]
        st = {"step": 0, **dict(zip(opt.slots, plan.views[j], strict=True))}
        opt.state[key] = plan.states[j] = st
        plan.has_state[j] = True
    values = steps.tolist()
    if len(fresh) == 0 and bool(active.all()):
        for st, t in zip(plan.states, values, strict=True):
            st["step"] = t  # type: ignore[index]
    else:
        for j in np.flatnonzero(active).tolist():
            plan.states[j]["step"] = values[j]  # type: ignore[index]
    opt.step_count += 1


def make_lane(opt: Any, plan: Any) -> Any:
    """The steady-state closure (see the module docstring), or None if the plan is not in a steady state."""
    steps = plan.steps
    if not plan.has_state.all() or steps.min() != steps.max():
        return None
    kernel = kernels().SERIAL[opt._fused_kernel]
    d = opt.__dict__
    n, getter, state_obj, states = len(plan.keys), plan.getter, opt.state, tuple(plan.states)
    # what opt.state must still hold (a user can clear it, delete or replace an entry or a slot array)
    arrays = tuple((st, slot, v) for st, views in zip(states, plan.views, strict=True)
                   for slot, v in zip(opt.slots, views, strict=True))
    M, S, E = plan.M, plan.groups[0].store, plan.E
    plan.rec[:, 10] = 0  # every key on row 0 of C
    M[17] = 1  # a None gradient: the kernel refuses, the general path takes the call
    lr_setting = opt._hyper["lr"]
    schedule = isinstance(lr_setting, Schedule)
    scalars, wd, dtype = opt._fused_scalars, opt.weight_decay, plan.groups[0].dtype
    step_free = type(opt)._fused_step_free and not schedule
    t = int(steps[0])
    C = np.array([(wd, *scalars(t + 1))], dtype)
    row = C[0]

    def lane(params: Any, grads: Any) -> bool:
        nonlocal t
        if len(params) != n or len(grads) != n or d["state"] is not state_obj:
            return False
        try:
            pv, gv, sv = getter(params), getter(grads), getter(state_obj)
        except Exception:  # noqa: BLE001 -- a missing key, not a mapping, ...: the general path explains
            return False
        for a, b in zip(sv, states, strict=True):
            if a is not b or a["step"] != t:
                return False
        for st, slot, v in arrays:
            if st.get(slot) is not v:
                return False
        t1 = t + 1
        if schedule:
            d["current_lr"] = resolve_lr(lr_setting, d["step_count"])
        if not step_free:
            row[:] = (wd, *scalars(t1))
        if kernel(id(pv), id(gv), M, S, C, E):
            return False
        t = t1
        for st in states:
            st["step"] = t1
        d["step_count"] += 1
        d["last_update_backend"] = "numba"
        return True

    def sync() -> None:  # when the lane is dropped: the general path reads the plan's step counts
        plan.steps = np.full(n, t, np.int64)

    lane.sync = sync  # type: ignore[attr-defined]
    return lane
