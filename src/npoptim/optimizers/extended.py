"""Update rules beyond the book's six: AdamW, Nadam, Adamax, Adadelta, RAdam, Lion.

Written exactly like :mod:`npoptim.optimizers.rules`: one ``_rule`` for one
array, lifted to dicts of parameters (validation, atomic update, state dicts,
clipping, schedules) by :class:`npoptim.optimizers.base.Optimizer`, and the
per-step scalars of the compiled kernel in ``_fused_scalars``.  In the formulas
:math:`w` is a parameter, :math:`g` its gradient (plus :math:`\\lambda w` when
``weight_decay`` is L2), :math:`\\eta` the learning rate of the step and
:math:`t` the parameter's own step, from 1.  ``docs/conventions.md`` compares
each with torch.optim, optax and Keras.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from ..schedules import Schedule
from .base import Optimizer, learning_rate, nonnegative, unit_interval
from .rules import Adam

__all__ = ["AdamW", "Nadam", "Adamax", "Adadelta", "RAdam", "Lion"]


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019,
    "Decoupled weight decay regularization", Algorithm 2).

    .. math::
        w \leftarrow (1 - \eta\lambda)\, w, \quad\text{then the Adam step of}\ g
        \ \text{(no } \lambda w \text{ in } g\text{)}

    The decay multiplies the weights by :math:`1 - \eta_t\lambda` with the
    step's learning rate, *before* the moments and the step (as
    ``torch.optim.AdamW``; the paper's schedule multiplier :math:`\eta_t` is our
    schedule on ``lr``).  ``weight_decay`` defaults to 0.01 (torch's default);
    it never enters ``m`` or ``v``, so it is not L2 regularisation (for which
    use :class:`Adam` with ``weight_decay``).  ``amsgrad`` as in :class:`Adam`.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import AdamW
    >>> params = {"w": np.array([2.0])}
    >>> AdamW(lr=0.1, weight_decay=0.5, eps=0.0).update(params, {"w": np.array([3.0])})
    >>> params["w"]  # 2 * (1 - 0.1 * 0.5) - 0.1 * sign(3)
    array([1.8])
    """

    _fused_kernel = "adamw"  # element loop in fused/kernels.py; same operations, same order
    _l2_weight_decay = False  # decoupled: applied in _rule, not added to the gradient

    def __init__(
        self,
        *,
        lr: float | Schedule = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        amsgrad: bool = False,
        weight_decay: float = 0.01,
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
            amsgrad=amsgrad,
            weight_decay=weight_decay,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    def _rule(self, p, g, s, t):
        p *= 1.0 - self.current_lr * self.weight_decay
        super()._rule(p, g, s, t)

    def _fused_scalars(self, t):
        return (*super()._fused_scalars(t), 1.0 - self.current_lr * self.weight_decay)


# The products mu_1 * ... * mu_t of Nadam's momentum schedule, per (beta1, momentum_decay):
# derived from hyperparameters and the step alone (not state), built once, shared.
_MU_PRODUCTS: dict[tuple[float, float], list[float]] = {}
_MU_LOCK = threading.Lock()


def _nadam_mu(beta1: float, psi: float, t: int) -> float:
    """:math:`\\mu_t = \\beta_1 (1 - \\tfrac12 \\cdot 0.96^{t\\psi})`."""
    return beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))


def _nadam_mu_product(beta1: float, psi: float, t: int) -> float:
    """:math:`\\prod_{i \\le t} \\mu_i`, multiplied in order from :math:`i = 1` (as torch accumulates it)."""
    with _MU_LOCK:
        table = _MU_PRODUCTS.setdefault((beta1, psi), [1.0])
        while len(table) <= t:
            table.append(table[-1] * _nadam_mu(beta1, psi, len(table)))
        return table[t]


