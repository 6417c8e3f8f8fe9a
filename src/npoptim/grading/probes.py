r"""The designed inputs of ``npoptim check``: each probe isolates the behaviour that defines one finding.

========  ==========================================================================================
probe     what it shows
========  ==========================================================================================
ladder    one key, :math:`w_0 = 0`, the same gradient three times, elements
          :math:`\pm 10^{4}, \pm 10^{3}, \dots, \pm 10^{-20}` (huge to tiny): the first-step factor of every
          rule (Nesterov's :math:`1+\mu`, Adam's 1 or :math:`(1-\beta_1)/\sqrt{1-\beta_2}`), and, where
          :math:`\epsilon` takes over from :math:`\sqrt h`, whether it is :math:`\epsilon` or
          :math:`\sqrt\epsilon` (ε inside the root) and whether it changes with the step (ε̂)
lr        the ladder's first call at half the learning rate: every rule's step is linear in η
single    one key, random start and gradients, five calls: anything else in the formula
shared-1  two keys of equal shape; ``shared-2`` differs from it only in ``b``'s gradients, so ``a``'s
shared-2  path must not change (state shared across keys)
shared-3  ``shared-1`` with only ``a``'s gradients changed: state shared in the loop's order lets
          only the later key see the other at call 1; both seeing each other at call 1 is a
          coupling within the call (clipping by the global norm), not state
shapes    two keys of different shapes (a layer's ``W`` and ``b``)
keys      three keys: the bias correction must not drift with their number (step counted per key)
lr-change momentum rules: η halved after two calls (npoptim keeps η inside the velocity; torch's
          form :math:`b \leftarrow \mu b + g,\ w \leftarrow w - \eta b` rescales the old velocity)
========  ==========================================================================================

All random numbers come from a local ``numpy.random.Generator`` with a fixed seed; gradients are
kept at magnitudes in [0.1, 2] so that no element sits below the ladder's smallest magnitude.
"""

from __future__ import annotations

import numpy as np

from .models import Probe

__all__ = ["LADDER", "ladder", "lr_probe", "single", "shared", "shared_other", "shapes", "keys", "lr_change", "SEED"]

SEED = 20150101
#: the ladder's magnitudes, 10^4 down to 10^-20, alternating in sign
LADDER = np.array([(-1.0) ** i * 10.0 ** (4 - i) for i in range(25)])
LADDER_CALLS = 3


def _grad(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)


def ladder() -> Probe:
    return Probe("ladder", {"w": np.zeros_like(LADDER)}, [{"grads": {"w": LADDER.copy()}} for _ in range(LADDER_CALLS)])


def lr_probe() -> Probe:
    return Probe("lr", {"w": np.zeros_like(LADDER)}, [{"grads": {"w": LADDER.copy()}}])


def single() -> Probe:
    rng = np.random.default_rng(SEED)
    w0 = rng.standard_normal(8)
    return Probe("single", {"w": w0}, [{"grads": {"w": _grad(rng, (8,))}} for _ in range(5)])


def shared() -> tuple[Probe, Probe]:
    rng = np.random.default_rng(SEED + 1)
    a0, b0 = rng.standard_normal(5), rng.standard_normal(5)
    ga = [_grad(rng, (5,)) for _ in range(3)]
    gb1 = [_grad(rng, (5,)) for _ in range(3)]
    gb2 = [g * -3.0 for g in gb1]
    p1 = Probe("shared-1", {"a": a0, "b": b0}, [{"grads": {"a": g, "b": h}} for g, h in zip(ga, gb1, strict=True)])
    p2 = Probe("shared-2", {"a": a0, "b": b0}, [{"grads": {"a": g, "b": h}} for g, h in zip(ga, gb2, strict=True)])
    return p1, p2


def shared_other() -> Probe:
    """``shared-1`` with only ``a``'s gradients changed: does ``b`` depend on ``a`` already at call 1?"""
    p1, _ = shared()
    calls = [{"grads": {"a": c["grads"]["a"] * -3.0, "b": c["grads"]["b"]}} for c in p1.calls]
    return Probe("shared-3", p1.params, calls)


def shapes() -> Probe:
    rng = np.random.default_rng(SEED + 2)
    w0, b0 = rng.standard_normal((2, 3)), rng.standard_normal(3)
    calls = [{"grads": {"W": _grad(rng, (2, 3)), "b": _grad(rng, (3,))}} for _ in range(3)]
    return Probe("shapes", {"W": w0, "b": b0}, calls)


def keys() -> Probe:
    rng = np.random.default_rng(SEED + 3)
    names = ("k0", "k1", "k2")
    p0 = {k: rng.standard_normal(4) for k in names}
    calls = [{"grads": {k: _grad(rng, (4,)) for k in names}} for _ in range(3)]
    return Probe("keys", p0, calls)


def lr_change(lr: float) -> Probe:
    rng = np.random.default_rng(SEED + 4)
    w0 = rng.standard_normal(4)
    g = [_grad(rng, (4,)) for _ in range(3)]
    return Probe(
        "lr-change",
        {"w": w0},
        [{"grads": {"w": g[0]}}, {"grads": {"w": g[1]}}, {"set": {"lr": lr / 2}}, {"grads": {"w": g[2]}}],
    )
