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

from .base import Optimizer, nonnegative, unit_interval

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

    checks = {"lr": nonnegative}

    def __init__(self, *, lr: float = 0.01, weight_decay: float = 0.0, on_nonfinite: str = "raise") -> None:
        super().__init__(lr=lr, weight_decay=weight_decay, on_nonfinite=on_nonfinite)

    def _rule(self, p, g, s, t):
        p -= self.lr * g


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
    checks = {"lr": nonnegative, "momentum": unit_interval}

    def __init__(
        self, *, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0, on_nonfinite: str = "raise"
    ) -> None:
        super().__init__(lr=lr, momentum=momentum, weight_decay=weight_decay, on_nonfinite=on_nonfinite)

    def _rule(self, p, g, s, t):
        v = s["v"]
        v *= self.momentum
        v -= self.lr * g
        p += v


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
    checks = {"lr": nonnegative, "momentum": unit_interval}

    def __init__(
        self, *, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0, on_nonfinite: str = "raise"
    ) -> None:
        super().__init__(lr=lr, momentum=momentum, weight_decay=weight_decay, on_nonfinite=on_nonfinite)

    def _rule(self, p, g, s, t):
        mu, v, step = self.momentum, s["v"], self.lr * g
        p += mu * mu * v - (1.0 + mu) * step
        v *= mu
        v -= step


class AdaGrad(Optimizer):
    r"""AdaGrad (Duchi, Hazan & Singer, 2011, JMLR 12), diagonal form.

    .. math::
        h \leftarrow h + g \odot g, \qquad
        w \leftarrow w - \eta \, \frac{g}{\sqrt{h} + \epsilon}, \qquad h_0 = 0

    :math:`\epsilon` is outside the root (as in ``torch.optim.Adagrad``; the
    teaching code's default 1e-7 is kept).  The first step is
    :math:`\eta\,\mathrm{sign}(g)` up to :math:`\epsilon`.

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
    checks = {"lr": nonnegative, "eps": nonnegative}

    def __init__(
        self, *, lr: float = 0.01, eps: float = 1e-7, weight_decay: float = 0.0, on_nonfinite: str = "raise"
    ) -> None:
        super().__init__(lr=lr, eps=eps, weight_decay=weight_decay, on_nonfinite=on_nonfinite)

    def _rule(self, p, g, s, t):
        h = s["h"]
        h += g * g
        p -= self.lr * g / (np.sqrt(h) + self.eps)


class RMSprop(Optimizer):
    r"""RMSprop (Tieleman & Hinton, 2012, COURSERA lecture 6.5).

    .. math::
        h \leftarrow \rho h + (1 - \rho)\, g \odot g, \qquad
        w \leftarrow w - \eta \, \frac{g}{\sqrt{h} + \epsilon}, \qquad h_0 = 0

    :math:`\rho` is ``decay_rate`` (``alpha`` in ``torch.optim.RMSprop``,
    ``rho`` in Keras, ``decay`` in optax); :math:`\epsilon` is outside the root.

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
    checks = {"lr": nonnegative, "decay_rate": unit_interval, "eps": nonnegative}

    def __init__(
        self,
        *,
        lr: float = 0.01,
        decay_rate: float = 0.99,
        eps: float = 1e-7,
        weight_decay: float = 0.0,
        on_nonfinite: str = "raise",
    ) -> None:
        super().__init__(lr=lr, decay_rate=decay_rate, eps=eps, weight_decay=weight_decay, on_nonfinite=on_nonfinite)

    def _rule(self, p, g, s, t):
        h, rho = s["h"], self.decay_rate
        h *= rho
        h += (1.0 - rho) * g * g
        p -= self.lr * g / (np.sqrt(h) + self.eps)


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
    checks = {"lr": nonnegative, "beta1": unit_interval, "beta2": unit_interval, "eps": nonnegative}

    def __init__(
        self,
        *,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        on_nonfinite: str = "raise",
    ) -> None:
        super().__init__(
            lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, on_nonfinite=on_nonfinite
        )

    def _rule(self, p, g, s, t):
        m, v, b1, b2 = s["m"], s["v"], self.beta1, self.beta2
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * g * g
        denom = np.sqrt(v) / math.sqrt(1.0 - b2**t) + self.eps
        p -= (self.lr / (1.0 - b1**t)) * (m / denom)
