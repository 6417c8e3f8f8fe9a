"""Element-wise rules torch.optim ships beyond the classics: Rprop and ASGD (issue 15).

Written like :mod:`npoptim.optimizers.rules`: one ``_rule`` for one array,
lifted to dicts of parameters (validation, atomic update, ``None`` gradients,
state dicts, clipping, schedules) by :class:`npoptim.optimizers.base.Optimizer`.
Each has a compiled element loop (``fused/rprop_asgd_sf.py``) that repeats its
``_rule`` operation by operation, so both backends give the same bits (as for every
rule with a kernel, ``docs/performance.md``).  ``docs/conventions.md`` compares
each with torch.optim.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..schedules import Schedule
from .base import Optimizer, learning_rate, nonnegative
from .checking import _as_real

__all__ = ["Rprop", "ASGD"]


def _etas(owner: str, name: str, value: Any) -> tuple[float, float]:
    """``(eta_minus, eta_plus)`` with ``0 < eta_minus < 1 < eta_plus`` (finite), as torch requires."""
    pair = _real_pair(owner, name, value)
    if not (0.0 < pair[0] < 1.0 < pair[1] < float("inf")):
        raise ValueError(f"{owner}: invalid {name}={value!r}: "
            "must be (eta_minus, eta_plus) with 0 < eta_minus < 1 < eta_plus")
    return pair


def _step_sizes(owner: str, name: str, value: Any) -> tuple[float, float]:
    """``(min, max)`` with ``0 <= min <= max`` (finite)."""
    pair = _real_pair(owner, name, value)
    if not (0.0 <= pair[0] <= pair[1] < float("inf")):
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be (min, max) with 0 <= min <= max, finite")
    return pair


def _real_pair(owner: str, name: str, value: Any) -> tuple[float, float]:
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in value)
    ):
        raise TypeError(f"{owner}: {name} must be a pair of real numbers, got {value!r}")
    return (float(value[0]), float(value[1]))


def _sign(x: np.ndarray) -> np.ndarray:
    """``np.sign`` with sign(NaN) = 0, torch's (so ``on_nonfinite="propagate"`` does what torch does)."""
    return np.where(np.isnan(x), 0, np.sign(x))


class Rprop(Optimizer):
    r"""Rprop, resilient backpropagation (Riedmiller & Braun, 1993, "A direct adaptive
    method for faster backpropagation learning: the RPROP algorithm"), in the
    variant without weight-backtracking (Rprop\ :sup:`-`, Igel & Hüsken 2000).

    Each coordinate keeps its own step size :math:`\Delta` (slot ``step_size``,
    starting at :math:`\eta`) and the previous gradient :math:`g'` (slot ``prev``):

    .. math::
        s = \operatorname{sign}(g\,g'), \qquad
        \Delta \leftarrow \operatorname{clip}\bigl(\Delta \cdot
            \{\eta^+ \text{ if } s > 0;\ \eta^- \text{ if } s < 0;\ 1 \text{ if } s = 0\},
            \ \Delta_{\min}, \Delta_{\max}\bigr), \\
        \tilde g = \{0 \text{ if } s < 0;\ g \text{ otherwise}\}, \qquad
        w \leftarrow w - \operatorname{sign}(\tilde g)\,\Delta, \qquad g' \leftarrow \tilde g

    so after a sign flip the coordinate waits one step (its stored gradient is
    zeroed).  ``etas`` is :math:`(\eta^-, \eta^+)`, ``step_sizes``
    :math:`(\Delta_{\min}, \Delta_{\max})`; defaults are ``torch.optim.Rprop``'s.
    ``lr`` is only the initial step size, read when a key gets its state (a
    schedule affects keys created later, not existing step sizes).  Rprop is
    meant for full-batch gradients.  ``weight_decay`` is L2 in :math:`g` (torch's
    Rprop has none).  A complex parameter is a pair of reals, both parts starting
    at :math:`\Delta = \eta` (as torch's ``complex(lr, lr)``).  With
    ``on_nonfinite="propagate"`` a NaN gradient follows torch, whose
    :math:`\operatorname{sign}(\mathrm{NaN}) = 0`: the coordinate does not move
    and the NaN is stored in ``prev``.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import Rprop
    >>> params, opt = {"w": np.array([1.0, 1.0])}, Rprop(lr=0.5, etas=(0.5, 2.0))
    >>> opt.update(params, {"w": np.array([3.0, -1.0])})   # first step: sign(g) * lr
    >>> opt.update(params, {"w": np.array([1.0, 1.0])})    # same sign: 2 * lr; a flip: wait
    >>> params["w"]
    array([-0.5,  1.5])
    """

    slots = ("prev", "step_size")
    _fused_kernel = "rprop"  # element loop in fused/rprop_asgd_sf.py; same operations, same order
    _fused_step_free = True  # _fused_scalars does not depend on t (lr is read only by _init_state)
    checks = {"lr": learning_rate, "etas": _etas, "step_sizes": _step_sizes}

    def __init__(
        self,
        *,
        lr: float | Schedule = 0.01,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50.0),
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        on_nonfinite: str = "raise",
        backend: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            etas=etas,
            step_sizes=step_sizes,
            weight_decay=weight_decay,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    def _init_state(self, p):
        step = np.zeros(p.shape, dtype=p.dtype)
        (_as_real(step) if step.dtype.kind == "c" else step)[...] = self.current_lr
        return {"prev": np.zeros(p.shape, dtype=p.dtype), "step_size": step}

    def _rule(self, p, g, s, t):
        prev, step = s["prev"], s["step_size"]
        (eta_minus, eta_plus), (lo, hi) = self.etas, self.step_sizes
        one = p.dtype.type  # the factors in the parameter's dtype, as torch's sign tensor holds them
        sign = _sign(g * prev)
        step *= np.where(sign > 0, one(eta_plus), np.where(sign < 0, one(eta_minus), one(1.0)))
        np.clip(step, lo, hi, out=step)
        g = np.where(sign < 0, one(0.0), g)
        p -= _sign(g) * step
        prev[...] = g

    def _fused_scalars(self, t):
        (eta_minus, eta_plus), (lo, hi) = self.etas, self.step_sizes
        return (eta_minus, eta_plus, lo, hi, 1.0, 0.0)  # the kernel's factors and signs, in p's dtype


