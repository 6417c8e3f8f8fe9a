"""Rules that see a whole tensor: Muon (issue 15).

Written on the same base as every rule (:class:`npoptim.optimizers.base.Optimizer`:
the one validating walk, atomic update, ``None`` gradients, state dicts, clipping,
schedules), with ``_elementwise = False`` so ``_rule`` receives the whole array, and
the :meth:`~npoptim.optimizers.base.Optimizer._check_key` hook to refuse, before any
write, an array the rule cannot update.  The matrix products run on NumPy's BLAS
(``@``), in the parameter's dtype; there is no compiled kernel (``backend="numba"``
runs this NumPy code).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ..schedules import Schedule
from .base import Optimizer, flag, learning_rate, nonnegative, unit_interval

__all__ = ["Muon", "newton_schulz"]

#: Keller Jordan's quintic coefficients (torch.optim.Muon's defaults).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
_ADJUST_LR = (None, "original", "match_rms_adamw")


def newton_schulz(g: np.ndarray, steps: int = 5, coefficients=NS_COEFFICIENTS, eps: float = 1e-7) -> np.ndarray:
    r"""The quintic Newton--Schulz iteration that Muon uses to orthogonalise a matrix.

    With :math:`X_0 = G / \max(\|G\|_F, \epsilon)` (transposed first when :math:`G`
    has more rows than columns, so :math:`X X^\top` is the smaller Gram matrix) and
    :math:`(a, b, c)` = ``coefficients``,

    .. math::
        A = X_k X_k^\top, \qquad X_{k+1} = a X_k + (b A + c A^2)\, X_k

    ``steps`` times: each singular value :math:`\sigma` of :math:`X_0` (all
    :math:`\le 1`) goes through :math:`p(\sigma) = a\sigma + b\sigma^3 + c\sigma^5`,
    which pushes it towards about 1 (Jordan et al. 2024: roughly
    :math:`U S' V^\top`, :math:`S'_{ii} \in (0.5, 1.5)`), while the singular
    vectors stay.  Computed in ``g``'s dtype with NumPy's ``@``.

    >>> import numpy as np
    >>> o = newton_schulz(np.diag([3.0, 1.0]), steps=10, coefficients=(1.5, -0.5, 0.0))  # cubic: converges
    >>> np.round(o, 6)
    array([[1., 0.],
           [0., 1.]])
    """
    a, b, c = coefficients
    tall = g.shape[0] > g.shape[1]
    x = g.T if tall else g
    x = x / max(float(np.linalg.norm(x)), eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * (gram @ gram)) @ x
    return x.T if tall else x


def _ns_steps(owner: str, name: str, value: Any) -> int:
    """An integer in [0, 100) (torch refuses 100 and more)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be an integer, got {value!r} ({type(value).__name__})")
    if not (isinstance(value, numbers.Integral) or float(value).is_integer()) or not 0 <= value < 100:
        raise ValueError(f"{owner}: invalid {name}={float(value)!r}: must be an integer in [0, 100)")
    return int(value)


def _coefficients(owner: str, name: str, value: Any) -> tuple[float, float, float]:
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 3
        or any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in value)
    ):
        raise TypeError(f"{owner}: {name} must be three real numbers (a, b, c), got {value!r}")
    out = tuple(float(v) for v in value)
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be finite")
    return out


def _adjust_lr(owner: str, name: str, value: Any) -> str | None:
    if value not in _ADJUST_LR:
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be one of {_ADJUST_LR}")
    return value


