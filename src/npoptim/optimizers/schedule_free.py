"""Schedule-free SGD and AdamW (Defazio et al., 2024, "The road less scheduled"), issue 15.

Element-wise rules on the shared base (:class:`npoptim.optimizers.base.Optimizer`), with two things
no other rule has: the parameters hold a *different point* in training (y) than in evaluation (x),
switched explicitly with :meth:`ScheduleFreeBase.eval` / :meth:`ScheduleFreeBase.train` (recorded in
the state dict), and the averaging weights are scalars of the whole call (not per key), kept on the
optimizer and in the state dict.  Each rule has a compiled element loop (``fused/rprop_asgd_sf.py``)
repeating its ``_rule`` operation by operation: both backends give the same bits.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np

from ..errors import KeyMismatchError, StateDictError
from ..schedules import Schedule, resolve_lr
from .base import Optimizer, learning_rate, nonnegative, unit_interval

__all__ = ["ScheduleFreeSGD", "ScheduleFreeAdamW"]


def _steps(owner: str, name: str, value: Any) -> int:
    """An integer >= 0 (a float that is an integer is accepted)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be an integer, got {value!r} ({type(value).__name__})")
    if not (isinstance(value, numbers.Integral) or float(value).is_integer()) or value < 0:
        raise ValueError(f"{owner}: invalid {name}={float(value)!r}: must be an integer >= 0")
    return int(value)