class ASGD(Optimizer):
    r"""ASGD, averaged stochastic gradient descent (Polyak & Juditsky, 1992,
    "Acceleration of stochastic approximation by averaging"), in the form of
    ``torch.optim.ASGD`` (after Bottou's SGD code, 2012).

    With :math:`\eta_t = \eta / (1 + \lambda\eta(t-1))^\alpha` and
    :math:`\mu_t = 1 / \max(1, t - 1 - t_0)`,

    .. math::
        w \leftarrow (1 - \lambda\eta_t)\, w - \eta_t\, g, \qquad
        \bar w \leftarrow \bar w + \mu_t (w - \bar w)
        \quad(\bar w \leftarrow w \text{ while } \mu_t = 1)

    :math:`\lambda` is ``lambd`` (a decay of the weights *and* of the step size),
    :math:`\alpha` the power of the step-size decay, :math:`t_0` the step from
    which averaging starts.  The iterate :math:`w` trains; the Polyak average
    :math:`\bar w` (slot ``ax``) is the estimate to evaluate: :meth:`averaged`
    returns copies of it, ``state_dict`` keeps it.  :math:`\eta_t` and
    :math:`\mu_t` are computed from the key's step :math:`t` (torch stores them
    as tensors of its default dtype, float32 unless set to float64).
    ``weight_decay`` is L2 in :math:`g`, as torch's.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import ASGD
    >>> params, opt = {"w": np.array([1.0])}, ASGD(lr=0.1, lambd=0.0, t0=0.0)
    >>> for g in (1.0, 1.0, 1.0):
    ...     opt.update(params, {"w": np.array([g])})
    >>> params["w"], opt.averaged()["w"]   # iterates 0.9, 0.8, 0.7; mu = 1, 1, 1/2
    (array([0.7]), array([0.75]))
    """

    slots = ("ax",)
    _fused_kernel = "asgd"  # element loop in fused/rprop_asgd_sf.py; same operations, same order
    checks = {"lr": learning_rate, "lambd": nonnegative, "alpha": nonnegative, "t0": nonnegative}

    def __init__(
        self,
        *,
        lr: float | Schedule = 0.01,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        on_nonfinite: str = "raise",
        backend: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            lambd=lambd,
            alpha=alpha,
            t0=t0,
            weight_decay=weight_decay,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    def _scalars(self, t: int) -> tuple[float, float]:
        """:math:`(\\eta_t, \\mu_t)` of step ``t`` (torch computes them at the end of step ``t - 1``)."""
        lr, lambd = self.current_lr, self.lambd
        eta = lr / ((1.0 + lambd * lr * (t - 1)) ** self.alpha)
        return eta, 1.0 / max(1.0, (t - 1) - self.t0)

    def _rule(self, p, g, s, t):
        ax = s["ax"]
        eta, mu = self._scalars(t)
        p *= 1.0 - self.lambd * eta
        p -= eta * g
        if mu != 1.0:
            ax += (p - ax) * mu
        else:
            ax[...] = p

    def _fused_scalars(self, t):
        eta, mu = self._scalars(t)
        return (1.0 - self.lambd * eta, eta, float(mu == 1.0), mu)  # the flag: decided on the Python float
    def averaged(self) -> dict[str, np.ndarray]:
        """Copies of the Polyak averages :math:`\\bar w`, by key (keys that have had a step)."""
        return {key: s["ax"].copy() for key, s in self.state.items()}