class Muon(Optimizer):
    r"""Muon, MomentUm Orthogonalized by Newton--Schulz (Jordan et al., 2024,
    "Muon: an optimizer for hidden layers in neural networks",
    kellerjordan.github.io/posts/muon), for 2-D parameters only.

    .. math::
        B &\leftarrow \mu B + (1-\mu) g, \qquad
        U = (1-\mu) g + \mu B \ \text{(nesterov)} \ \text{or}\ U = B, \\
        w &\leftarrow (1 - \eta\lambda)\, w - \eta\, r\, \mathrm{NS}(U)

    :math:`\mathrm{NS}` is :func:`newton_schulz` (``ns_steps``, ``ns_coefficients``,
    ``eps``), computed in the parameter's dtype (torch computes it in bfloat16).
    For a parameter of shape :math:`(A, B)` the rate is scaled by ``adjust_lr``:
    ``None``/``"original"`` :math:`r = \sqrt{\max(1, A/B)}`; ``"match_rms_adamw"``
    :math:`r = 0.2\sqrt{\max(A, B)}` (Liu et al. 2025, "Muon is scalable for LLM
    training").  The weight decay :math:`\lambda` is decoupled and uses the
    unscaled :math:`\eta`.  Defaults are ``torch.optim.Muon``'s.

    Muon is meant for the hidden layers' weight matrices; biases, gains,
    embeddings and the output layer go to another rule.  An array that is not 2-D
    (or complex) is refused before anything is written, with an error that points
    to :class:`~npoptim.optimizers.wrappers.Partition`:
    ``Partition({"W*": Muon(), "*": AdamW()})``.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import Muon
    >>> params = {"W": np.zeros((2, 2))}
    >>> Muon(lr=0.1, weight_decay=0.0, ns_steps=10, ns_coefficients=(1.5, -0.5, 0.0)).update(
    ...     params, {"W": np.diag([4.0, 1.0])})
    >>> np.round(params["W"], 6)  # -lr * the orthogonal factor of the gradient: -0.1 * I
    array([[-0.1,  0. ],
           [ 0. , -0.1]])
    """

    slots = ("momentum_buffer",)
    _elementwise = False  # Newton--Schulz sees the whole matrix
    _l2_weight_decay = False  # decoupled: applied in _rule
    checks = {
        "lr": learning_rate,
        "momentum": unit_interval,
        "nesterov": flag,
        "ns_steps": _ns_steps,
        "ns_coefficients": _coefficients,
        "eps": nonnegative,
        "adjust_lr": _adjust_lr,
    }

    def __init__(
        self,
        *,
        lr: float | Schedule = 1e-3,
        momentum: float = 0.95,
        nesterov: bool = True,
        weight_decay: float = 0.1,
        ns_steps: int = 5,
        ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
        eps: float = 1e-7,
        adjust_lr: str | None = None,
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
            ns_steps=ns_steps,
            ns_coefficients=ns_coefficients,
            eps=eps,
            adjust_lr=adjust_lr,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    def _check_key(self, key, p):
        where = f"Muon.update: params[{key!r}]"
        hint = 'give it to another rule with Partition, e.g. Partition({"W*": Muon(), "*": AdamW()})'
        if p.ndim != 2:
            raise ValueError(f"{where} has shape {p.shape}: Muon updates 2-D matrices only; {hint}")
        if p.dtype.kind == "c":
            raise TypeError(f"{where} is complex ({p.dtype}): Muon updates real matrices only; {hint}")

    def lr_ratio(self, shape: tuple[int, ...]) -> float:
        """:math:`r`, the factor ``adjust_lr`` applies to the rate for a parameter of ``shape``."""
        rows, cols = shape[:2]
        if self.adjust_lr == "match_rms_adamw":
            return 0.2 * math.sqrt(max(rows, cols))
        return math.sqrt(max(1.0, rows / cols)) if cols else 1.0  # an empty matrix does not move

    def _rule(self, p, g, s, t):
        buf, mu, lr = s["momentum_buffer"], self.momentum, self.current_lr
        buf *= mu
        buf += (1.0 - mu) * g
        u = (1.0 - mu) * g + mu * buf if self.nesterov else buf
        o = newton_schulz(u, self.ns_steps, self.ns_coefficients, self.eps)
        p *= 1.0 - lr * self.weight_decay
        p -= (lr * self.lr_ratio(p.shape)) * o