class ScheduleFreeBase(Optimizer):
    r"""What both schedule-free rules share: the averaging, the train/eval switch, the per-call scalars.

    With :math:`k` the number of steps taken so far (one count for the optimizer, as the reference), the
    step's rate :math:`\gamma_k = \eta \min(1, (k+1)/\text{warmup})`, :math:`\gamma_{\max} = \max_{j \le k}
    \gamma_j`, the weight :math:`c_{k+1} = w_{k+1} / \sum_{j \le k+1} w_j` with
    :math:`w_{k+1} = (k+1)^r \gamma_{\max}^{p}` (:math:`p` = ``weight_lr_power``):

    .. math::
        z \leftarrow z - \gamma_k \Delta, \qquad x \leftarrow (1 - c_{k+1})\, x + c_{k+1} z, \qquad
        y = \beta x + (1 - \beta) z

    where :math:`\Delta` is the rule's direction.  During training the parameters hold :math:`y` (where
    gradients are taken); :math:`x`, the average, is the point to evaluate.  ``opt.eval(params)`` writes
    :math:`x` into the parameters and ``opt.train(params)`` writes :math:`y` back (recomputed from
    :math:`x` and :math:`z` by the same operations, so the same bits); both are idempotent, and ``with
    opt.evaluating(params):`` does the pair.  ``update`` in eval mode raises.  The mode, :math:`\gamma_{\max}`
    and :math:`\sum w` are in the state dict, so a checkpoint saved in either mode resumes exactly.
    """

    #: The averaging weights are scalars of the whole call: a key that joins late averages with them
    #: (as the reference's group-level ``k``, ``lr_max``, ``weight_sum``), unlike a fresh optimizer.
    _per_call_state: ClassVar[bool] = True
    _momentum_name: ClassVar[str] = "momentum"

    def _setup(self) -> None:
        object.__setattr__(self, "train_mode", True)
        object.__setattr__(self, "lr_max", -math.inf)
        object.__setattr__(self, "weight_sum", 0.0)
        object.__setattr__(self, "_step", None)

    def _interp(self) -> float:
        return getattr(self, self._momentum_name)

    def _init_state(self, p):
        return {"z": p.copy(), "x": p.copy(), **{slot: np.zeros_like(p) for slot in self.slots[2:]}}

    def update(self, params, grads):
        """One step (training mode only); see the class docstring for the averaging."""
        k = self.step_count
        sched = (k + 1) / self.warmup_steps if k < self.warmup_steps else 1.0
        lr = resolve_lr(self.lr, k) * sched
        lr_max = max(lr, self.lr_max)
        weight = (k + 1) ** self.r * lr_max**self.weight_lr_power
        weight_sum = self.weight_sum + weight
        ckp1 = weight / weight_sum if weight_sum else 0.0
        object.__setattr__(self, "_step", (lr, ckp1, k + 1))
        if not self.train_mode:  # before the compiled path, which does not run the walk (_prepare) once planned
            self._prepare(params, grads)
        before = self.step_count
        super().update(params, grads)  # validates everything first; raises before writing
        if self.step_count != before:  # a step was taken (not skipped, not all None): commit the scalars
            object.__setattr__(self, "lr_max", lr_max)
            object.__setattr__(self, "weight_sum", weight_sum)

    def _prepare(self, params, grads):
        # part of the validating walk, so a Partition holding this optimizer refuses before any group writes
        if not self.train_mode:
            raise ValueError(
                f"{type(self).__name__}.update: the parameters hold the average x (eval mode); "
                "call opt.train(params) before training"
            )
        return super()._prepare(params, grads)

    def _fused_scalars(self, t):
        """The call's scalars (``t``, the key's step, is not used: the averaging is the call's)."""
        lr, ckp1, _ = self._step
        beta = self._interp()
        return (lr, 1.0 - ckp1, ckp1, beta, 1.0 - beta)

    def _average(self, p, g, s, direction) -> None:
        lr, ckp1, _ = self._step
        z, x, beta = s["z"], s["x"], self._interp()
        z -= lr * direction
        x *= 1.0 - ckp1
        x += ckp1 * z
        p[...] = x * beta + z * (1.0 - beta)

    # --- train / eval ------------------------------------------------------------------------

    def _switch(self, params: Mapping[str, np.ndarray], to_train: bool) -> None:
        name = f"{type(self).__name__}.{'train' if to_train else 'eval'}"
        if not isinstance(params, Mapping):
            raise TypeError(f"{name}: params must be a mapping of str to np.ndarray, got {type(params).__name__}")
        missing = [k for k in self.state if k not in params]
        if missing:
            raise KeyMismatchError(f"{name}: params lacks key(s) {missing} that have optimizer state")
        for key, s in self.state.items():
            p = params[key]
            if not isinstance(p, np.ndarray) or p.shape != s["z"].shape or p.dtype != s["z"].dtype:
                what = f"{p.dtype}{list(p.shape)}" if isinstance(p, np.ndarray) else type(p).__name__
                raise ValueError(f"{name}: params[{key!r}] is {what}, its state is {s['z'].dtype}{list(s['z'].shape)}")
            if not p.flags.writeable:
                raise ValueError(f"{name}: params[{key!r}] is not writeable")
        beta = self._interp()
        for key, s in self.state.items():  # all checked: now write
            params[key][...] = s["x"] * beta + s["z"] * (1.0 - beta) if to_train else s["x"]
        object.__setattr__(self, "train_mode", to_train)

    def eval(self, params: Mapping[str, np.ndarray]) -> None:
        """Write the average :math:`x` into ``params`` (nothing if already in eval mode)."""
        if self.train_mode:
            self._switch(params, to_train=False)

    def train(self, params: Mapping[str, np.ndarray]) -> None:
        """Write the training point :math:`y` back into ``params`` (nothing if already in train mode)."""
        if not self.train_mode:
            self._switch(params, to_train=True)

    @contextlib.contextmanager
    def evaluating(self, params: Mapping[str, np.ndarray]) -> Iterator[None]:
        """``with opt.evaluating(params): ...`` evaluates at :math:`x`, then returns to training at :math:`y`."""
        was_training = self.train_mode
        self.eval(params)
        try:
            yield
        finally:
            if was_training:
                self.train(params)

    # --- state dict: the mode and the call's scalars beside the base format -------------------

    def state_dict(self):
        """The base format plus ``"schedule_free": {"train_mode": bool, "lr_max": float, "weight_sum": float}``
        (``lr_max`` is ``None`` before the first step)."""
        sd = super().state_dict()
        lr_max = None if self.lr_max == -math.inf else self.lr_max
        extra = {"train_mode": self.train_mode, "lr_max": lr_max, "weight_sum": self.weight_sum}
        return {**{k: v for k, v in sd.items() if k != "state"}, "schedule_free": extra, "state": sd["state"]}

    def load_state_dict(self, state_dict):
        name = f"{type(self).__name__}.load_state_dict"
        extra = state_dict.get("schedule_free") if isinstance(state_dict, Mapping) else None
        if not isinstance(extra, Mapping) or set(extra) != {"train_mode", "lr_max", "weight_sum"}:
            raise StateDictError(f"{name}: needs 'schedule_free': {{'train_mode', 'lr_max', 'weight_sum'}}")
        mode, lr_max, wsum = extra["train_mode"], extra["lr_max"], extra["weight_sum"]
        if not isinstance(mode, bool):
            raise StateDictError(f"{name}: train_mode must be True or False, got {mode!r}")
        for what, v in (("lr_max", lr_max), ("weight_sum", wsum)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v)):
                raise StateDictError(f"{name}: {what} must be a finite number, got {v!r}")
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "schedule_free"})
        object.__setattr__(self, "train_mode", mode)
        object.__setattr__(self, "lr_max", -math.inf if lr_max is None else float(lr_max))
        object.__setattr__(self, "weight_sum", float(wsum or 0.0))


