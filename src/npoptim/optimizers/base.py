"""The one mechanism every optimizer shares.

An update rule is written once, for a single array (``Optimizer._rule``).
:meth:`Optimizer.update` lifts it to a dict of parameters: it validates the
whole call first -- keys, shapes, dtypes, writeability, finiteness, state --
and only then writes, so an update that raises leaves every parameter and
every state array exactly as it was.

Conventions that hold for every rule
------------------------------------
* ``params`` maps ``str`` to a writeable floating (or complex) ``np.ndarray``
  that is changed in place; ``grads`` has exactly the same keys.  A ``None``
  gradient means "no gradient this step": that parameter and its state are
  left untouched (as ``torch.optim`` does for a parameter whose ``.grad`` is
  ``None``).
* State arrays have the parameter's shape and dtype.  A gradient of another
  floating dtype is cast to the parameter's dtype before anything is computed.
  float16 parameters are computed in float32 and rounded back to float16 when
  stored (float16 arithmetic would lose even the update's first digits).
* Complex parameters are treated as pairs of reals, the convention of
  ``torch.optim`` (``torch.view_as_real``): every element-wise formula applies
  to the real and imaginary parts separately.
* L2 weight decay, where asked for, is added to the gradient before the rule:
  :math:`g \\leftarrow g + \\lambda w` (``torch.optim``'s ``weight_decay``).
* Each parameter keeps its own step count :math:`t` (it starts at 1 the first
  time the parameter receives a gradient), as ``torch.optim`` does; it is what
  bias corrections use.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..checks import flag, nonnegative, unit_interval  # noqa: F401 (the rules import them from here)
from ..errors import KeyMismatchError
from ..schedules import Schedule, resolve_lr, validate_lr
from . import fused as _fused
from . import state as _state
from .checking import _as_real, _check_grad, _check_no_overlap, _check_param, _global_norm, _skip_nonfinite
from .state import STATE_DICT_VERSION

__all__ = ["Optimizer", "STATE_DICT_VERSION"]

_NONFINITE_POLICIES = ("raise", "skip", "propagate")

#: The reference path applies ``_rule`` to contiguous arrays in pieces of this
#: many elements (the ufuncs' temporaries then stay in cache); every rule is
#: element-wise, so the result is the same bits as one call on the whole array.
CHUNK = 1 << 16


# --- hyperparameter checks -------------------------------------------------
# Each returns the value as a Python float or raises ValueError/TypeError
# naming the optimizer, the argument and the value.


def learning_rate(owner: str, name: str, value: Any) -> float | Schedule:
    """A finite number >= 0 or an :class:`npoptim.schedules.Schedule` (see :func:`~npoptim.schedules.validate_lr`)."""
    return validate_lr(owner, name, value)


def _clip_threshold(owner: str, name: str, value: Any) -> float | None:
    """``None`` (off) or a real number > 0; ``clip_norm=math.inf`` only reports the norm."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be None or a real number > 0, got {value!r} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value) or value <= 0:
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be > 0 (or None for no clipping)")
    return value


def _check_policy(owner: str, name: str, value: Any) -> str:
    if value not in _NONFINITE_POLICIES:
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be one of {_NONFINITE_POLICIES}")
    return value


# --- the shared mechanism ----------------------------------------------------


