"""The six update rules of "Deep Learning from Scratch" section 6.1, done right.

Each rule is written once, for one array, in ``_rule``; the shared mechanism
in :mod:`npoptim.optimizers.base` lifts it to dicts of parameters, validates
every call and keeps the state.  In the formulas :math:`w` is a parameter,
:math:`g` its gradient (plus :math:`\\lambda w` when ``weight_decay`` is set),
:math:`\\eta` the learning rate and :math:`t` the parameter's step, from 1.
"""

from __future__ import annotations

import math

import numpy as np

from ..schedules import Schedule
from .base import Optimizer, flag, learning_rate, nonnegative, unit_interval

__all__ = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]


class SGD(Optimizer):
    r"""Stochastic gradient descent (Robbins & Monro, 1951).

    .. math:: w \leftarrow w - \eta g

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import SGD
    >>> params = {"w": np.array([1.0, -2.0])}
    >>> SGD(lr=0.1).update(params, {"w": np.array([1.0, 1.0])})
    >>> params["w"]
    array([ 0.9, -2.1])
    """

    _fused_kernel = "sgd"  # element loop in fused/kernels.py; same operations, same order
    _fused_step_free = True  # _fused_scalars does not depend on t
    checks = {"lr": learning_rate}

    def __init__(
        self,
        *,
        lr: float | Schedule = 0.01,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        on_nonfinite: str = "raise",
        backend: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            weight_decay=weight_decay,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    def _rule(self, p, g, s, t):
        p -= self.current_lr * g

    def _fused_scalars(self, t):
        return (self.current_lr,)


class Momentum(Optimizer):
    r"""Heavy-ball momentum (Polyak, 1964), learning rate inside the velocity.

    .. math::
        v \leftarrow \mu v - \eta g, \qquad w \leftarrow w + v, \qquad v_0 = 0

    ``torch.optim.SGD(momentum=mu)`` keeps :math:`b = \mu b + g` and steps
    :math:`w \leftarrow w - \eta b`; with a constant :math:`\eta` the two are
    the same (:math:`v = -\eta b`).  They differ when :math:`\eta` changes: here
    old velocity keeps the old rate.  See ``docs/conventions.md``.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import Momentum
    >>> params, opt = {"w": np.array([0.0])}, Momentum(lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.update(params, {"w": np.array([1.0])})
    >>> params["w"]  # -0.1, then -0.1 + (0.9 * -0.1 - 0.1)
    array([-0.29])
    """

    slots = ("v",)
    _fused_kernel = "momentum"  # element loop in fused/kernels.py; same operations, same order
    _fused_step_free = True  # _fused_scalars does not depend on t
    checks = {"lr": learning_rate, "momentum": unit_interval}

    def __init__(
        self,
        *,
        lr: float | Schedule = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        on_nonfinite: str = "raise",
        backend: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    def _rule(self, p, g, s, t):
        v = s["v"]
        v *= self.momentum
        v -= self.current_lr * g
        p += v

    def _fused_scalars(self, t):
        return (self.current_lr, self.momentum)


class Nesterov(Optimizer):
    r"""Nesterov's accelerated gradient in the form of Bengio, Boulanger-Lewandowski
    & Pascanu (2013), "Advances in optimizing recurrent networks", eq. 7.

    .. math::
        w \leftarrow w + \mu^2 v - (1 + \mu)\eta g, \qquad v \leftarrow \mu v - \eta g

    The parameter moves with the *old* velocity; the teaching code's order,
    which used the updated one, made the first step :math:`(1+\mu+\mu^2)/(1+\mu)`
    times too large (1.43 at :math:`\mu = 0.9`).  With a constant :math:`\eta`
    this equals ``torch.optim.SGD(momentum=mu, nesterov=True)`` and Keras'
    ``SGD(momentum=mu, nesterov=True)``; with :math:`\mu = 0` it is SGD.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import Nesterov
    >>> params = {"w": np.array([0.0])}
    >>> Nesterov(lr=0.1, momentum=0.9).update(params, {"w": np.array([1.0])})
    >>> params["w"]  # -(1 + 0.9) * 0.1
    array([-0.19])
    """

    slots = ("v",)
    _fused_kernel = "nesterov"  # element loop in fused/kernels.py; same operations, same order
    _fused_step_free = True  # _fused_scalars does not depend on t
    checks = {"lr": learning_rate, "momentum": unit_interval}

    def __init__(
        self,
        *,
        lr: float | Schedule = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        on_nonfinite: str = "raise",
        backend: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    def _rule(self, p, g, s, t):
        mu, v, step = self.momentum, s["v"], self.current_lr * g
        p += mu * mu * v - (1.0 + mu) * step
        v *= mu
        v -= step

    def _fused_scalars(self, t):
        mu = self.momentum
        return (self.current_lr, mu, mu * mu, 1.0 + mu)


class AdaGrad(Optimizer):
    r"""AdaGrad (Duchi, Hazan & Singer, 2011, JMLR 12), diagonal form.

    .. math::
        h \leftarrow h + g \odot g, \qquad
        w \leftarrow w - \eta \, \frac{g}{\sqrt{h} + \epsilon}, \qquad h_0 = 0

    :math:`\epsilon` is outside the root (as in ``torch.optim.Adagrad``; the
    teaching code's default 1e-7 is kept).  The first step is
    :math:`\eta\,\mathrm{sign}(g)` up to :math:`\epsilon`.

    Options, as ``torch.optim.Adagrad``'s: ``initial_accumulator_value``
    :math:`h_0` (Keras and optax start at 0.1), and ``lr_decay`` :math:`k`, which
    uses :math:`\eta_t = \eta / (1 + (t - 1) k)` with the parameter's own step
    :math:`t` (an inverse-time decay, :class:`npoptim.schedules.InverseTimeDecay`,
    counted per parameter).

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import AdaGrad
    >>> params = {"w": np.array([1.0, 1.0])}
    >>> AdaGrad(lr=0.5, eps=0.0).update(params, {"w": np.array([3.0, -0.01])})
    >>> params["w"]
    array([0.5, 1.5])
    """

    slots = ("h",)
    _fused_kernel = "adagrad"  # element loop in fused/kernels.py; same operations, same order
    checks = {
        "lr": learning_rate,
        "eps": nonnegative,
        "initial_accumulator_value": nonnegative,
        "lr_decay": nonnegative,
    }

    def __init__(
        self,
        *,
        lr: float | Schedule = 0.01,
        eps: float = 1e-7,
        initial_accumulator_value: float = 0.0,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        on_nonfinite: str = "raise",
        backend: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            eps=eps,
            initial_accumulator_value=initial_accumulator_value,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    def _init_state(self, p):
        return {"h": np.full(p.shape, self.initial_accumulator_value, dtype=p.dtype)}

    def _rule(self, p, g, s, t):
        h = s["h"]
        h += g * g
        p -= self._fused_scalars(t)[0] * g / (np.sqrt(h) + self.eps)

    def _fused_scalars(self, t):
        return (self.current_lr / (1.0 + (t - 1) * self.lr_decay), self.eps)


class RMSprop(Optimizer):
    r"""RMSprop (Tieleman & Hinton, 2012, COURSERA lecture 6.5).

    .. math::
        h \leftarrow \rho h + (1 - \rho)\, g \odot g, \qquad
        w \leftarrow w - \eta \, \frac{g}{\sqrt{h} + \epsilon}, \qquad h_0 = 0

    :math:`\rho` is ``decay_rate`` (``alpha`` in ``torch.optim.RMSprop``,
    ``rho`` in Keras, ``decay`` in optax); :math:`\epsilon` is outside the root.

    ``centered=True`` (Graves, 2013, "Generating sequences with recurrent
    neural networks", eq. 38-40) also averages the gradient,
    :math:`\bar g \leftarrow \rho \bar g + (1-\rho) g`, and divides by
    :math:`\sqrt{h - \bar g^2} + \epsilon` (an estimate of the standard deviation)
    instead of :math:`\sqrt{h} + \epsilon`.  ``momentum`` :math:`\mu > 0` adds a
    velocity, learning rate inside as in :class:`Momentum`:
    :math:`v \leftarrow \mu v - \eta\, g / (\cdot)`, :math:`w \leftarrow w + v`
    (torch keeps :math:`b = \mu b + g/(\cdot)`, :math:`w \leftarrow w - \eta b`: the
    same for a constant :math:`\eta`, :math:`v = -\eta b`).  Both options add state
    slots (``gbar``, ``v``), so they are fixed at construction: an RMSprop built
    with ``momentum=0`` refuses a later ``momentum > 0`` and vice versa.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import RMSprop
    >>> params = {"w": np.array([1.0])}
    >>> RMSprop(lr=0.01, decay_rate=0.99, eps=0.0).update(params, {"w": np.array([2.0])})
    >>> params["w"]  # 1 - 0.01 * 2 / sqrt(0.01 * 4) = 1 - 0.1
    array([0.9])
    """

    slots = ("h",)
    _fused_kernel = "rmsprop"  # element loop in fused/kernels.py; same operations, same order
    _fused_step_free = True  # _fused_scalars does not depend on t
    checks = {
        "lr": learning_rate,
        "decay_rate": unit_interval,
        "eps": nonnegative,
        "centered": flag,
        "momentum": unit_interval,
    }

    def __init__(
        self,
        *,
        lr: float | Schedule = 0.01,
        decay_rate: float = 0.99,
        eps: float = 1e-7,
        centered: bool = False,
        momentum: float = 0.0,
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
            centered=centered,
            momentum=momentum,
            weight_decay=weight_decay,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    @classmethod
    def _slots_for(cls, hyper):
        return ("h",) + ("gbar",) * bool(hyper["centered"]) + ("v",) * (hyper["momentum"] > 0)

    @classmethod
    def _kernel_for(cls, hyper):
        return "_".join(["rmsprop"] + ["centered"] * bool(hyper["centered"]) + ["momentum"] * (hyper["momentum"] > 0))

    _fused_variants = ({}, {"centered": True}, {"momentum": 0.9}, {"centered": True, "momentum": 0.9})

    def _rule(self, p, g, s, t):
        h, rho = s["h"], self.decay_rate
        h *= rho
        h += (1.0 - rho) * g * g
        if self.centered:
            gbar = s["gbar"]
            gbar *= rho
            gbar += (1.0 - rho) * g
            avg = np.sqrt(h - gbar * gbar) + self.eps
        else:
            avg = np.sqrt(h) + self.eps
        if "v" in s:
            v = s["v"]
            v *= self.momentum
            v -= self.current_lr * g / avg
            p += v
        else:
            p -= self.current_lr * g / avg

    def _fused_scalars(self, t):
        rho = self.decay_rate
        return (
            self.current_lr,
            rho,
            1.0 - rho,
            self.eps,
            float(self.centered),
            self.momentum,
            float("v" in self.slots),
        )


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015, "Adam: A method for stochastic optimization", Algorithm 1).

    .. math::
        m &\leftarrow \beta_1 m + (1 - \beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1 - \beta_2)\, g \odot g, \\
        \hat m &= m / (1 - \beta_1^t), \qquad \hat v = v / (1 - \beta_2^t), \\
        w &\leftarrow w - \eta \, \hat m / (\sqrt{\hat v} + \epsilon)

    :math:`\epsilon` is added *outside* the root, to the bias-corrected
    :math:`\sqrt{\hat v}`, exactly as in ``torch.optim.Adam`` and optax.  The
    paper's section 2 also gives a cheaper order that folds the corrections into
    the step size, :math:`\eta_t = \eta\sqrt{1-\beta_2^t}/(1-\beta_1^t)` and
    :math:`w \leftarrow w - \eta_t m/(\sqrt{v} + \hat\epsilon)` (Keras,
    TensorFlow); that :math:`\hat\epsilon = \epsilon\sqrt{1-\beta_2^t}` is a
    *different*, step-dependent epsilon, so the two agree only when
    :math:`\epsilon` is negligible.  The first step is
    :math:`\eta\,\mathrm{sign}(g)` up to :math:`\epsilon`.

    ``amsgrad=True`` is AMSGrad (Reddi, Kale & Kumar, 2018, "On the convergence
    of Adam and beyond", Algorithm 2, with Adam's bias corrections as in
    ``torch.optim.Adam(amsgrad=True)``): the denominator uses the running maximum
    :math:`\hat v^{\max} \leftarrow \max(\hat v^{\max}, v)` (slot ``v_max``),
    :math:`w \leftarrow w - \eta\,\hat m / (\sqrt{v^{\max}/(1-\beta_2^t)} + \epsilon)`,
    so the effective step size never grows; this repairs the divergence on
    Reddi et al.'s counterexample.  Fixed at construction (it adds a slot).

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import Adam
    >>> params = {"w": np.array([1.0, 1.0])}
    >>> Adam(lr=0.1, eps=0.0).update(params, {"w": np.array([5.0, -1e-3])})
    >>> params["w"]
    array([0.9, 1.1])
    """

    slots = ("m", "v")
    _fused_kernel = "adam"  # element loop in fused/kernels.py; same operations, same order
    checks = {
        "lr": learning_rate,
        "beta1": unit_interval,
        "beta2": unit_interval,
        "eps": nonnegative,
        "amsgrad": flag,
    }

    def __init__(
        self,
        *,
        lr: float | Schedule = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        amsgrad: bool = False,
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
            amsgrad=amsgrad,
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
        if self.amsgrad:
            v = np.maximum(s["v_max"], v, out=s["v_max"])
        denom = np.sqrt(v) / math.sqrt(1.0 - b2**t) + self.eps
        p -= (self.current_lr / (1.0 - b1**t)) * (m / denom)

    @classmethod
    def _slots_for(cls, hyper):
        return ("m", "v", "v_max") if hyper["amsgrad"] else ("m", "v")

    @classmethod
    def _kernel_for(cls, hyper):
        return cls._fused_kernel + "_amsgrad" * bool(hyper["amsgrad"])

    _fused_variants = ({}, {"amsgrad": True})

    def _fused_scalars(self, t):
        b1, b2, lr = self.beta1, self.beta2, self.current_lr
        return (b1, 1.0 - b1, b2, 1.0 - b2, math.sqrt(1.0 - b2**t), self.eps, lr / (1.0 - b1**t), float(self.amsgrad))