class Nadam(Optimizer):
    r"""Nadam: Adam with Nesterov momentum (Dozat, 2016, "Incorporating Nesterov
    momentum into Adam", ICLR workshop), with the momentum schedule
    :math:`\mu_t = \beta_1 (1 - \tfrac12\, 0.96^{t\psi})`, :math:`\psi` = ``momentum_decay``.

    .. math::
        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\, g \odot g, \qquad
        d = \sqrt{v / (1 - \beta_2^t)} + \epsilon, \\
        w &\leftarrow w - \eta\,\frac{1 - \mu_t}{1 - \prod_{i \le t}\mu_i}\,\frac{g}{d}
                      - \eta\,\frac{\mu_{t+1}}{1 - \prod_{i \le t+1}\mu_i}\,\frac{m}{d}

    This is ``torch.optim.NAdam`` (defaults included: lr 2e-3,
    ``momentum_decay`` 4e-3); the products of :math:`\mu` are computed from the
    parameter's step, not stored.  Keras' ``Nadam`` uses the same schedule with
    its own :math:`\epsilon` placement (see ``docs/conventions.md``).

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import Nadam
    >>> params = {"w": np.array([1.0])}
    >>> Nadam(lr=0.1, eps=0.0).update(params, {"w": np.array([4.0])})
    >>> params["w"].round(6)  # step 1: lr * (1 + mu_2 (1 - b1) / (1 - mu_1 mu_2)) * sign(g), mu_t ~ 0.45
    array([0.894355])
    """

    slots = ("m", "v")
    _fused_kernel = "nadam"  # element loop in fused/kernels.py; same operations, same order
    checks = {
        "lr": learning_rate,
        "beta1": unit_interval,
        "beta2": unit_interval,
        "eps": nonnegative,
        "momentum_decay": nonnegative,
    }

    def __init__(
        self,
        *,
        lr: float | Schedule = 0.002,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        momentum_decay: float = 0.004,
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
            momentum_decay=momentum_decay,
            weight_decay=weight_decay,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    def _rule(self, p, g, s, t):
        m, v, b1, b2 = s["m"], s["v"], self.beta1, self.beta2
        _, _, _, _, bc2, eps, cg, cm = self._fused_scalars(t)
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * g * g
        denom = np.sqrt(v / bc2) + eps
        p -= cg * (g / denom)
        p -= cm * (m / denom)

    def _fused_scalars(self, t):
        b1, b2, psi, lr = self.beta1, self.beta2, self.momentum_decay, self.current_lr
        mu, mu_next = _nadam_mu(b1, psi, t), _nadam_mu(b1, psi, t + 1)
        prod = _nadam_mu_product(b1, psi, t)
        coef_g = lr * (1.0 - mu) / (1.0 - prod)
        coef_m = lr * mu_next / (1.0 - prod * mu_next)
        return (b1, 1.0 - b1, b2, 1.0 - b2, 1.0 - b2**t, self.eps, coef_g, coef_m)


class Adamax(Optimizer):
    r"""Adamax, Adam with the infinity norm (Kingma & Ba, 2015, section 7.1, Algorithm 2).

    .. math::
        m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        u \leftarrow \max(\beta_2 u,\ |g| + \epsilon), \qquad
        w \leftarrow w - \frac{\eta}{1 - \beta_1^t}\,\frac{m}{u}

    :math:`\epsilon` (not in the paper) keeps :math:`u > 0`; it is added to
    :math:`|g|` inside the max, as in ``torch.optim.Adamax`` (defaults lr 2e-3,
    :math:`\epsilon` = 1e-8).  :math:`u` needs no bias correction.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import Adamax
    >>> params = {"w": np.array([1.0, 1.0])}
    >>> Adamax(lr=0.1, eps=0.0).update(params, {"w": np.array([5.0, -0.5])})
    >>> params["w"]  # first step: lr * sign(g)
    array([0.9, 1.1])
    """

    slots = ("m", "u")
    _fused_kernel = "adamax"  # element loop in fused/kernels.py; same operations, same order
    checks = {"lr": learning_rate, "beta1": unit_interval, "beta2": unit_interval, "eps": nonnegative}

    def __init__(
        self,
        *,
        lr: float | Schedule = 0.002,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
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
        m, u, b1 = s["m"], s["u"], self.beta1
        m *= b1
        m += (1.0 - b1) * g
        np.maximum(u * self.beta2, np.abs(g) + self.eps, out=u)
        p -= (self.current_lr / (1.0 - b1**t)) * (m / u)

    def _fused_scalars(self, t):
        b1 = self.beta1
        return (b1, 1.0 - b1, self.beta2, self.eps, self.current_lr / (1.0 - b1**t))


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012, "ADADELTA: an adaptive learning rate method", Algorithm 1).

    .. math::
        h &\leftarrow \rho h + (1-\rho)\, g \odot g, \qquad
        \Delta = \frac{\sqrt{d + \epsilon}}{\sqrt{h + \epsilon}}\, g, \\
        d &\leftarrow \rho d + (1-\rho)\, \Delta \odot \Delta, \qquad
        w \leftarrow w - \eta\,\Delta

    :math:`\rho` is ``decay_rate``; :math:`\epsilon` is *inside* both roots, as
    in the paper (it also sets the size of the first steps, :math:`\sqrt\epsilon`
    in units of :math:`g/\mathrm{RMS}(g)`).  The paper has no learning rate
    (:math:`\eta = 1`, our default, as ``torch.optim.Adadelta``; torch's
    ``rho`` 0.9 and ``eps`` 1e-6 are our defaults too).

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import Adadelta
    >>> params = {"w": np.array([1.0])}
    >>> Adadelta(decay_rate=0.75, eps=0.0025).update(params, {"w": np.array([2.0])})
    >>> params["w"].round(6)  # 1 - sqrt(0.0025) / sqrt(0.25 * 4 + 0.0025) * 2
    array([0.900125])
    """

    slots = ("h", "d")
    _fused_kernel = "adadelta"  # element loop in fused/kernels.py; same operations, same order
    _fused_step_free = True  # _fused_scalars does not depend on t
    checks = {"lr": learning_rate, "decay_rate": unit_interval, "eps": nonnegative}

    def __init__(
        self,
        *,
        lr: float | Schedule = 1.0,
        decay_rate: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        on_nonfinite: str = "raise",
        backend: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            decay_rate=decay_rate,
            eps=eps,
            weight_decay=weight_decay,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    def _rule(self, p, g, s, t):
        h, d, rho, eps = s["h"], s["d"], self.decay_rate, self.eps
        h *= rho
        h += (1.0 - rho) * g * g
        delta = np.sqrt(d + eps) / np.sqrt(h + eps) * g
        d *= rho
        d += (1.0 - rho) * delta * delta
        p -= self.current_lr * delta

    def _fused_scalars(self, t):
        return (self.current_lr, self.decay_rate, 1.0 - self.decay_rate, self.eps)


class RAdam(Optimizer):
    r"""RAdam, rectified Adam (Liu et al., 2020, "On the variance of the adaptive
    learning rate and beyond", Algorithm 2).

    With :math:`\rho_\infty = 2/(1-\beta_2) - 1` and
    :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)` (the length of the
    approximated simple moving average),

    .. math::
        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\, g \odot g, \qquad
        \hat m = m / (1 - \beta_1^t), \\
        w &\leftarrow w - \eta\, r_t\, \hat m\, \frac{\sqrt{1-\beta_2^t}}{\sqrt{v} + \epsilon}
            \quad\text{if } \rho_t > 5, \qquad
        w \leftarrow w - \eta\, \hat m \quad\text{otherwise,} \\
        r_t &= \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}}

    so the first steps (where the variance of the adaptive rate is not yet
    bounded: :math:`t \le 5` at :math:`\beta_2 = 0.999`) are momentum SGD.
    :math:`\epsilon` is added to the *uncorrected* :math:`\sqrt v`, as in
    ``torch.optim.RAdam`` (the paper has none; Adam adds it to :math:`\sqrt{\hat v}`).

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import RAdam
    >>> params = {"w": np.array([1.0])}
    >>> RAdam(lr=0.1).update(params, {"w": np.array([5.0])})
    >>> params["w"]  # rho_1 = 1 <= 5: an SGD step with m_hat = g
    array([0.5])
    """

    slots = ("m", "v")
    _fused_kernel = "radam"  # element loop in fused/kernels.py; same operations, same order
    checks = {"lr": learning_rate, "beta1": unit_interval, "beta2": unit_interval, "eps": nonnegative}

    def __init__(
        self,
        *,
        lr: float | Schedule = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
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
        _, _, _, _, rectified, step, eps = self._fused_scalars(t)
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * g * g
        if rectified:
            p -= step * (m / (np.sqrt(v) + eps))
        else:
            p -= step * m

    def _fused_scalars(self, t):
        b1, b2, lr = self.beta1, self.beta2, self.current_lr
        bc1, bc2 = 1.0 - b1**t, 1.0 - b2**t
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        rho_t = rho_inf - 2.0 * t * b2**t / bc2
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
            return (b1, 1.0 - b1, b2, 1.0 - b2, 1.0, lr * rect * math.sqrt(bc2) / bc1, self.eps)
        return (b1, 1.0 - b1, b2, 1.0 - b2, 0.0, lr / bc1, self.eps)


class Lion(Optimizer):
    r"""Lion, "EvoLved sIgn mOmeNtum" (Chen et al., 2023, "Symbolic discovery of
    optimization algorithms", Algorithm 2).

    .. math::
        c = \beta_1 m + (1-\beta_1) g, \qquad
        w \leftarrow w - \eta\,\mathrm{sign}(c), \qquad
        m \leftarrow \beta_2 m + (1-\beta_2) g

    Every coordinate moves by exactly :math:`\eta` (or 0 where :math:`c = 0`),
    so the paper recommends a learning rate 3-10x smaller than AdamW's (default
    1e-4, :math:`\beta_1` 0.9, :math:`\beta_2` 0.99, the paper's).
    ``weight_decay`` here is L2 in the gradient, like every npoptim rule except
    AdamW; the paper (and ``optax.lion``) use *decoupled* decay,
    :math:`w \leftarrow (1 - \eta\lambda) w` (see ``docs/conventions.md``).
    torch.optim has no Lion.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import Lion
    >>> params = {"w": np.array([1.0, 1.0, 1.0])}
    >>> Lion(lr=0.1).update(params, {"w": np.array([3.0, -1e-6, 0.0])})
    >>> params["w"]
    array([0.9, 1.1, 1. ])
    """

    slots = ("m",)
    _fused_kernel = "lion"  # element loop in fused/kernels.py; same operations, same order
    _fused_step_free = True  # _fused_scalars does not depend on t
    checks = {"lr": learning_rate, "beta1": unit_interval, "beta2": unit_interval}

    def __init__(
        self,
        *,
        lr: float | Schedule = 1e-4,
        beta1: float = 0.9,
        beta2: float = 0.99,
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
            weight_decay=weight_decay,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    def _rule(self, p, g, s, t):
        m, b1, b2 = s["m"], self.beta1, self.beta2
        p -= self.current_lr * np.sign(b1 * m + (1.0 - b1) * g)
        m *= b2
        m += (1.0 - b2) * g

    def _fused_scalars(self, t):
        b1, b2 = self.beta1, self.beta2
        return (self.current_lr, b1, 1.0 - b1, b2, 1.0 - b2)