class ScheduleFreeSGD(ScheduleFreeBase):
    r"""Schedule-free SGD (Defazio et al., 2024, Algorithm 1), as ``schedulefree.SGDScheduleFreeReference``.

    The direction is the gradient at :math:`y` (L2 ``weight_decay`` added, :math:`g + \lambda y`, as the
    reference); ``momentum`` is the interpolation :math:`\beta` (see :class:`ScheduleFreeBase` for the rest).

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import ScheduleFreeSGD
    >>> params, opt = {"w": np.array([1.0])}, ScheduleFreeSGD(lr=0.5, momentum=0.5)
    >>> opt.update(params, {"w": np.array([1.0])})  # z = 0.5, x = z (c_1 = 1), y = 0.5 x + 0.5 z
    >>> opt.update(params, {"w": np.array([1.0])})  # z = 0, x = (0.5 + 0)/2, y = 0.125
    >>> params["w"], opt.state["w"]["x"]
    (array([0.125]), array([0.25]))
    >>> with opt.evaluating(params):
    ...     params["w"]
    array([0.25])
    >>> params["w"]
    array([0.125])
    """

    slots = ("z", "x")
    _fused_kernel = "schedulefree_sgd"  # element loop in fused/rprop_asgd_sf.py; same operations, same order
    checks = {
        "lr": learning_rate,
        "momentum": unit_interval,
        "warmup_steps": _steps,
        "r": nonnegative,
        "weight_lr_power": nonnegative,
    }

    def __init__(
        self,
        *,
        lr: float | Schedule = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        on_nonfinite: str = "raise",
        backend: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            r=r,
            weight_lr_power=weight_lr_power,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )
        self._setup()

    def _rule(self, p, g, s, t):
        self._average(p, g, s, g)


class ScheduleFreeAdamW(ScheduleFreeBase):
    r"""Schedule-free AdamW (Defazio et al., 2024), as ``schedulefree.AdamWScheduleFreeReference``.

    .. math::
        z \leftarrow z - \gamma_k \lambda y, \qquad v \leftarrow \beta_2 v + (1-\beta_2) g^2, \qquad
        \Delta = \frac{g}{\sqrt{v / (1 - \beta_2^{k+1})} + \epsilon}

    then the averaging of :class:`ScheduleFreeBase` with :math:`\beta = \beta_1`.  The decay is decoupled
    and taken at :math:`y` (the reference's ``decay_at_z=False``); the bias correction uses the optimizer's
    step count :math:`k+1` (the reference's), not the key's.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import ScheduleFreeAdamW
    >>> params = {"w": np.array([1.0])}
    >>> ScheduleFreeAdamW(lr=0.1, eps=0.0).update(params, {"w": np.array([3.0])})
    >>> params["w"]  # z = 1 - 0.1 sign(g) = x; y = 0.9
    array([0.9])
    """

    slots = ("z", "x", "v")
    _fused_kernel = "schedulefree_adamw"  # element loop in fused/rprop_asgd_sf.py; same operations, same order
    _momentum_name = "beta1"
    _l2_weight_decay = False  # decoupled, at y: in _rule
    checks = {
        "lr": learning_rate,
        "beta1": unit_interval,
        "beta2": unit_interval,
        "eps": nonnegative,
        "warmup_steps": _steps,
        "r": nonnegative,
        "weight_lr_power": nonnegative,
    }

    def __init__(
        self,
        *,
        lr: float | Schedule = 0.0025,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        on_nonfinite: str = "raise",
        backend: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            r=r,
            weight_lr_power=weight_lr_power,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )
        self._setup()

    def _rule(self, p, g, s, t):
        lr, _, k1 = self._step
        v, b2 = s["v"], self.beta2
        if self.weight_decay:
            s["z"] -= (lr * self.weight_decay) * p
        v *= b2
        v += (1.0 - b2) * g * g
        self._average(p, g, s, g / (np.sqrt(v / (1.0 - b2**k1)) + self.eps))

    def _fused_scalars(self, t):
        lr, _, k1 = self._step
        b2, wd = self.beta2, self.weight_decay
        decay = (float(wd != 0.0), lr * wd)  # the flag: z moves only if weight_decay is set, as in _rule
        return (*super()._fused_scalars(t), b2, 1.0 - b2, 1.0 - b2**k1, self.eps, *decay)
