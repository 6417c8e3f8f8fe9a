"""Measuring a user's class and comparing it with a model: the probe's run, the first divergence, ε's fit.

Used by :mod:`.diagnosis`; see :mod:`.tolerance` for what "beyond rounding" means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .models import Probe, Variant, run_model, simulate
from .probes import LADDER
from .runner import Worker, decode, encode
from .tolerance import bound, kappa

__all__ = ["ONE", "Measured", "measure", "Divergence", "compare", "fit_eps", "snap"]

ONE = 4  # the ladder's element with g = +1, quoted in messages
assert LADDER[ONE] == 1.0


@dataclass
class Measured:
    """What the worker saw when it ran one probe on a fresh instance of the user's class."""

    probe: Probe
    ctor_error: dict | None
    attrs: dict
    steps: list[dict[str, np.ndarray | None]]
    replaced: list[tuple[int, str]]
    grads_changed: list[dict]
    error: dict | None


def measure(worker: Worker, probe: Probe, kwargs: dict, attrs: list[str]) -> Measured:
    calls = [{"grads": {k: encode(g) for k, g in c["grads"].items()}} if "grads" in c else c for c in probe.calls]
    request = {
        "op": "run",
        "kwargs": kwargs,
        "attrs": attrs,
        "params": {k: encode(p) for k, p in probe.params.items()},
        "calls": calls,
    }
    res = worker.request(request, f"running probe {probe.name!r}")
    steps, replaced, changed = [], [], []
    for t, s in enumerate(res.get("steps", []), start=1):
        steps.append({k: decode(v) for k, v in s.get("params", {}).items()})
        replaced += [(t, k) for k in s.get("replaced", [])]
        changed += [dict(c, call=t) for c in s.get("grads_changed", [])]
    error = res.get("error")
    if error is None and len(steps) < len(probe.updates) and res.get("constructed"):
        error = {"call": len(steps) + 1, "type": "Error", "message": "no reply for this call"}
    return Measured(probe, res.get("ctor_error"), res.get("attrs", {}), steps, replaced, changed, error)


@dataclass
class Divergence:
    probe: str
    step: int
    key: str
    index: tuple[int, ...] | None
    expected: float | None
    actual: float | None
    limit: float | None

    def where(self) -> str:
        el = "" if self.index is None else "[" + ", ".join(map(str, self.index)) + "]"
        return f"params[{self.key!r}]{el} after call {self.step} of probe {self.probe!r}"


def compare(rule: str, variant: Variant, hyper: dict, m: Measured, fitted: bool) -> Divergence | None:
    """The first (call, key, element) where ``m`` differs from ``variant`` beyond rounding, or ``None``."""
    model = run_model(rule, variant, hyper, m.probe)
    scale = run_model(rule, variant, hyper, m.probe.with_abs_grads())
    k = kappa(hyper)
    # m has fewer steps than the model when update raised: compare those it has
    for t, (exp_t, scale_t, act_t) in enumerate(zip(model, scale, m.steps, strict=False), start=1):
        for key, exp in exp_t.items():
            act = act_t.get(key)
            if act is None or act.shape != exp.shape:
                return Divergence(m.probe.name, t, key, None, None, None, None)
            lim = bound(t, k, scale_t[key], exp, fitted)
            bad = ~(np.abs(act - exp) <= lim)
            if bad.any():
                i = tuple(int(n) for n in np.argwhere(bad)[0])
                return Divergence(m.probe.name, t, key, i, float(exp[i]), float(act[i]), float(lim[i]))
    return None


def _first_step(rule: str, variant: Variant, hyper: dict, g: float) -> float:
    probe = Probe("fit", {"w": np.zeros(1)}, [{"grads": {"w": np.array([g])}}])
    return float(simulate(rule, variant, hyper, probe)[0]["w"][0])


def fit_eps(rule: str, variant: Variant, hyper: dict, w1: np.ndarray) -> float | None:
    """The ε under which ``variant``'s first ladder step matches ``w1`` at the element where ε halves it.

    The step shrinks monotonically as ε grows, so a bisection in log ε (1e-300 .. 1e6, 90 halvings:
    below an ulp) finds it; ``None`` when no ε fits (the step there is larger than with ε = 0, or
    smaller than with ε = 1e6)."""
    d = np.abs(np.asarray(w1, dtype=float))
    if d.shape != LADDER.shape or not np.all(np.isfinite(d)) or d[0] <= 0:
        return None
    with np.errstate(divide="ignore"):
        score = np.abs(np.log(np.maximum(d / d[0], 1e-300)) - math.log(0.5))
    i = int(np.argmin(score))
    target, g = d[i], LADDER[i]

    def f(eps: float) -> float:
        return abs(_first_step(rule, variant, {**hyper, "eps": eps}, g))

    if target >= f(0.0):
        return 0.0
    lo, hi = 1e-300, 1e6
    if f(hi) > target:
        return None
    for _ in range(90):
        mid = math.sqrt(lo) * math.sqrt(hi)
        lo, hi = (mid, hi) if f(mid) > target else (lo, mid)
    return math.sqrt(lo) * math.sqrt(hi)


def snap(x: float) -> float:
    """A hard-coded learning rate is a round number: three significant digits when within 1e-4 of them."""
    r = float(f"{x:.3g}")
    return r if r and abs(r - x) <= 1e-4 * abs(r) else x
