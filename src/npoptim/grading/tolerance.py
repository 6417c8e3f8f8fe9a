r"""What "beyond rounding" means when a user's optimizer is compared with a model of the rule.

The user's class and the model compute the same real-number formula with different sequences of
correctly rounded float64 operations (``+ - * / sqrt``; Python's ``**`` within an ulp).  Following
Higham (*Accuracy and Stability of Numerical Algorithms*, 2nd ed., 2002, §3.1), each intermediate of
either computation, after ``n`` roundings, is within :math:`\gamma_n = nu/(1-nu)` (relative) of the
value the same expression takes on the *absolute values* of its inputs.  So after ``t`` updates

.. math:: |w^{\rm user}_t - w^{\rm model}_t| \le 2\,\gamma_{N t}\,\kappa\,(S_t + |w_t|)

where

* :data:`N_OPS` bounds the roundings one update adds to one element, in either order: Adam's
  Algorithm 1 takes 15 (two moment updates of 3 each, the square, two bias corrections of 2 each,
  the root, the ε addition, the division, the step-size product, the subtraction from w); the
  book's orders (``m += (1 - b1) * (g - m)``, the folded step size) take no more; 32 leaves room
  for an implementation that spends twice as many;
* :math:`S_t` is the model run on :math:`|g|` from :math:`w = 0` (every term with its sign made
  positive: the size of what was added, before any cancellation), and :math:`|w_t|` covers the
  rounding of each :math:`w \leftarrow w + \Delta`;
* :math:`\kappa = \max(1, 1/(1-\beta))` over the rule's decay rates (β₁, β₂, ρ): the book's
  ``m += (1 - b1) * (g - m)`` rounds :math:`g - m` at the scale of :math:`g` before scaling it by
  :math:`1-\beta`, and ``1 - b2**t`` turns the ulp of ``b2**t`` into a relative error up to
  :math:`\beta^t/(1-\beta^t) \le 1/(1-\beta)`; both are at most κ times the rounding of the moment.

When ε was measured (:data:`FIT`): ε is solved from one element of the ladder probe, whose measured
step carries the relative error above; where ε and the gradient term are within a factor
:math:`\sqrt{10}` of each other (the ladder's spacing) the solve amplifies it at most 10-fold, and a
relative error δ in ε changes any step by at most δ relative.  So a fitted comparison allows
``(1 + FIT)`` times the bound.

The defects themselves are far outside it: the smallest factor the checks look for is Nesterov's
:math:`(1+\mu+\mu^2)/(1+\mu)`, 1.0099 at μ = 0.01; the bound at t = 5 with κ = 1000 is 4e-11.
"""

from __future__ import annotations

import numpy as np

__all__ = ["U", "N_OPS", "FIT", "gamma", "rtol", "kappa", "bound"]

U = 2.0**-53  # float64 unit roundoff
N_OPS = 32
FIT = 10.0


def gamma(n: int) -> float:
    """:math:`\\gamma_n = nu/(1-nu)` for float64."""
    nu = n * U
    return nu / (1.0 - nu)


def kappa(hyper: dict[str, float]) -> float:
    """The amplification of rounding by ``1 - beta`` for the rule's decay rates (1 when it has none)."""
    rates = [hyper[k] for k in ("beta1", "beta2", "decay_rate") if k in hyper]
    return max([1.0] + [1.0 / (1.0 - r) for r in rates if r < 1.0])


def rtol(t: int, k: float) -> float:
    """``2 γ_{N_OPS t} κ``: the relative part of the bound after ``t`` updates."""
    return 2.0 * gamma(N_OPS * max(int(t), 1)) * k


def bound(t: int, k: float, scale: np.ndarray, value: np.ndarray, fitted: bool) -> np.ndarray:
    """The largest difference rounding explains after ``t`` updates (see the module docstring)."""
    return (1.0 + FIT * fitted) * rtol(t, k) * (np.abs(scale) + np.abs(value))