class Optimizer:
    """Base class: subclasses declare ``slots`` and ``checks`` and write ``_rule``.

    Parameters common to every optimizer
    ------------------------------------
    weight_decay : float
        L2 coefficient :math:`\\lambda`: :math:`g \\leftarrow g + \\lambda w`.
    on_nonfinite : {"raise", "skip", "propagate"}
        What a NaN or inf in any gradient does.  ``"raise"`` (default) raises
        :class:`~npoptim.errors.NonFiniteGradientError` (a ``ValueError``)
        naming the keys and the step, writing nothing.  ``"skip"`` skips the
        whole step -- no parameter, no state, no step count changes -- and
        counts it in :attr:`skipped_steps`.  ``"propagate"`` does not look:
        the step is applied as computed, so NaN/inf flow into the parameters
        and the state (what torch.optim and optax do).  Checking costs one
        extra read of every gradient before the update (it must see them all
        before writing anything); ``"propagate"`` saves that pass -- a fifth
        to a third of a large Adam step on the compiled path (``docs/performance.md``).
    backend : {"auto", "numba", "numpy"}
        How steps are computed; never changes the result (see
        ``docs/performance.md``).  ``"numba"``: one compiled, parallel pass over
        all parameters (:mod:`npoptim.optimizers.fused`), bit-identical to the
        NumPy reference; calls it does not handle (float16, complex,
        non-contiguous arrays, a gradient of another dtype, ...) run the
        reference.  ``"numpy"``: the reference, ``_rule`` in NumPy on
        cache-sized pieces.  ``"auto"`` (default): ``"numba"`` if numba is
        installed, else ``"numpy"``.  Not a hyperparameter: not in
        :attr:`hyperparameters` nor in :meth:`state_dict`.
    """

    #: Name of the rule's compiled kernel in ``fused.kernels.DRIVERS`` (None: reference only).
    _fused_kernel: ClassVar[str | None] = None
    #: Constructor options that select each of the rule's kernels (``_kernel_for``); ``fused.warm_up`` loads them all.
    _fused_variants: ClassVar[tuple[dict[str, Any], ...]] = ({},)
    #: True when ``_fused_scalars`` does not depend on the step ``t`` (the small-call lane then reuses them).
    _fused_step_free: ClassVar[bool] = False
    #: Whether ``_rule`` is element-wise, so it may run on pieces of an array
    #: (set False for a rule that uses whole-array quantities, e.g. a norm).
    _elementwise: ClassVar[bool] = True

    #: Names of the per-parameter state arrays, in the order the rule uses them.
    slots: ClassVar[tuple[str, ...]] = ()
    #: Hyperparameter name -> check; the constructor's keyword arguments.
    checks: ClassVar[dict[str, Any]] = {}

    _common_checks: ClassVar[dict[str, Any]] = {
        "weight_decay": nonnegative,
        "clip_norm": _clip_threshold,
        "clip_value": _clip_threshold,
        "on_nonfinite": _check_policy,
    }
    #: False for rules whose ``weight_decay`` is not L2 in the gradient (AdamW's is decoupled, in ``_rule``).
    _l2_weight_decay: ClassVar[bool] = True

    def __init__(self, *, backend: str = "auto", **hyperparameters: Any) -> None:
        # Only called by subclasses' explicit keyword-only constructors, which
        # reject unknown keywords themselves; this check guards subclasses.
        known = self._all_checks()
        unknown = sorted(set(hyperparameters) - set(known))
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown argument(s) {unknown}")
        missing = sorted(set(known) - set(hyperparameters))
        if missing:
            raise TypeError(f"{type(self).__name__}: missing argument(s) {missing}")
        object.__setattr__(self, "_hyper", {})
        object.__setattr__(self, "slots", type(self).slots)
        self.backend = backend
        for name, value in hyperparameters.items():
            setattr(self, name, value)
        #: This instance's state slots: the class's ``slots`` for its default configuration;
        #: options such as ``amsgrad`` or ``centered`` add some (fixed from construction on).
        self._configure(self._slots_for(self._hyper))
        #: The learning rate of the latest ``update`` (the schedule's value at that step), or of the next one.
        self.current_lr = resolve_lr(self._hyper["lr"], 0)
        #: Global L2 norm of the gradients of the latest update or skipped step (before ``clip_norm``
        #: scales them, after ``clip_value``); ``None`` when no clipping is configured.
        self.last_grad_norm: float | None = None
        #: Per-key state: ``{key: {"step": int, slot: ndarray, ...}}``.
        self.state: dict[str, dict[str, Any]] = {}
        #: Number of ``update`` calls that changed something.
        self.step_count = 0
        #: Number of ``update`` calls skipped for non-finite gradients.
        self.skipped_steps = 0
        #: Which path computed the last ``update``: "numba", "numpy" or None (none yet).
        self.last_update_backend: str | None = None
        self._fused_declined: Any = None
        self._constructed = True  # from now on a new public attribute is a typo: see __setattr__

    @classmethod
    def _all_checks(cls) -> dict[str, Any]:
        """Hyperparameter name -> check (built once per class: every attribute set reads it)."""
        cached = cls.__dict__.get("_all_checks_cache")
        if cached is None:
            cached = {**cls.checks, **cls._common_checks}
            type.__setattr__(cls, "_all_checks_cache", cached)
        return cached

    @classmethod
    def _slots_for(cls, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        """The state slots of a configuration (override when an option adds state)."""
        return cls.slots

    @classmethod
    def _kernel_for(cls, hyper: Mapping[str, Any]) -> str | None:
        """The compiled kernel of a configuration (override when options have their own loops)."""
        return cls._fused_kernel

    def _configure(self, slots: tuple[str, ...]) -> None:
        """Fix the slots and the kernel for the current hyperparameters (construction, load_state_dict)."""
        object.__setattr__(self, "slots", slots)
        object.__setattr__(self, "_fused_kernel", self._kernel_for(self._hyper))
        object.__setattr__(self, "_fused_plan", None)  # a plan (and its lane) is made for one configuration

    # Hyperparameters are validated whenever they are set, also after
    # construction (``opt.lr = 0.1`` for a hand-made decay).
    def __setattr__(self, name: str, value: Any) -> None:
        check = self._all_checks().get(name)
        if check is not None:
            value = check(type(self).__name__, name, value)
            if name in self._hyper and self._slots_for({**self._hyper, name: value}) != self.slots:
                cls = type(self).__name__
                raise ValueError(
                    f"{cls}: cannot set {name}={value!r} after construction (it is {self._hyper[name]!r}): "
                    f"it changes the state slots {self.slots} -> {self._slots_for({**self._hyper, name: value})}; "
                    f"construct {cls}({name}={value!r}) instead"
                )
            self._hyper[name] = value
            self._drop_lane()  # the small-call lane holds per-step scalars made from the old values
        elif not name.startswith("_") and "_constructed" in self.__dict__ and not hasattr(self, name):
            # ``opt.learning_rate = 0.1`` would otherwise create an attribute that nothing reads
            raise AttributeError(
                f"{type(self).__name__} has no attribute {name!r}; "
                f"its hyperparameters are {', '.join(self._all_checks())}"
            )
        object.__setattr__(self, name, value)

    @property
    def backend(self) -> str:
        """``"auto"``, ``"numba"`` or ``"numpy"``, as asked for (see the class docstring)."""
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        name = type(self).__name__
        if value not in _fused.BACKENDS:
            raise ValueError(f"{name}: invalid backend={value!r}: must be one of {_fused.BACKENDS}")
        if value == "numba" and not _fused.fast_path_possible():
            raise ValueError(
                f"{name}: invalid backend='numba': numba is not installed (or cannot read this NumPy's arrays)"
            )
        object.__setattr__(self, "_backend", value)
        fast = value != "numpy" and self._fused_kernel is not None and _fused.fast_path_possible()
        object.__setattr__(self, "_use_fused", fast)
        object.__setattr__(self, "_fused_plan", None)

    def _drop_lane(self) -> None:
        """Send the next call through the general path (the fast path's plan stays)."""
        plan = self.__dict__.get("_fused_plan")
        if plan is not None and plan.lane is not None:
            plan.lane.sync()
            plan.lane = None

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's arguments, as currently set (a copy)."""
        return dict(self._hyper)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyper.items())
        return f"{type(self).__name__}({args})"

    # --- the rule ------------------------------------------------------------

    def _rule(self, p: np.ndarray, g: np.ndarray, s: dict[str, np.ndarray], t: int) -> None:
        """Update one array in place.

        ``p`` the parameter, ``g`` its gradient (weight decay already added),
        ``s`` its state arrays by slot name, all of one real floating dtype and
        one shape; ``t`` the parameter's step number, starting at 1.
        """
        raise NotImplementedError

    def _fused_scalars(self, t: int) -> tuple[float, ...]:
        """The per-step scalars of the compiled kernel for step ``t`` (computed once per step).

        Exactly the Python floats ``_rule`` combines with arrays, in the kernel's
        order; the fast path prepends ``weight_decay`` and casts them to the
        parameter dtype, as NumPy does when ``_rule`` multiplies an array by them.
        """
        raise NotImplementedError

    def _check_key(self, key: str, p: np.ndarray) -> None:
        """Hook for whole-tensor rules (issue 15): refuse a parameter this rule cannot update.

        Called by the validating walk (:meth:`_prepare`) for every key, before anything is
        written, so a refusal keeps ``update`` atomic.  Raise ``TypeError``/``ValueError``
        naming ``key``; the default accepts every array the walk accepts.
        """

    def _init_state(self, p: np.ndarray) -> dict[str, np.ndarray]:
        """Fresh state for a parameter: zeros in every slot (override to change)."""
        return {slot: np.zeros(p.shape, dtype=p.dtype) for slot in self.slots}

    # --- update --------------------------------------------------------------

    def update(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray | None]) -> None:
        """Apply one step to every parameter that has a gradient, in place.

        Everything is validated before anything is written: if this raises,
        no parameter and no state array has changed.  Order of operations:
        validation, then clipping (``clip_value``, then ``clip_norm``; on
        copies, never the caller's arrays), then the non-finite check (on the
        clipped gradients), then weight decay and the rule, at the learning
        rate ``resolve_lr(self.lr, self.step_count)``.
        """
        plan = self._fused_plan
        if plan is not None and plan.lane is not None:  # a small call like the last one (fused/small.py)
            if plan.lane(params, grads):
                return
            self._drop_lane()
        lr = resolve_lr(self.lr, self.step_count)
        clipping = self.clip_norm is not None or self.clip_value is not None
        work = None
        if clipping:  # the validating walk first: clipping needs checked arrays
            work = self._prepare(params, grads)
            work, norm = self._clip(work)
            grads = {**dict.fromkeys(params), **{key: g for key, _, g, _ in work}}
        self.current_lr = lr
        if self._use_fused and _fused.try_update(self, params, grads):
            self.last_update_backend = "numba"
            if clipping:
                self.last_grad_norm = norm
            return
        if self._fused_plan is not None:  # the reference path below may change step counts and state
            self._fused_plan.stale = True
        self.last_update_backend = "numpy"
        t0 = time.perf_counter()
        if work is None:
            work = self._prepare(params, grads)
        propagate = self.on_nonfinite == "propagate"
        if _skip_nonfinite(type(self).__name__, self.on_nonfinite, work, self.step_count + 1):
            self.skipped_steps += 1
            if clipping:
                self.last_grad_norm = norm
            return
        # "propagate" asked for NaN/inf arithmetic: NumPy's warnings about it would be noise
        with np.errstate(all="ignore") if propagate else contextlib.nullcontext():
            for key, p, g, state in work:
                if state is None:
                    state = self.state[key] = {"step": 0, **self._init_state(p)}
                state["step"] += 1
                self._apply(p, g, state)
        if work:
            self.step_count += 1
        if clipping:
            self.last_grad_norm = norm
        if self._use_fused and self._backend == "auto":  # what a loaded kernel would have saved: see fused
            _fused.note_reference_seconds(time.perf_counter() - t0)

    def _clip(self, work: list[tuple[str, np.ndarray, np.ndarray, Any]]) -> tuple[list[Any], float]:
        """Clip the validated gradients of a call; return new ``work`` and the global norm.

        ``clip_value`` c: every element (real and imaginary parts separately) to
        [-c, c], as ``torch.nn.utils.clip_grad_value_``; NaN stays NaN.
        ``clip_norm`` c: with :math:`N = \\|(g_1, \\dots, g_n)\\|_2` over all
        gradients of the call, every gradient is multiplied by
        :math:`\\min(1, c / (N + 10^{-6}))`, as ``torch.nn.utils.clip_grad_norm_``;
        a non-finite :math:`N` (a NaN or inf gradient) scales nothing, so the
        non-finite check names the culprits.  The caller's arrays are never written.
        """
        out = work
        cv = self.clip_value
        if cv is not None:
            out = []
            for key, p, g, state in work:
                if np.iscomplexobj(g):
                    c = np.array(g, order="C", copy=True)
                    r = _as_real(c)
                    np.clip(r, -cv, cv, out=r)
                else:
                    c = np.asarray(np.clip(g, -cv, cv))  # 0-d in, 0-d array out (not a NumPy scalar)
                out.append((key, p, c, state))
        norm = _global_norm([g for _, _, g, _ in out])
        cn = self.clip_norm
        if cn is not None and math.isfinite(norm):
            factor = cn / (norm + 1e-6)
            if factor < 1.0:
                out = [(key, p, np.asarray(g * g.real.dtype.type(factor)), state) for key, p, g, state in out]
        return out, norm

    def _slots_of(self, p: np.ndarray) -> tuple[str, ...]:
        """The state slots ``_rule`` gets for parameter ``p`` (all of ``slots``; Adafactor's depend on ``p.ndim``)."""
        return self.slots

    def _apply(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any]) -> None:
        slots = {slot: state[slot] for slot in self._slots_of(p)}
        if self.weight_decay and self._l2_weight_decay:
            g = g + self.weight_decay * p
        if np.iscomplexobj(p):
            p, g = _as_real(p), _as_real(g)
            slots = {k: _as_real(v) for k, v in slots.items()}
        if p.dtype == np.float16:  # compute in float32, store rounded to float16
            p32, s32 = p.astype(np.float32), {k: v.astype(np.float32) for k, v in slots.items()}
            self._rule_in_pieces(p32, g.astype(np.float32), s32, state["step"])
            p[...] = p32
            for k, v in s32.items():
                slots[k][...] = v
        else:
            self._rule_in_pieces(p, g, slots, state["step"])

    def _rule_in_pieces(self, p: np.ndarray, g: np.ndarray, s: dict[str, np.ndarray], t: int) -> None:
        """``_rule`` on pieces of :data:`CHUNK` elements (same result, fewer cache misses)."""
        contiguous = p.flags.c_contiguous and all(a.flags.c_contiguous for a in s.values())
        if p.size <= CHUNK or not contiguous or not self._elementwise:
            self._rule(p, g, s, t)
            return
        p, g = p.reshape(-1), np.ravel(g)
        s = {k: v.reshape(-1) for k, v in s.items()}
        for lo in range(0, p.size, CHUNK):
            piece = slice(lo, lo + CHUNK)
            self._rule(p[piece], g[piece], {k: v[piece] for k, v in s.items()}, t)

    def _prepare(
        self, params: Mapping[str, Any], grads: Mapping[str, Any]
    ) -> list[tuple[str, np.ndarray, np.ndarray, Any]]:
        """Validate a whole call; return ``(key, param, grad, state or None)`` for keys with a gradient."""
        name = type(self).__name__
        for arg, value in (("params", params), ("grads", grads)):
            if not isinstance(value, Mapping):
                raise TypeError(
                    f"{name}.update: {arg} must be a mapping of str to np.ndarray, got {type(value).__name__}"
                )
        missing = [k for k in params if k not in grads]
        extra = [k for k in grads if k not in params]
        if missing or extra:
            raise KeyMismatchError(
                f"{name}.update: params and grads must have the same keys; "
                f"missing from grads: {missing}, not in params: {extra}"
            )
        work = []
        for key, p in params.items():
            if not isinstance(key, str):
                raise TypeError(f"{name}.update: keys must be str, got {key!r}")
            _check_param(name, key, p)
            self._check_key(key, p)  # a rule's own requirement (e.g. Muon: 2-D only); before any write
            g = grads[key]
            if g is None:
                continue
            g = _check_grad(name, key, p, g)
            state = self.state.get(key)
            if state is not None:
                ref = state[self.slots[0]] if self.slots else None
                if ref is not None and (ref.shape != p.shape or ref.dtype != p.dtype):
                    raise ValueError(
                        f"{name}.update: params[{key!r}] is {p.dtype}{list(p.shape)} but its optimizer state "
                        f"was made for {ref.dtype}{list(ref.shape)}; the array changed since its state was created"
                    )
            work.append((key, p, g, state))
        if len(params) > 1:
            _check_no_overlap(name, params)
        return work

    # --- state dict ------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain data describing the optimizer (arrays are copies).

        Format (version :data:`STATE_DICT_VERSION`)::

            {"optimizer": "Adam",             # class name
             "version": 2,
             "hyperparameters": {"lr": 0.001, ...},   # the constructor's arguments
             "step_count": int, "skipped_steps": int,
             "state": {key: {"step": int, "m": ndarray, "v": ndarray}}}

        A schedule as ``lr`` is stored as its ``to_dict()`` (plain data) and
        rebuilt by :meth:`load_state_dict`.  Slot names are the instance's
        ``slots`` attribute (options like ``amsgrad`` add slots).
        """
        return _state.dump(self)

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Replace this optimizer's hyperparameters and state by copies of ``state_dict``'s.

        Everything is checked first (optimizer, version, hyperparameters,
        counters, per-key slots, shapes, dtypes); on error nothing changes.
        """
        _state.load(self, state_dict)
