"""Rules that see a whole tensor: Muon, Adafactor (issue 15).

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
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..checks import real
from ..errors import StateDictError
from ..schedules import Schedule
from .base import Optimizer, flag, learning_rate, nonnegative, unit_interval

__all__ = ["Muon", "Adafactor", "newton_schulz"]

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


# --- Adafactor -------------------------------------------------------------------------------------


def _nonpositive(owner: str, name: str, value: Any) -> float:
    value = real(owner, name, value)
    if value > 0:
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be <= 0")
    return value


def _optional_nonnegative(owner: str, name: str, value: Any) -> float | None:
    return None if value is None else nonnegative(owner, name, value)


def _at_least_one(owner: str, name: str, value: Any) -> float:
    value = real(owner, name, value)
    if value < 1.0:
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be >= 1")
    return value


_LAYOUT_FACTORED, _LAYOUT_FULL = ("row_var", "col_var"), ("variance",)


def _lerp(a: np.ndarray, b: np.ndarray, w: float) -> None:
    """``a <- a + w (b - a)`` in place, from the nearer end (as ``torch.lerp``): exact at ``w = 1``, where
    ``a + (b - a)`` would lose ``b``'s digits to the cancellation (Adafactor's first step has ``w = 1``)."""
    if w < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (1.0 - w)


class Adafactor(Optimizer):
    r"""Adafactor (Shazeer & Stern, 2018, "Adafactor: adaptive learning rates with
    sublinear memory cost", Algorithms 4 and 5 with relative step sizes), in the form
    of ``torch.optim.Adafactor`` (no first moment).

    With :math:`\hat\beta_{2,t} = 1 - t^{c}` (:math:`c` = ``beta2_decay``),
    :math:`\rho_t = \min(\eta, 1/\sqrt t)` and
    :math:`\alpha_t = \max(\epsilon_2, \mathrm{RMS}(w))\,\rho_t` (before the decay):

    .. math::
        w &\leftarrow (1 - \eta\lambda)\, w, \\
        R &\leftarrow \hat\beta_{2,t} R + (1-\hat\beta_{2,t})\,\mathrm{mean}_{\text{cols}}(g^2), \quad
        C \leftarrow \hat\beta_{2,t} C + (1-\hat\beta_{2,t})\,\mathrm{mean}_{\text{rows}}(g^2), \quad
        \hat V = \frac{R\, C}{\max(\mathrm{mean}_{\text{rows}} R,\ \epsilon_1)}, \\
        U &= g / \sqrt{\max(\hat V, \epsilon_1^2)}, \qquad
        w \leftarrow w - \frac{\alpha_t}{\max(1, \mathrm{RMS}(U)/d)}\, U

    for a parameter of 2 or more dimensions: the second moment is factored over
    the **last two** dimensions (rows :math:`R` of shape ``(..., n, 1)``, columns
    :math:`C` of shape ``(..., 1, m)``, batched over the leading ones), so it costs
    :math:`n + m` numbers per matrix instead of :math:`nm`.  A 0-/1-D parameter
    keeps the full :math:`V \leftarrow \hat\beta_{2,t} V + (1-\hat\beta_{2,t}) g^2`
    (slot ``variance``).  ``eps1=None`` is the parameter dtype's machine epsilon;
    :math:`d` is the update-clipping threshold; the weight decay is decoupled, with
    :math:`\eta` (not :math:`\rho_t`).  Defaults are torch's (``eps=(None, 1e-3)``
    there).  Real parameters only; state slots have the shapes above (not the
    parameter's), checked at load and at every update.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import Adafactor
    >>> params = {"W": np.full((2, 3), 2.0)}
    >>> opt = Adafactor(lr=0.01)
    >>> opt.update(params, {"W": np.ones((2, 3))})  # t = 1: U = g / |g|, alpha = RMS(w) * min(lr, 1)
    >>> params["W"], [a.shape for a in (opt.state["W"]["row_var"], opt.state["W"]["col_var"])]
    (array([[1.98, 1.98, 1.98],
           [1.98, 1.98, 1.98]]), [(2, 1), (1, 3)])
    """

    slots = ()  # the base's same-shape slots: none; the factored state is laid out by _layout (below)
    _elementwise = False
    _l2_weight_decay = False  # decoupled: applied in _rule
    checks = {
        "lr": learning_rate,
        "beta2_decay": _nonpositive,
        "eps1": _optional_nonnegative,
        "eps2": nonnegative,
        "d": _at_least_one,
    }

    def __init__(
        self,
        *,
        lr: float | Schedule = 1e-2,
        beta2_decay: float = -0.8,
        eps1: float | None = None,
        eps2: float = 1e-3,
        d: float = 1.0,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        on_nonfinite: str = "raise",
        backend: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            beta2_decay=beta2_decay,
            eps1=eps1,
            eps2=eps2,
            d=d,
            weight_decay=weight_decay,
            clip_norm=clip_norm,
            clip_value=clip_value,
            on_nonfinite=on_nonfinite,
            backend=backend,
        )

    @staticmethod
    def _layout(shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """The state arrays of a parameter of ``shape``: slot -> shape."""
        if len(shape) >= 2:
            return {"row_var": (*shape[:-1], 1), "col_var": (*shape[:-2], 1, shape[-1])}
        return {"variance": shape}

    def _check_key(self, key, p):
        if p.dtype.kind == "c":
            raise TypeError(f"Adafactor.update: params[{key!r}] is complex ({p.dtype}); Adafactor updates real arrays")

    def _init_state(self, p):
        return {slot: np.zeros(shape, dtype=p.dtype) for slot, shape in self._layout(p.shape).items()}

    def _prepare(self, params, grads):
        work = super()._prepare(params, grads)
        for key, p, _, state in work:  # the state no longer fits the array: refused before anything is written
            if state is None:
                continue
            for slot, shape in self._layout(p.shape).items():
                a = state.get(slot)
                if a is None or a.shape != shape or a.dtype != p.dtype:
                    got = "missing" if a is None else f"{a.dtype}{list(a.shape)}"
                    raise ValueError(
                        f"Adafactor.update: params[{key!r}] is {p.dtype}{list(p.shape)} but its state[{slot!r}] is "
                        f"{got}, not {p.dtype}{list(shape)}; the array changed since its state was created"
                    )
        return work

    def _slots_of(self, p):
        return tuple(self._layout(p.shape))  # factored (row_var, col_var) for >= 2-D, else variance

    def _rule(self, p, g, s, t):
        if p.size == 0:
            return
        lr = self.current_lr
        eps1 = float(np.finfo(p.dtype).eps) if self.eps1 is None else self.eps1
        c = float(t) ** self.beta2_decay
        rho = min(lr, 1.0 / math.sqrt(t))
        alpha = max(self.eps2, float(np.linalg.norm(p.ravel())) / math.sqrt(p.size)) * rho
        if self.weight_decay:
            p *= 1.0 - lr * self.weight_decay
        g2 = g * g
        if p.ndim >= 2:
            row, col = s["row_var"], s["col_var"]
            _lerp(row, np.sum(g2, axis=-1, keepdims=True) / g.shape[-1], c)
            _lerp(col, np.sum(g2, axis=-2, keepdims=True) / g.shape[-2], c)
            v = (row @ col) / np.maximum(np.mean(row, axis=-2, keepdims=True), eps1)
        else:
            var = s["variance"]
            _lerp(var, g2, c)
            v = var.copy()
        u = g / np.sqrt(np.maximum(v, eps1 * eps1))
        denom = max(1.0, float(np.linalg.norm(u.ravel())) / (math.sqrt(u.size) * self.d))
        p -= (alpha / denom) * u

    # the state's layout is not the base's same-shape slots: state dicts carry it explicitly

    def state_dict(self):
        sd = super().state_dict()  # hyperparameters, counters, per-key steps
        for key, entry in sd["state"].items():
            entry.update({slot: a.copy() for slot, a in self.state[key].items() if slot != "step"})
        return sd

    def load_state_dict(self, state_dict):
        """As every optimizer's (checked first, nothing changes on error); each key's arrays are either
        ``row_var`` ``(..., n, 1)`` and ``col_var`` ``(..., 1, m)`` or ``variance``, of one floating dtype."""
        entries = state_dict.get("state") if isinstance(state_dict, Mapping) else None
        arrays: dict[str, dict[str, np.ndarray]] = {}
        if isinstance(entries, Mapping):
            for key, entry in entries.items():
                if not isinstance(entry, Mapping):
                    continue  # the base's check names it
                slots = {k: v for k, v in entry.items() if k != "step"}
                if set(slots) not in (set(_LAYOUT_FACTORED), set(_LAYOUT_FULL)):
                    raise StateDictError(
                        f"Adafactor.load_state_dict: state[{key!r}] has {sorted(entry)}, expected step and "
                        f"{list(_LAYOUT_FACTORED)} or {list(_LAYOUT_FULL)}"
                    )
                for slot, a in slots.items():
                    if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
                        where = f"state[{key!r}][{slot!r}]"
                        raise StateDictError(f"Adafactor.load_state_dict: {where} must be a real floating np.ndarray")
                if "row_var" in slots:
                    r, c = slots["row_var"], slots["col_var"]
                    if (r.ndim < 2 or r.ndim != c.ndim or r.shape[-1] != 1 or c.shape[-2] != 1
                            or r.shape[:-2] != c.shape[:-2] or r.dtype != c.dtype):
                        raise StateDictError(
                            f"Adafactor.load_state_dict: state[{key!r}]: row_var {r.dtype}{list(r.shape)} and "
                            f"col_var {c.dtype}{list(c.shape)} are not the factors of one array"
                        )
                arrays[key] = {slot: np.array(a, order="C", copy=True) for slot, a in slots.items()}
            # the base checks what is left (the steps, everything else) against its empty slots
            def strip(e):
                return {"step": e["step"]} if isinstance(e, Mapping) and "step" in e else e

            stripped = {k: strip(e) for k, e in entries.items()}
            state_dict = {**state_dict, "state": stripped}
        super().load_state_dict(state_dict)  # checks the rest, then commits
        for key, slots in arrays.items():
            self.state[key].update(slots)
