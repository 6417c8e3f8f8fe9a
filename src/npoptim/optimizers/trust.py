"""Layer-wise trust-ratio rules for large batches: LAMB and LARS (issue 15).

Each parameter's step is rescaled by a *trust ratio* :math:`\\|w\\| / \\|u\\|`, a norm over the whole
array, so ``_elementwise = False`` (``_rule`` sees the whole array) on the shared base
(:class:`npoptim.optimizers.base.Optimizer`).  They follow ``optax.lamb`` and ``optax.lars``; the norms
are NumPy's (BLAS).  A complex parameter is a pair of reals (its norm is the norm of the pairs).

Compiled path (``backend="numba"``, or ``"auto"`` on large calls once loaded: :mod:`.fused.parts`): the
element-wise parts around the norms run as compiled loops (LAMB: moments and direction in one loop, then
``trust_ratio`` in NumPy, then the step; LARS: ``trust_ratio`` in NumPy, then velocity and step in one
loop), the same operations in the same order and dtype as ``_rule``, so the same bits; the norms are
the same NumPy calls on the same arrays.  Parameters the loops do not take (float16, complex,
non-contiguous, ...) run ``_rule``.
"""

from __future__ import annotations

import numpy as np

from ..schedules import Schedule
from .base import Optimizer, flag, learning_rate, nonnegative, unit_interval
from .fused import parts as _parts

__all__ = ["LAMB", "LARS", "trust_ratio"]


def trust_ratio(w: np.ndarray, u: np.ndarray, coefficient: float = 1.0, eps: float = 0.0) -> float:
    r""":math:`c\,\|w\|_2 / (\|u\|_2 + \epsilon)`, or 1 when either norm is 0 (``optax.scale_by_trust_ratio``).

    >>> trust_ratio(np.array([3.0, 4.0]), np.array([0.0, 0.5]))
    10.0
    >>> trust_ratio(np.zeros(2), np.ones(2))   # a zero weight (or update) is not rescaled
    1.0
    """
    wn, un = float(np.linalg.norm(w.ravel())), float(np.linalg.norm(u.ravel()))
    if wn == 0.0 or un == 0.0:
        return 1.0
    return coefficient * wn / (un + eps)


class _CompiledParts(Optimizer):
    """The shared ``update`` of LAMB and LARS: decides once per call whether ``_apply`` may use the
    compiled loops (:func:`.fused.parts.wanted`); everything else is :meth:`Optimizer.update`'s."""

    def update(self, params, grads):
        """:meth:`Optimizer.update` (the compiled loops where they apply: see the module docstring)."""
        object.__setattr__(self, "_compiled_call", _parts.wanted(self, params))
        super().update(params, grads)


