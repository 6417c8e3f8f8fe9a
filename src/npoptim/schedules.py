r"""Learning-rate schedules: small frozen objects, callable with the step.

A schedule maps the step :math:`t` to a learning rate :math:`\eta_t`.

The step convention
-------------------
:math:`t` is the **0-based number of updates already applied**: ``sched(0)``
is the rate of the first update, ``sched(k)`` the rate of update ``k + 1``.
An optimizer holding a schedule will use ``sched(opt.step_count)`` in
``update`` (``step_count`` counts the updates applied so far).  This is the
convention of optax (``schedule(count)``, ``count`` starting at 0) and of
Keras (``LearningRateSchedule(optimizer.iterations)``).  A
``torch.optim.lr_scheduler`` that is stepped once after every
``optimizer.step()`` has ``last_epoch == k`` and sets ``group["lr"]`` to our
``sched(k)`` before the ``(k + 1)``-th ``optimizer.step()``; see
``docs/schedules.md`` for the table of correspondences.

Schedules are plain data: :meth:`Schedule.to_dict` gives
``{"name": ..., "args": {...}}`` of JSON numbers and strings (nested for a
warm-up wrapped around another schedule) and :func:`schedule_from_dict`
rebuilds an equal object, so a resumed run continues its schedule exactly.

>>> from npoptim.schedules import CosineDecay, Warmup
>>> s = Warmup(steps=2, start_lr=0.0, schedule=CosineDecay(lr=0.1, decay_steps=4))
>>> [round(s(t), 4) for t in range(7)]
[0.0, 0.05, 0.1, 0.0854, 0.05, 0.0146, 0.0]
>>> schedule_from_dict(s.to_dict()) == s
True
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from .checks import nonnegative, positive, real

__all__ = [
    "Schedule",
    "Constant",
    "StepDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineRestarts",
    "Warmup",
    "OneCycle",
    "SCHEDULES",
    "schedule_from_dict",
    "resolve_lr",
    "validate_lr",
]


# --- argument checks ---------------------------------------------------------
# Messages follow npoptim.optimizers.base: "<Owner>: invalid <name>=<value>: ...".


def _count(owner: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be >= {minimum}")
    return value


def _step(owner: str, t: Any) -> int:
    if isinstance(t, bool) or not isinstance(t, numbers.Integral):
        raise TypeError(f"{owner}: step t must be an integer, got {t!r} ({type(t).__name__})")
    t = int(t)
    if t < 0:
        raise ValueError(f"{owner}: invalid step t={t!r}: must be >= 0 (the number of updates already applied)")
    return t


# --- the base class ----------------------------------------------------------


class Schedule:
    """Base of every schedule: a frozen dataclass callable with the step ``t``.

    Subclasses are ``@dataclass(frozen=True, kw_only=True)`` with a class
    attribute ``name`` (their key in :data:`SCHEDULES`), validate their fields
    in ``_check`` and compute :math:`\\eta_t` in ``_value(t)``.
    """

    #: registry key, the ``"name"`` of :meth:`to_dict`
    name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        raise NotImplementedError

    def _set(self, field: str, value: Any) -> None:
        object.__setattr__(self, field, value)

    def _value(self, t: int) -> float:
        raise NotImplementedError

    def __call__(self, t: int) -> float:
        """The learning rate of the update that follows ``t`` applied updates (``t >= 0``)."""
        return float(self._value(_step(type(self).__name__, t)))

    def values(self, steps: int) -> np.ndarray:
        """``[self(0), ..., self(steps - 1)]`` as a float64 array of shape ``(steps,)``."""
        steps = _count(type(self).__name__, "steps", steps, minimum=0)
        return np.array([self._value(t) for t in range(steps)], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., "args": {...}}``: JSON-able; nested schedules as their own dicts."""
        args: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            args[f.name] = v.to_dict() if isinstance(v, Schedule) else v
        return {"name": self.name, "args": args}


