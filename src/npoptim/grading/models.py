r"""Models of the rules the grader compares a user's class with: npoptim's reference, and its known variants.

The reference run is npoptim's own optimizer from the registry (``backend="numpy"``).  The variants
are the rule with one convention or defect switched on, written out here element-wise so that a
measured behaviour can be matched to the variant that produces it:

=====================  =============================================================================
``eps_inside``         AdaGrad / RMSprop / Adam: :math:`g/\sqrt{h+\epsilon}` for :math:`g/(\sqrt h+\epsilon)`
``correction="hat"``   Adam, the "ε̂" order (Kingma & Ba §2, Keras, the book):
                       :math:`\eta_t = \eta\sqrt{1-\beta_2^t}/(1-\beta_1^t)`,
                       :math:`w \leftarrow w - \eta_t m/(\sqrt v+\epsilon)`
``correction="none"``  Adam with no bias correction: :math:`w \leftarrow w - \eta m/(\sqrt v+\epsilon)`
``updated_velocity``   Nesterov moving with the new velocity: :math:`v \leftarrow \mu v-\eta g`, then
                       :math:`w \leftarrow w+\mu^2 v-(1+\mu)\eta g` (first step :math:`(1+\mu+\mu^2)/(1+\mu)` too large)
``torch_form``         Momentum / Nesterov with η outside the buffer: :math:`b \leftarrow \mu b+g`,
                       :math:`w \leftarrow w-\eta b` (Nesterov: :math:`w \leftarrow w-\eta(g+\mu b)`)
``step_per_key``       one step counter advanced for every parameter instead of every call
=====================  =============================================================================
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..optimizers.registry import get_optimizer

__all__ = ["Probe", "Variant", "variants", "simulate", "reference_run", "run_model", "HAS_STEP", "ADAPTIVE"]

#: rules whose step depends on the step count t (bias corrections)
HAS_STEP = frozenset({"adam"})
#: rules with an ε the grader measures
ADAPTIVE = frozenset({"adagrad", "rmsprop", "adam"})


@dataclass
class Probe:
    """One probe: initial parameters and a list of calls (``{"grads": {...}}`` or ``{"set": {name: value}}``)."""

    name: str
    params: dict[str, np.ndarray]
    calls: list[dict] = field(default_factory=list)

    @property
    def updates(self) -> list[dict[str, np.ndarray]]:
        return [c["grads"] for c in self.calls if "grads" in c]

    def with_abs_grads(self) -> Probe:
        """The same calls on :math:`|g|` from zero parameters: the scale rounding errors are relative to."""
        calls = [{"grads": {k: np.abs(g) for k, g in c["grads"].items()}} if "grads" in c else c for c in self.calls]
        return Probe(self.name + "|abs|", {k: np.zeros_like(p) for k, p in self.params.items()}, calls)


@dataclass(frozen=True)
class Variant:
    """A form of the rule (all flags off: the reference)."""

    correction: str = "ref"  # Adam: "ref" (Algorithm 1) | "hat" (folded into the step size) | "none"
    eps_inside: bool = False
    updated_velocity: bool = False
    torch_form: bool = False
    step_per_key: bool = False

    @property
    def is_reference(self) -> bool:
        return self == Variant()

    @property
    def flags(self) -> int:
        return (
            (self.correction != "ref") + self.eps_inside + self.updated_velocity + self.torch_form + self.step_per_key
        )

    def but(self, **changes) -> Variant:
        return replace(self, **changes)


def variants(rule: str) -> list[Variant]:
    """The formula variants the single-key probes tell apart, the reference first, then by number of flags."""
    if rule == "nesterov":
        return [Variant(), Variant(updated_velocity=True)]
    if rule in ("adagrad", "rmsprop"):
        return [Variant(), Variant(eps_inside=True)]
    if rule == "adam":
        out = [Variant(correction=c, eps_inside=e) for e in (False, True) for c in ("ref", "hat", "none")]
        return sorted(out, key=lambda v: v.flags)
    return [Variant()]


def _step(rule: str, v: Variant, h: dict, p: np.ndarray, g: np.ndarray, s: dict, t: int) -> None:
    lr = h["lr"]
    if rule == "sgd":
        p -= lr * g
    elif rule == "momentum":
        if v.torch_form:
            s["b"] = h["momentum"] * s["b"] + g
            p -= lr * s["b"]
        else:
            s["v"] = h["momentum"] * s["v"] - lr * g
            p += s["v"]
    elif rule == "nesterov":
        mu = h["momentum"]
        if v.torch_form:
            s["b"] = mu * s["b"] + g
            p -= lr * (g + mu * s["b"])
        elif v.updated_velocity:
            s["v"] = mu * s["v"] - lr * g
            p += mu * mu * s["v"] - (1.0 + mu) * lr * g
        else:
            p += mu * mu * s["v"] - (1.0 + mu) * lr * g
            s["v"] = mu * s["v"] - lr * g
    elif rule in ("adagrad", "rmsprop"):
        if rule == "adagrad":
            s["h"] = s["h"] + g * g
        else:
            s["h"] = h["decay_rate"] * s["h"] + (1.0 - h["decay_rate"]) * g * g
        den = np.sqrt(s["h"] + h["eps"]) if v.eps_inside else np.sqrt(s["h"]) + h["eps"]
        p -= lr * g / den
    elif rule == "adam":
        b1, b2, eps = h["beta1"], h["beta2"], h["eps"]
        s["m"] = b1 * s["m"] + (1.0 - b1) * g
        s["v"] = b2 * s["v"] + (1.0 - b2) * g * g
        m, vv, step = s["m"], s["v"], lr
        if v.correction == "ref":
            m, vv = m / (1.0 - b1**t), vv / (1.0 - b2**t)
        elif v.correction == "hat":
            step = lr * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        den = np.sqrt(vv + eps) if v.eps_inside else np.sqrt(vv) + eps
        p -= step * m / den
    else:  # pragma: no cover - the grader refuses other rules first
        raise ValueError(f"no model of rule {rule!r}")


def simulate(rule: str, variant: Variant, hyper: dict[str, float], probe: Probe) -> list[dict[str, np.ndarray]]:
    """The parameters after each update call of ``probe`` under ``variant`` (float64, fresh state)."""
    h = dict(hyper)
    params = {k: np.array(p, dtype=np.float64) for k, p in probe.params.items()}
    state: dict[str, dict] = {}
    steps: dict[str, int] = {}
    counter = 0
    out = []
    for call in probe.calls:
        if "set" in call:
            h.update(call["set"])
            continue
        for k, g in call["grads"].items():
            s = state.setdefault(k, {n: np.zeros_like(params[k]) for n in ("v", "b", "h", "m")})
            counter += 1
            steps[k] = steps.get(k, 0) + 1
            _step(
                rule,
                variant,
                h,
                params[k],
                np.asarray(g, dtype=np.float64),
                s,
                counter if variant.step_per_key else steps[k],
            )
        out.append({k: p.copy() for k, p in params.items()})
    return out


def reference_run(rule: str, hyper: dict[str, float], probe: Probe) -> list[dict[str, np.ndarray]]:
    """The parameters after each update call of ``probe`` under npoptim's own optimizer for ``rule``."""
    cls = get_optimizer(rule)
    names = set(inspect.signature(cls).parameters) & {"lr", "momentum", "decay_rate", "beta1", "beta2", "eps"}
    opt = cls(**{k: v for k, v in hyper.items() if k in names}, backend="numpy")
    params = {k: np.array(p, dtype=np.float64) for k, p in probe.params.items()}
    out = []
    for call in probe.calls:
        if "set" in call:
            for name, value in call["set"].items():
                setattr(opt, name, value)
            continue
        opt.update(params, {k: np.array(g, dtype=np.float64) for k, g in call["grads"].items()})
        out.append({k: p.copy() for k, p in params.items()})
    return out


def run_model(rule: str, variant: Variant, hyper: dict[str, float], probe: Probe) -> list[dict[str, np.ndarray]]:
    """npoptim's optimizer for the reference form, the written-out variant otherwise."""
    if variant.is_reference:
        return reference_run(rule, hyper, probe)
    return simulate(rule, variant, hyper, probe)