class LAMB(_CompiledParts):
    r"""LAMB, layer-wise adaptive moments for batch training (You et al., 2020,
    "Large batch optimization for deep learning: training BERT in 76 minutes",
    Algorithm 2), as ``optax.lamb``.

    .. math::
        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad v \leftarrow \beta_2 v + (1-\beta_2) g^2, \qquad
        u = \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon} + \lambda w, \\
        w &\leftarrow w - \eta\, \frac{\|w\|}{\|u\|}\, u \qquad(\text{ratio } 1 \text{ when } \|w\| = 0
        \text{ or } \|u\| = 0)

    The weight decay :math:`\lambda w` joins the Adam direction *inside* the trust
    ratio (decoupled from the moments, as the paper and optax; not L2 in
    :math:`g`).  The paper's scaling function :math:`\phi(\|w\|)` is the identity,
    as optax; pytorch_optimizer's ``Lamb`` clips :math:`\|w\|` at 10 by default
    and differs in other options (``docs/conventions.md``).  Norms are per parameter
    (per "layer"), over the whole array.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import LAMB
    >>> params = {"w": np.array([3.0, 4.0])}
    >>> LAMB(lr=0.1, eps=0.0).update(params, {"w": np.array([1.0, -2.0])})
    >>> params["w"].round(6)  # t = 1: u = sign(g), ||w||/||u|| = 5/sqrt(2)
    array([2.646447, 4.353553])
    """

    slots = ("m", "v")
    _elementwise = False
    _l2_weight_decay = False  # lambda w is added to the Adam direction, in _rule
    checks = {"lr": learning_rate, "beta1": unit_interval, "beta2": unit_interval, "eps": nonnegative}

    def __init__(
        self,
        *,
        lr: float | Schedule = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
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
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    def _rule(self, p, g, s, t):
        m, v, b1, b2 = s["m"], s["v"], self.beta1, self.beta2
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * g * g
        u = (m / (1.0 - b1**t)) / (np.sqrt(v / (1.0 - b2**t)) + self.eps)
        if self.weight_decay:
            u += self.weight_decay * p
        p -= (self.current_lr * trust_ratio(p, u)) * u

    def _apply(self, p, g, state):
        m, v = state["m"], state["v"]
        if not (self.__dict__.get("_compiled_call") and _parts.eligible(p, g, m, v)):
            super()._apply(p, g, state)
            return
        k, t, b1, b2 = _parts.kernels(), state["step"], self.beta1, self.beta2
        c = _parts.scalars(p.dtype, b1, 1.0 - b1, b2, 1.0 - b2, 1.0 - b1**t, 1.0 - b2**t, self.eps, self.weight_decay)
        u = np.empty_like(p)
        pf, uf = _parts.flat(p), _parts.flat(u)
        k.lamb_direction(pf, _parts.flat(g), _parts.flat(m), _parts.flat(v), uf, c, bool(self.weight_decay))
        k.scaled_step(pf, uf, _parts.scalars(p.dtype, self.current_lr * trust_ratio(p, u)))
        self.last_update_backend = "numba"


class LARS(_CompiledParts):
    r"""LARS, layer-wise adaptive rate scaling (You, Gitman & Ginsburg, 2017,
    "Large batch training of convolutional networks"), as ``optax.lars``.

    .. math::
        \tilde g = g + \lambda w, \qquad
        u = \eta\, \frac{c\,\|w\|}{\|\tilde g\| + \epsilon}\, \tilde g \quad(\text{ratio } 1 \text{ when }
        \|w\| = 0 \text{ or } \|\tilde g\| = 0), \\
        v \leftarrow \mu v - u, \qquad w \leftarrow w + v
        \quad(\text{nesterov: } w \leftarrow w + \mu v - u)

    :math:`c` is ``trust_coefficient``.  The weight decay is L2 in :math:`g`, inside
    the trust ratio (optax's ``add_decayed_weights`` first).  The momentum
    accumulates the *scaled* step (rate inside the velocity, as our
    :class:`~npoptim.Momentum` and optax's ``trace`` after ``scale_by_learning_rate``).

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import LARS
    >>> params = {"w": np.array([3.0, 4.0])}
    >>> LARS(lr=1.0, trust_coefficient=0.01).update(params, {"w": np.array([0.0, 2.0])})
    >>> params["w"]  # step lr * 0.01 * 5 / 2 * g = [0, 0.05]
    array([3.  , 3.95])
    """

    slots = ("v",)
    _elementwise = False
    checks = {
        "lr": learning_rate,
        "momentum": unit_interval,
        "nesterov": flag,
        "trust_coefficient": nonnegative,
        "eps": nonnegative,
    }

    def __init__(
        self,
        *,
        lr: float | Schedule = 1.0,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        trust_coefficient: float = 1e-3,
        eps: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        on_nonfinite: str = "raise",
        backend: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
            trust_coefficient=trust_coefficient,
            eps=eps,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    def _rule(self, p, g, s, t):
        v, mu = s["v"], self.momentum
        u = (self.current_lr * trust_ratio(p, g, self.trust_coefficient, self.eps)) * g
        v *= mu
        v -= u
        if self.nesterov:
            p += mu * v - u
        else:
            p += v

    def _apply(self, p, g, state):
        v = state["v"]
        if not (self.__dict__.get("_compiled_call") and _parts.eligible(p, g, v)):
            super()._apply(p, g, state)
            return
        if self.weight_decay:  # L2 in g, as the base's _apply
            g = np.asarray(g + self.weight_decay * p)
        ratio = trust_ratio(p, g, self.trust_coefficient, self.eps)
        c = _parts.scalars(p.dtype, self.current_lr * ratio, self.momentum)
        _parts.kernels().lars_step(_parts.flat(p), _parts.flat(g), _parts.flat(v), c, bool(self.nesterov))
        self.last_update_backend = "numba"
