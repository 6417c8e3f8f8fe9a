"""Prodigy, a learning-rate-free Adam (Mishchenko & Defazio, 2024), issue 15.

A whole-call rule: its step-size estimate :math:`d` is one number for all the parameters of a call, so
``update`` makes two passes over the validated call (the base's one walk, ``_prepare``, checks
everything first, and the base's clipping and non-finite policy run before anything is written).
The dot products and sums are NumPy's (BLAS).

Compiled path (``backend="numba"``, or ``"auto"`` on large calls once loaded: :mod:`.fused.parts`):
per parameter, the first pass's moments ``m``, ``v``, ``s`` are one compiled loop and the second
pass's step another, the same operations in the same order and dtype as the NumPy code below, so the
same bits; the dot product and the l1 norm stay the same NumPy calls on the same arrays.  float16,
non-contiguous and other parameters the loops do not take run the NumPy code.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import StateDictError
from ..schedules import Schedule, resolve_lr
from .base import Optimizer, flag, learning_rate, nonnegative, unit_interval
from .checking import _skip_nonfinite
from .fused import parts as _parts

__all__ = ["Prodigy"]


def _optional_rate(owner: str, name: str, value: Any) -> float | None:
    return None if value is None else unit_interval(owner, name, value)


def _positive(owner: str, name: str, value: Any) -> float:
    value = nonnegative(owner, name, value)
    if value == 0:
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be > 0")
    return value


def _growth(owner: str, name: str, value: Any) -> float:
    """A real number >= 1, ``math.inf`` allowed (no limit on the growth of d; ``None`` in a state dict)."""
    if value is None:  # how a state dict (JSON: no inf) writes math.inf
        return math.inf
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value) or value < 1.0:
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be >= 1 (math.inf for no limit)")
    return value


class Prodigy(Optimizer):
    r"""Prodigy (Mishchenko & Defazio, 2024, "Prodigy: an expeditiously adaptive parameter-free learner",
    Algorithm 4, Adam version), as ``prodigyopt.Prodigy`` 1.1.2.

    One estimate :math:`d` (from :math:`d_0`) for the whole call; with :math:`\hat\eta = d\,\eta\,b_k`
    (:math:`b_k = \sqrt{1-\beta_2^{k+1}}/(1-\beta_1^{k+1})` if ``use_bias_correction``, else 1) and the
    step's old :math:`d`, for every parameter (:math:`w_0` its value at its first step):

    .. math::
        m &\leftarrow \beta_1 m + d(1-\beta_1) g, \qquad v \leftarrow \beta_2 v + d^2 (1-\beta_2) g^2, \qquad
        s \leftarrow \beta_3 s + \tfrac{d}{d_0}\hat\eta\, g, \\
        N &\leftarrow \beta_3 N + \sum_{\text{params}} \tfrac{d}{d_0}\hat\eta\,\langle g, w_0 - w\rangle, \qquad
        \hat d = c\,\frac{N}{\sum_{\text{params}} \|s\|_1}, \qquad
        d \leftarrow \min(\max(d, \hat d)_{\max\text{ so far}},\ d \cdot \text{growth\_rate}), \\
        w &\leftarrow w - \hat\eta \lambda w - \hat\eta\, \frac{m}{\sqrt v + d_{\text{new}}\,\epsilon}

    :math:`\beta_3` defaults to :math:`\sqrt{\beta_2}`, :math:`c` is ``d_coef``; ``safeguard_warmup`` uses
    :math:`d` instead of :math:`\hat\eta` in :math:`s`.  ``decouple=True`` (default) decays as AdamW;
    ``False`` adds :math:`\lambda w` to :math:`g` (L2).  If :math:`\sum\|s\|_1 = 0` the moments move but
    no parameter does (as the reference).  :math:`k` is the optimizer's step count; :math:`d`,
    :math:`\max\hat d` and :math:`N` are in ``state_dict()["prodigy"]``.  Real parameters only.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import Prodigy
    >>> params, opt = {"w": np.array([1.0, -1.0])}, Prodigy()
    >>> for _ in range(30):
    ...     opt.update(params, {"w": 2 * params["w"]})
    >>> opt.d > 1e3 * opt.d0   # d grew from 1e-6 towards the distance to the solution
    True
    """

    slots = ("m", "v", "s", "p0")
    _elementwise = False
    _l2_weight_decay = False  # handled in update (decouple)
    checks = {
        "lr": learning_rate,
        "beta1": unit_interval,
        "beta2": unit_interval,
        "beta3": _optional_rate,
        "eps": nonnegative,
        "decouple": flag,
        "d0": _positive,
        "d_coef": nonnegative,
        "growth_rate": _growth,
        "use_bias_correction": flag,
        "safeguard_warmup": flag,
    }

    def __init__(
        self,
        *,
        lr: float | Schedule = 1.0,
        beta1: float = 0.9,
        beta2: float = 0.999,
        beta3: float | None = None,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decouple: bool = True,
        d0: float = 1e-6,
        d_coef: float = 1.0,
        growth_rate: float = math.inf,
        use_bias_correction: bool = False,
        safeguard_warmup: bool = False,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        on_nonfinite: str = "raise",
        backend: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr, beta1=beta1, beta2=beta2, beta3=beta3, eps=eps, weight_decay=weight_decay, decouple=decouple,
            d0=d0, d_coef=d_coef, growth_rate=growth_rate, use_bias_correction=use_bias_correction,
            safeguard_warmup=safeguard_warmup, clip_norm=clip_norm, clip_value=clip_value,
            on_nonfinite=on_nonfinite, backend=backend,
        )
        #: The step-size estimate, the largest estimate so far, and the numerator N (whole-call scalars).
        object.__setattr__(self, "d", self.d0)
        object.__setattr__(self, "d_max", self.d0)
        object.__setattr__(self, "d_numerator", 0.0)

    def _check_key(self, key, p):
        if p.dtype.kind == "c":
            raise TypeError(f"Prodigy.update: params[{key!r}] is complex ({p.dtype}); Prodigy updates real arrays")

    def _init_state(self, p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p), "s": np.zeros_like(p), "p0": p.copy()}

    def update(self, params, grads):
        """One Prodigy step for the whole call (validated, clipped and checked first, as every rule)."""
        lr = resolve_lr(self.lr, self.step_count)
        clipping = self.clip_norm is not None or self.clip_value is not None
        work = self._prepare(params, grads)  # the one validating walk; raises before anything is written
        if clipping:
            work, self.last_grad_norm = self._clip(work)
        propagate = self.on_nonfinite == "propagate"
        if _skip_nonfinite("Prodigy", self.on_nonfinite, work, self.step_count + 1):
            self.skipped_steps += 1
            return
        self.current_lr, self.last_update_backend = lr, "numpy"
        if not work:
            return
        compiled = _parts.wanted(self, params)  # the compiled loops, for the parameters they take
        with np.errstate(all="ignore") if propagate else contextlib.nullcontext():
            self._step(lr, work, compiled)

    def _step(self, lr: float, work: list, compiled: bool = False) -> None:
        b1, b2, k = self.beta1, self.beta2, self.step_count
        b3 = math.sqrt(b2) if self.beta3 is None else self.beta3
        d, d0 = self.d, self.d0
        bc = math.sqrt(1.0 - b2 ** (k + 1)) / (1.0 - b1 ** (k + 1)) if self.use_bias_correction else 1.0
        dlr = d * lr * bc
        numerator, denom_sum, delta = self.d_numerator * b3, 0.0, 0.0
        items = []
        for key, p, g, state in work:  # first pass: moments, s, the sums (with the old d)
            if state is None:
                state = self.state[key] = {"step": 0, **self._init_state(p)}
            wide = p.dtype == np.float16  # computed in float32, stored rounded to float16
            pc, gc = (p.astype(np.float32), g.astype(np.float32)) if wide else (p, g)
            s = {k_: (v.astype(np.float32) if wide else v) for k_, v in state.items() if k_ != "step"}
            if self.weight_decay and not self.decouple:
                gc = np.asarray(gc + self.weight_decay * pc)  # np.asarray: 0-d operands give a NumPy scalar
            fast = compiled and not wide and _parts.eligible(pc, gc, s["m"], s["v"], s["s"])
            if lr > 0.0:
                delta += (d / d0) * dlr * float(np.dot(gc.ravel(), (s["p0"] - pc).ravel()))
                cm, cv, cs = d * (1.0 - b1), d * d * (1.0 - b2), (d / d0) * (d if self.safeguard_warmup else dlr)
                if fast:
                    c = _parts.scalars(pc.dtype, b1, cm, b2, cv, b3, cs)
                    flat = _parts.flat
                    _parts.kernels().prodigy_moments(flat(gc), flat(s["m"]), flat(s["v"]), flat(s["s"]), c)
                else:
                    s["m"] *= b1
                    s["m"] += cm * gc
                    s["v"] *= b2
                    s["v"] += cv * (gc * gc)
                    s["s"] *= b3
                    s["s"] += cs * gc
                denom_sum += float(np.sum(np.abs(s["s"])))
            items.append((p, pc, gc, state, s, wide, fast))
        if denom_sum == 0.0:  # no estimate (as the reference: moments moved, nothing else)
            self._store(items)
            return
        if lr > 0.0:
            numerator += delta
            d_hat = self.d_coef * numerator / denom_sum
            if d == d0:
                d = max(d, d_hat)
            d_max = max(self.d_max, d_hat)
            d = min(d_max, d * self.growth_rate)
            object.__setattr__(self, "d_max", d_max)
            object.__setattr__(self, "d_numerator", numerator)
        object.__setattr__(self, "d", d)
        for _, pc, gc, state, s, _, fast in items:  # second pass: the step, with the new d in the denominator
            state["step"] += 1
            if fast:
                decay, keep = bool(self.weight_decay and self.decouple), -self.weight_decay * dlr
                c = _parts.scalars(pc.dtype, d * self.eps, keep, dlr if b1 > 0.0 else dlr * d)
                flat = _parts.flat
                _parts.kernels().prodigy_step(flat(pc), flat(gc), flat(s["m"]), flat(s["v"]), c, decay, b1 > 0.0)
                self.last_update_backend = "numba"
                continue
            denom = np.sqrt(s["v"]) + d * self.eps
            if self.weight_decay and self.decouple:
                pc += (-self.weight_decay * dlr) * pc
            if b1 > 0.0:
                pc -= dlr * (s["m"] / denom)
            else:
                pc -= (dlr * d) * (gc / denom)
        self._store(items)
        self.step_count += 1

    @staticmethod
    def _store(items: list) -> None:
        for p, pc, _, state, s, wide, _ in items:
            if wide:
                p[...] = pc
                for k_, v in s.items():
                    state[k_][...] = v

    def state_dict(self):
        """The base format plus ``"prodigy": {"d": float, "d_max": float, "d_numerator": float}``; a
        ``growth_rate`` of ``math.inf`` is written ``None``."""
        sd = super().state_dict()
        if sd["hyperparameters"]["growth_rate"] == math.inf:  # JSON (a checkpoint) has no inf
            sd["hyperparameters"]["growth_rate"] = None
        extra = {"d": self.d, "d_max": self.d_max, "d_numerator": self.d_numerator}
        return {**{k: v for k, v in sd.items() if k != "state"}, "prodigy": extra, "state": sd["state"]}

    def load_state_dict(self, state_dict):
        extra = state_dict.get("prodigy") if isinstance(state_dict, Mapping) else None
        if not isinstance(extra, Mapping) or set(extra) != {"d", "d_max", "d_numerator"}:
            raise StateDictError("Prodigy.load_state_dict: needs 'prodigy': {'d', 'd_max', 'd_numerator'}")
        for name, v in extra.items():
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise StateDictError(f"Prodigy.load_state_dict: {name} must be a finite number, got {v!r}")
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "prodigy"})
        for name, v in extra.items():
            object.__setattr__(self, name, float(v))
