r"""Named composites: a :class:`~npoptim.optimizers.wrappers.Partition` built from hyperparameters alone, so
that the CLI (``npoptim compare --optimizers muon+adamw``), the sweeps and the tests can create it by name.

``muon+adamw`` (:class:`MuonAdamW`) is issue 15's documented example: Muon for the weight matrices
``W*`` (of :mod:`npoptim.nn`: ``W1 .. Wn``), AdamW for every other key (biases, and any parameter of a
test function).  Its registry name is ``"muon+adamw"`` (:data:`npoptim.COMPOSITES`).
"""

from __future__ import annotations

import math
from typing import Any

from ..schedules import Schedule
from .extended import AdamW
from .matrix import Muon
from .wrappers import Partition

__all__ = ["MuonAdamW", "MATRIX_PATTERN"]

#: The keys :class:`MuonAdamW` gives to Muon: the weight matrices of :mod:`npoptim.nn`.
MATRIX_PATTERN = "W*"


def _ratio(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"MuonAdamW: muon_lr_ratio must be a finite number > 0, got {value!r}")
    return float(value)


class MuonAdamW(Partition):
    r"""Muon for the weight matrices ``W*``, AdamW for the rest: ``Partition({"W*": Muon(...), "*": AdamW(...)})``.

    One learning rate :math:`\eta` (``lr``) sets both parts:

    .. math::
        \eta_{\mathrm{AdamW}} = \eta, \qquad \eta_{\mathrm{Muon}} = \rho\,\eta
        \quad (\rho = \texttt{muon\_lr\_ratio}, \text{ default } 1),

    and Muon runs with ``adjust_lr="match_rms_adamw"``: its orthogonalised step is scaled by
    :math:`0.2\sqrt{\max(A, B)}` for an :math:`A \times B` matrix, so that its update has the RMS of a
    typical AdamW update (about 0.2) and AdamW's learning rate and weight decay carry over unchanged
    (Liu et al. 2025, "Muon is scalable for LLM training", section 2.2).  That is why :math:`\rho = 1` is
    the default; a sweep may tune :math:`\rho` as a dimension of its own.  (Jordan et al.'s
    ``adjust_lr="original"`` needs a Muon rate some 10-100x AdamW's instead.)

    ``momentum`` and ``ns_steps`` are Muon's (Nesterov on); ``beta1``, ``beta2``, ``eps`` AdamW's;
    ``weight_decay`` (decoupled, default AdamW's 0.01) is both parts'.  ``lr`` may be a
    :class:`~npoptim.schedules.Schedule` when ``muon_lr_ratio`` is 1 (both parts then follow it).  The
    state dict is :class:`Partition`'s, so :func:`npoptim.optimizer_from_state_dict` rebuilds an
    equivalent ``Partition`` that continues bit for bit; ``hyperparameters`` rebuilds this composite.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import create_optimizer
    >>> opt = create_optimizer("muon+adamw", lr=1e-3)
    >>> params = {"W1": np.ones((3, 2)), "b1": np.zeros(2)}
    >>> opt.update(params, {"W1": np.full((3, 2), 0.1), "b1": np.array([1.0, -1.0])})
    >>> [type(opt.optimizer_of(k)).__name__ for k in params], params["b1"]
    (['Muon', 'AdamW'], array([-0.001,  0.001]))
    """

    def __init__(
        self,
        *,
        lr: float | Schedule = 1e-3,
        muon_lr_ratio: float = 1.0,
        momentum: float = 0.95,
        ns_steps: int = 5,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        on_nonfinite: str = "raise",
    ) -> None:
        ratio = _ratio(muon_lr_ratio)
        if isinstance(lr, Schedule) and ratio != 1.0:
            raise ValueError(
                f"MuonAdamW: lr is a schedule ({lr!r}), which cannot be scaled by muon_lr_ratio={muon_lr_ratio!r}; "
                "use muon_lr_ratio=1 or build Partition({'W*': Muon(lr=...), '*': AdamW(lr=...)}) yourself"
            )
        adamw = AdamW(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, on_nonfinite=on_nonfinite)
        muon_lr = lr if isinstance(lr, Schedule) else ratio * lr
        muon = Muon(lr=muon_lr, momentum=momentum, nesterov=True, weight_decay=weight_decay, ns_steps=ns_steps,
                    adjust_lr="match_rms_adamw", on_nonfinite=on_nonfinite)
        super().__init__({MATRIX_PATTERN: muon, "*": adamw}, on_nonfinite=on_nonfinite)
        self._hyper = {
            "lr": lr, "muon_lr_ratio": ratio, "momentum": momentum, "ns_steps": ns_steps, "beta1": beta1,
            "beta2": beta2, "eps": eps, "weight_decay": weight_decay, "on_nonfinite": on_nonfinite,
        }

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's arguments (a copy): ``MuonAdamW(**opt.hyperparameters)`` is the same composite."""
        return dict(self._hyper)

    def __repr__(self) -> str:
        return f"MuonAdamW({', '.join(f'{k}={v!r}' for k, v in self._hyper.items())})"