def _cosine(start: float, end: float, frac: float) -> float:
    r""":math:`e + \tfrac{s - e}{2}(1 + \cos \pi f)`: from ``start`` at f = 0 to ``end`` at f = 1."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * frac) + 1.0)


# --- the schedules -------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Constant(Schedule):
    r"""A constant rate: :math:`\eta_t = \eta_0`.

    The trivial schedule (every optimizer's behaviour with a number as ``lr``).
    """

    name: ClassVar[str] = "constant"
    lr: float

    def _check(self) -> None:
        self._set("lr", nonnegative("Constant", "lr", self.lr))

    def _value(self, t: int) -> float:
        return self.lr


@dataclasses.dataclass(frozen=True, kw_only=True)
class StepDecay(Schedule):
    r"""Step decay: multiply by :math:`\gamma` every ``step_size`` updates.

    .. math:: \eta_t = \eta_0 \, \gamma^{\lfloor t / s \rfloor}

    The "divide by 10 at fixed epochs" schedule of Krizhevsky, Sutskever &
    Hinton (2012) and He et al. (2016); ``torch.optim.lr_scheduler.StepLR``.
    :math:`\gamma > 1` (a growing rate) is allowed.
    """

    name: ClassVar[str] = "step"
    lr: float
    step_size: int
    gamma: float = 0.1

    def _check(self) -> None:
        self._set("lr", nonnegative("StepDecay", "lr", self.lr))
        self._set("step_size", _count("StepDecay", "step_size", self.step_size))
        self._set("gamma", positive("StepDecay", "gamma", self.gamma))

    def _value(self, t: int) -> float:
        return self.lr * self.gamma ** (t // self.step_size)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExponentialDecay(Schedule):
    r"""Exponential decay by a factor :math:`\gamma` per update.

    .. math:: \eta_t = \eta_0 \, \gamma^{t}

    ``torch.optim.lr_scheduler.ExponentialLR``.  The "decay_rate over
    decay_steps" form of Keras/optax, :math:`\eta_0 r^{t/T}`, is this schedule
    with :math:`\gamma = r^{1/T}`.  :math:`\gamma > 1` (the exponential sweep of
    a learning-rate range test, Smith 2017) is allowed.
    """

    name: ClassVar[str] = "exponential"
    lr: float
    gamma: float

    def _check(self) -> None:
        self._set("lr", nonnegative("ExponentialDecay", "lr", self.lr))
        self._set("gamma", positive("ExponentialDecay", "gamma", self.gamma))

    def _value(self, t: int) -> float:
        return self.lr * self.gamma**t


@dataclasses.dataclass(frozen=True, kw_only=True)
class InverseTimeDecay(Schedule):
    r"""Inverse-time decay.

    .. math:: \eta_t = \frac{\eta_0}{1 + k\,t}

    The :math:`\eta_0/(1 + \eta_0\lambda t)` family of Bottou (2012),
    "Stochastic gradient descent tricks", and the Robbins-Monro conditions
    (:math:`\sum \eta_t = \infty`, :math:`\sum \eta_t^2 < \infty`).  It is
    ``torch.optim.Adagrad``'s ``lr_decay`` (:math:`k`) and Keras'
    ``InverseTimeDecay`` with :math:`k` = ``decay_rate / decay_steps``.
    """

    name: ClassVar[str] = "inverse_time"
    lr: float
    decay: float

    def _check(self) -> None:
        self._set("lr", nonnegative("InverseTimeDecay", "lr", self.lr))
        self._set("decay", nonnegative("InverseTimeDecay", "decay", self.decay))

    def _value(self, t: int) -> float:
        return self.lr / (1.0 + self.decay * t)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CosineDecay(Schedule):
    r"""Cosine decay from ``lr`` to the floor ``min_lr`` over ``decay_steps`` updates, then the floor.

    .. math::
        \eta_t = \eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})
                 \bigl(1 + \cos(\pi \min(t, T) / T)\bigr)

    One period of SGDR without restarts (Loshchilov & Hutter, 2017, eq. 5);
    ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=T, eta_min=min_lr)``
    for :math:`t \le T` (torch's keeps following the cosine back up after
    :math:`T`; this one stays at the floor, as optax' and Keras' do).
    """

    name: ClassVar[str] = "cosine"
    lr: float
    decay_steps: int
    min_lr: float = 0.0

    def _check(self) -> None:
        self._set("lr", nonnegative("CosineDecay", "lr", self.lr))
        self._set("decay_steps", _count("CosineDecay", "decay_steps", self.decay_steps))
        self._set("min_lr", nonnegative("CosineDecay", "min_lr", self.min_lr))

    def _value(self, t: int) -> float:
        return _cosine(self.lr, self.min_lr, min(t, self.decay_steps) / self.decay_steps)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CosineRestarts(Schedule):
    r"""Cosine annealing with warm restarts, SGDR (Loshchilov & Hutter, 2017, "SGDR:
    Stochastic gradient descent with warm restarts", eq. 5).

    Period :math:`i = 0, 1, \dots` lasts :math:`T_i = T_0 \, T_{\mathrm{mult}}^{\,i}`
    updates; with :math:`t_{\mathrm{cur}}` the updates since the last restart,

    .. math::
        \eta_t = \eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})
                 \bigl(1 + \cos(\pi\, t_{\mathrm{cur}} / T_i)\bigr)

    so the rate is :math:`\eta_0` at every restart (:math:`t = 0, T_0,
    T_0 + T_1, \dots`).  ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts``
    with ``T_0=period``, ``T_mult=period_mult``, ``eta_min=min_lr``.
    """

    name: ClassVar[str] = "cosine_restarts"
    lr: float
    period: int
    period_mult: int = 1
    min_lr: float = 0.0

    def _check(self) -> None:
        self._set("lr", nonnegative("CosineRestarts", "lr", self.lr))
        self._set("period", _count("CosineRestarts", "period", self.period))
        self._set("period_mult", _count("CosineRestarts", "period_mult", self.period_mult))
        self._set("min_lr", nonnegative("CosineRestarts", "min_lr", self.min_lr))

    def _value(self, t: int) -> float:
        period = self.period
        if self.period_mult == 1:
            t_cur = t % period
        else:  # integer arithmetic: restarts land exactly on T_0 (m^i - 1) / (m - 1)
            t_cur = t
            while t_cur >= period:
                t_cur -= period
                period *= self.period_mult
        return _cosine(self.lr, self.min_lr, t_cur / period)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Warmup(Schedule):
    r"""Linear warm-up over ``steps`` updates, then ``schedule`` from *its own* step 0.

    With :math:`W` = ``steps``, :math:`\eta_s` = ``start_lr`` and :math:`S` the
    inner schedule,

    .. math::
        \eta_t = \begin{cases}
            \eta_s + (S(0) - \eta_s)\, t / W & t < W \\
            S(t - W) & t \ge W
        \end{cases}

    so the ramp ends exactly where the inner schedule starts (the gradual
    warm-up of Goyal et al., 2017, "Accurate, large minibatch SGD", sec. 2.2).
    The inner schedule is shifted, not overlapped: a ``CosineDecay`` with
    ``decay_steps=T`` reaches its floor at :math:`t = W + T`.  This is
    ``torch``'s ``SequentialLR([LinearLR(start_factor=start_lr/S(0),
    total_iters=W), inner], milestones=[W])`` and optax'
    ``join_schedules([linear_schedule(...), inner], [W])``.
    """

    name: ClassVar[str] = "warmup"
    steps: int
    schedule: Schedule
    start_lr: float = 0.0

    def _check(self) -> None:
        self._set("steps", _count("Warmup", "steps", self.steps))
        if not isinstance(self.schedule, Schedule):
            raise TypeError(
                f"Warmup: schedule must be a Schedule, got {self.schedule!r} ({type(self.schedule).__name__})"
            )
        self._set("start_lr", nonnegative("Warmup", "start_lr", self.start_lr))

    def _value(self, t: int) -> float:
        if t >= self.steps:
            return self.schedule._value(t - self.steps)
        peak = self.schedule._value(0)
        return self.start_lr + (peak - self.start_lr) * (t / self.steps)


_ANNEAL = ("cos", "linear")


@dataclasses.dataclass(frozen=True, kw_only=True)
class OneCycle(Schedule):
    r"""The one-cycle policy (Smith & Topin, 2019, "Super-convergence: very fast
    training of neural networks using large learning rates"), in the form of
    ``torch.optim.lr_scheduler.OneCycleLR`` (defaults included).

    With :math:`T` = ``total_steps``, :math:`\eta_{\max}` = ``max_lr``,
    :math:`\eta_{\mathrm{init}} = \eta_{\max} / d` (``div_factor``),
    :math:`\eta_{\mathrm{fin}} = \eta_{\mathrm{init}} / d_f`
    (``final_div_factor``) and the peak at :math:`p = \text{pct\_start}\cdot T - 1`:

    .. math::
        \eta_t = \begin{cases}
          A(\eta_{\mathrm{init}}, \eta_{\max}, t / p) & t \le p \\
          A(\eta_{\max}, \eta_{\mathrm{fin}}, (t - p) / (T - 1 - p)) & p < t < T \\
          \eta_{\mathrm{fin}} & t \ge T
        \end{cases}

    where :math:`A(a, b, f) = b + \tfrac{a - b}{2}(1 + \cos \pi f)` for
    ``anneal_strategy="cos"`` and :math:`a + (b - a) f` for ``"linear"``.  The
    last update of the cycle (:math:`t = T - 1`) uses :math:`\eta_{\mathrm{fin}}`;
    after the cycle the rate stays there (torch raises instead).  Momentum is
    not cycled: schedules here only set the learning rate.
    """

    name: ClassVar[str] = "onecycle"
    max_lr: float
    total_steps: int
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal_strategy: str = "cos"

    def _check(self) -> None:
        self._set("max_lr", nonnegative("OneCycle", "max_lr", self.max_lr))
        self._set("total_steps", _count("OneCycle", "total_steps", self.total_steps, minimum=2))
        pct = real("OneCycle", "pct_start", self.pct_start)
        if not 0.0 < pct < 1.0:
            raise ValueError(f"OneCycle: invalid pct_start={pct!r}: must be in (0, 1)")
        if pct * self.total_steps <= 1.0:
            raise ValueError(
                f"OneCycle: invalid pct_start={pct!r} with total_steps={self.total_steps}: "
                "the rising phase must last more than one update (pct_start * total_steps > 1)"
            )
        self._set("pct_start", pct)
        self._set("div_factor", positive("OneCycle", "div_factor", self.div_factor))
        self._set("final_div_factor", positive("OneCycle", "final_div_factor", self.final_div_factor))
        if self.anneal_strategy not in _ANNEAL:
            raise ValueError(f"OneCycle: invalid anneal_strategy={self.anneal_strategy!r}: must be one of {_ANNEAL}")

    def _value(self, t: int) -> float:
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        last = self.total_steps - 1
        peak = self.pct_start * self.total_steps - 1.0
        if t >= last:
            return final
        if t <= peak:
            a, b, frac = initial, self.max_lr, t / peak
        else:
            a, b, frac = self.max_lr, final, (t - peak) / (last - peak)
        if self.anneal_strategy == "cos":
            return _cosine(a, b, frac)
        return a + (b - a) * frac


#: name -> schedule class (the ``"name"`` of :meth:`Schedule.to_dict`)
SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls
    for cls in (Constant, StepDecay, ExponentialDecay, InverseTimeDecay, CosineDecay, CosineRestarts, Warmup, OneCycle)
}


def schedule_from_dict(d: Any) -> Schedule:
    """Rebuild a schedule from :meth:`Schedule.to_dict`'s output, checking it strictly.

    Every argument must be present (defaults are not filled in, so a stored
    schedule never silently takes a changed default); unknown names, unknown or
    missing arguments and bad values raise ``ValueError`` naming them.
    """
    if not isinstance(d, Mapping) or set(d) != {"name", "args"}:
        got = sorted(map(str, d)) if isinstance(d, Mapping) else type(d).__name__
        raise ValueError(f"schedule_from_dict: expected a mapping with keys ['args', 'name'], got {got}")
    name, args = d["name"], d["args"]
    cls = SCHEDULES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"schedule_from_dict: unknown schedule {name!r}; known: {', '.join(SCHEDULES)}")
    if not isinstance(args, Mapping):
        raise ValueError(f"schedule_from_dict: {name!r} args must be a mapping, got {type(args).__name__}")
    fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(map(str, set(args) - set(fields)))
    missing = [f for f in fields if f not in args]
    if unknown or missing:
        raise ValueError(
            f"schedule_from_dict: {name!r} args do not match {fields}; unknown: {unknown}, missing: {missing}"
        )
    kwargs = {k: schedule_from_dict(v) if k == "schedule" else v for k, v in args.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"schedule_from_dict: {exc}") from None


def resolve_lr(lr: float | Schedule, t: int) -> float:
    """The learning rate of the update after ``t`` applied updates: ``lr(t)`` for a schedule, else ``lr``."""
    if isinstance(lr, Schedule):
        return lr(t)
    return float(lr)


def validate_lr(owner: str, name: str, value: Any) -> float | Schedule:
    """Check a learning rate: a :class:`Schedule` (returned as is) or a finite number >= 0 (returned as float).

    Numbers are checked as :func:`npoptim.optimizers.base.nonnegative` does:
    ``TypeError`` for a non-real, ``ValueError`` for a non-finite or negative
    value, naming ``owner``, ``name`` and the value.  Other callables are
    refused: a schedule must be plain data to be saved in a state dict.
    """
    if isinstance(value, Schedule):
        return value
    if callable(value):
        raise TypeError(
            f"{owner}: {name} must be a real number or an npoptim.schedules.Schedule, got {value!r} "
            f"({type(value).__name__}); plain callables cannot be saved in a state dict"
        )
    return nonnegative(owner, name, value)
