r"""From measured behaviour to findings: each code is named by the behaviour that defines it.

The order of the checks (one worker, every probe of :mod:`.probes` at most once):

1. **ladder** with the book's arguments.  A constructor that raises is ``constructor-error`` (the
   class is then built with its own defaults, ``own-defaults``, and graded on); an ``update`` that
   raises on call 1 or 2 is ``state-missing`` (or ``constructor-error`` when the missing attribute is
   one the constructor was given).
2. **lr**: the first step at η/2 must be half the step at η (every rule is linear in η for given
   gradients); otherwise ``constructor-error`` (the learning rate is not kept).
3. **formula**: each variant of :func:`.models.variants` (the reference first) is fitted to the
   ladder — ε solved from the element where it halves the step (adaptive rules) — and compared with
   every element and call.  The first that agrees within :mod:`.tolerance` names the form:
   ``eps-inside-root`` (the tiny gradients' steps scale with :math:`1/\sqrt\epsilon`, not
   :math:`1/\epsilon`), ``no-bias-correction`` (first step :math:`(1-\beta_1)/\sqrt{1-\beta_2}\,\eta`),
   ``eps-hat`` (the ε that fits changes with the step as :math:`1/\sqrt{1-\beta_2^t}`),
   ``nesterov-updated-velocity`` (first step :math:`(1+\mu+\mu^2)/(1+\mu)` too large).  None agrees:
   ``wrong-update`` at the first divergence from npoptim's reference.
4. **single** (random gradients) against the identified form: ``wrong-update`` for anything else.
5. **shared-1/2**: ``a``'s path changes when only ``b``'s gradients do: ``state-shared-across-keys``.
6. **shapes**, **keys** against the identified form; a divergence that the step-per-key model
   explains (Adam) is ``step-counted-per-key``, otherwise ``wrong-update``.
7. every probe: a parameter array replaced by another object is ``not-in-place``; a gradient array
   whose values changed is ``mutates-grads``.
8. **lr-change** (Momentum, Nesterov, when the class keeps ``lr`` as an attribute): agreeing with
   torch's form instead of npoptim's is the note ``torch-momentum-form``.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .findings import FORMULAS, Finding
from .measure import ONE, Divergence, Measured, compare, fit_eps, measure, snap
from .models import ADAPTIVE, HAS_STEP, Probe, Variant, reference_run, run_model, variants
from .probes import LADDER, keys, ladder, lr_change, lr_probe, shapes, shared, shared_other, single
from .runner import Worker
from .structure import structural_findings
from .tolerance import bound, kappa

__all__ = ["Diagnosis", "Measured", "Divergence", "fit_eps", "compare"]

#: exceptions of the formula's arithmetic (t = 0 in 1 − β**t, an overflow): wrong-update, not state-missing
ARITHMETIC = frozenset({"ZeroDivisionError", "OverflowError", "FloatingPointError"})


class Diagnosis:
    """Run the probes on ``worker``'s class and collect the findings (see the module docstring)."""

    def __init__(self, worker: Worker, rule: str, hyper: dict[str, float], kwargs: dict[str, float]) -> None:
        self.worker, self.rule, self.kwargs = worker, rule, dict(kwargs)
        self.hyper = dict(hyper)  # what the reference is run with (ε added once measured)
        self.given = dict(hyper)
        self.findings: dict[str, Finding] = {}
        self.measured: dict[str, float] = {}
        self.variant: Variant | None = None
        self.adaptive = rule in ADAPTIVE

    # -- helpers -------------------------------------------------------------------------------------
    def add(self, finding: Finding) -> None:
        self.findings.setdefault(finding.code, finding)

    def run_probe(self, probe: Probe, kwargs: dict | None = None) -> Measured:
        m = measure(self.worker, probe, self.kwargs if kwargs is None else kwargs, ["lr", *self.given])
        for finding in structural_findings(m):
            self.add(finding)
        return m

    def call_error(self, m: Measured) -> None:
        err = m.error or {}
        call, kind, msg = err.get("call"), err.get("type", "Error"), err.get("message", "")
        where = err.get("where") or {}
        loc = f" (line {where.get('line')}: {where.get('code', '')})" if where.get("line") else ""
        measured = f"call {call} of update raised {kind}: {msg}{loc}"
        missing = re.search(r"has no attribute '(\w+)'", msg) if kind == "AttributeError" else None
        if missing and missing.group(1) in self.kwargs:
            self.add(
                Finding(
                    "constructor-error",
                    f"the constructor did not keep {missing.group(1)!r}: {measured}",
                    expected=f"__init__ stores its arguments: self.{missing.group(1)} = {missing.group(1)}",
                    measured=measured,
                    fix=f"in __init__: self.{missing.group(1)} = {missing.group(1)}",
                    probe=m.probe.name,
                    step=call,
                )
            )
        elif kind == "TypeError" and not where.get("line") and call is not None and call <= 2:
            # raised at the call itself, before any line of the class ran: update's signature is not the book's
            self.add(
                Finding(
                    "wrong-update",
                    f"update(params, grads) cannot be called (probe {m.probe.name!r}): {kind}: {msg}",
                    expected="def update(self, params, grads), called with the two dicts",
                    measured=measured,
                    fix="def update(self, params, grads): the book's networks pass exactly these two arguments",
                    probe=m.probe.name,
                    step=call,
                )
            )
        elif kind in ARITHMETIC and call is not None and call <= 2:
            # a division by zero or an overflow is the formula's arithmetic, not missing state
            self.add(
                Finding(
                    "wrong-update",
                    f"update raises on its call {call} (probe {m.probe.name!r}): {kind}: {msg}{loc}",
                    expected=FORMULAS[self.rule],
                    measured=measured,
                    fix="check the denominators on the first call: a step counter used before it is "
                    "incremented gives 1 − β**0 = 0",
                    probe=m.probe.name,
                    step=call,
                )
            )
        elif call is not None and call <= 2:
            self.add(
                Finding(
                    "state-missing",
                    f"update raises on its call {call} (probe {m.probe.name!r}): {kind}: {msg}{loc}",
                    expected="update(params, grads) runs on the first call and every later one",
                    measured=measured,
                    fix="on the first call create every state array for every key, e.g. "
                    "self.v = {k: np.zeros_like(p) for k, p in params.items()}",
                    probe=m.probe.name,
                    step=call,
                )
            )
        else:
            self.add(
                Finding(
                    "wrong-update",
                    f"update raises on call {call} of probe {m.probe.name!r}: {kind}: {msg}{loc}",
                    expected=FORMULAS[self.rule],
                    measured=measured,
                    fix="make every later call run as the first did",
                    probe=m.probe.name,
                    step=call,
                )
            )

    def divergence(self, d: Divergence, context: str = "") -> None:
        if d.index is None:
            measured = f"{d.where()} is missing or has the wrong shape"
        else:
            measured = f"{d.where()}: expected {d.expected!r}, got {d.actual!r} (rounding explains {d.limit:.2g})"
        ref = "npoptim's reference" if self.variant is None or self.variant.is_reference else "the form identified"
        self.add(
            Finding(
                "wrong-update",
                f"the update differs from {ref} beyond rounding{context}: {measured}",
                expected=FORMULAS[self.rule],
                measured=measured,
                fix=f"compare the code with {FORMULAS[self.rule]}"
                + (f"; the probe agrees up to call {d.step - 1}" if d.step > 1 else "; the first call already differs"),
                probe=d.probe,
                step=d.step,
                key=d.key,
                element=None if d.index is None else list(d.index),
            )
        )

    # -- the checks ----------------------------------------------------------------------------------
    def run(self) -> list[Finding]:
        lad = self.run_probe(ladder())
        if lad.ctor_error:
            err = lad.ctor_error
            args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
            self.add(
                Finding(
                    "constructor-error",
                    f"Class({args}) raised {err.get('type')}: {err.get('message')}",
                    expected=f"the class accepts the book's keyword arguments ({args})",
                    measured=f"{err.get('type')}: {err.get('message')}",
                    fix=f"def __init__(self, {args}): and store each argument (self.lr = lr, ...)",
                )
            )
            self.kwargs = {}
            lad = self.run_probe(ladder(), {})
            if lad.ctor_error:
                return list(self.findings.values())
            own = {k: v for k, v in lad.attrs.items() if v is not None and k in self.given}
            self.hyper.update(own)
            self.add(
                Finding(
                    "own-defaults",
                    "graded with the class's own defaults, built as Class(): "
                    + ", ".join(f"{k}={v!r}" for k, v in self.hyper.items()),
                )
            )
        elif lad.attrs.get("lr") is not None and lad.attrs["lr"] != self.given["lr"]:
            self.add(
                Finding(
                    "constructor-error",
                    f"built with lr={self.given['lr']!r}, the instance keeps lr={lad.attrs['lr']!r}",
                    expected=f"self.lr == {self.given['lr']!r}",
                    measured=f"self.lr == {lad.attrs['lr']!r}",
                    fix="in __init__: self.lr = lr",
                )
            )
            self.hyper["lr"] = lad.attrs["lr"]
        if lad.error:
            self.call_error(lad)
            return list(self.findings.values())
        if self.kwargs:
            self.check_lr(lad)
        self.identify(lad)
        self.check_single()
        self.check_keys()
        if (
            self.rule in ("momentum", "nesterov")
            and self.variant is not None
            and lad.attrs.get("lr") == self.hyper["lr"]
        ):
            m = self.run_probe(lr_change(self.hyper["lr"]))
            if (
                not m.error
                and compare(self.rule, self.variant, self.hyper, m, False) is not None
                and compare(self.rule, self.variant.but(torch_form=True), self.hyper, m, False) is None
            ):
                self.add(
                    Finding(
                        "torch-momentum-form",
                        "the class keeps η outside the velocity (torch's b ← μb + g; w ← w − ηb): "
                        "the same as npoptim's "
                        "v ← μv − ηg; w ← w + v while η is constant (v = −ηb); after a change of η the old velocity is "
                        "rescaled by the new η (here η halved after call 2)",
                        expected=FORMULAS[self.rule],
                        measured="agrees with torch's form on probe 'lr-change'",
                        probe="lr-change",
                    )
                )
        return list(self.findings.values())

    def check_lr(self, lad: Measured) -> None:
        half = {**self.kwargs, "lr": self.given["lr"] / 2}
        m = self.run_probe(lr_probe(), half)
        if m.ctor_error or m.error or not m.steps or m.steps[0].get("w") is None or lad.steps[0].get("w") is None:
            return
        full, halfstep = lad.steps[0]["w"], m.steps[0]["w"]
        if full.shape != halfstep.shape or not (np.all(np.isfinite(full)) and np.all(np.isfinite(halfstep))):
            return  # a non-finite step is the formula's fault: identify() reports it
        lim = bound(1, kappa(self.hyper), full, 2 * halfstep, False)
        if np.all(np.abs(full - 2 * halfstep) <= lim):
            return
        # The rate is lost when the step does not depend on it at all (a hard-coded rate).  A step that
        # depends on η in another way (η applied twice: ratio 4) keeps η and gets the formula wrong: the
        # formula checks name that (wrong-update).
        same = np.abs(full - halfstep) <= bound(1, kappa(self.hyper), full, halfstep, False)
        if not (np.any(full != 0) and np.all(same)):
            return
        ratio = full[ONE] / halfstep[ONE] if halfstep[ONE] else math.inf
        self.add(
            Finding(
                "constructor-error",
                f"the step does not depend on the learning rate it was given: at g = 1 the first step is "
                f"{float(full[ONE])!r} with lr={self.given['lr']!r} and {float(halfstep[ONE])!r} "
                f"with lr={self.given['lr'] / 2!r} "
                f"(ratio {ratio:.6g}, expected 2)",
                expected="step ∝ lr (every rule is linear in η for given gradients)",
                measured=f"ratio {ratio:.6g}",
                fix="in __init__: self.lr = lr, and use self.lr in update",
                probe="lr",
                step=1,
                key="w",
                element=[ONE],
            )
        )
        # grade the rest with the rate the class actually uses (a round number when it is hard-coded)
        ref1 = reference_run(self.rule, {**self.hyper, "lr": 1.0}, lr_probe())[0]["w"][ONE]
        self.hyper["lr"] = snap(self.hyper["lr"] if not ref1 else full[ONE] / ref1)

    def identify(self, lad: Measured) -> None:
        w1 = lad.steps[0].get("w")
        first_fit: dict | None = None
        for v in variants(self.rule):
            h = dict(self.hyper)
            if self.adaptive:
                eps = fit_eps(self.rule, v, h, w1) if w1 is not None else None
                if eps is None:
                    continue
                h["eps"] = eps
            first_fit = first_fit or h
            if compare(self.rule, v, h, lad, self.adaptive) is None:
                self.variant, self.hyper = v, h
                break
        if self.variant is None:
            self.hyper = first_fit or {**self.hyper, "eps": 1e-7} if self.adaptive else self.hyper
            d = compare(self.rule, Variant(), self.hyper, lad, self.adaptive)
            if d is not None:
                self.divergence(d, " on the ladder of gradient magnitudes (none of the known variants fits)")
            return
        if self.adaptive:
            self.measured["eps"] = self.hyper["eps"]
        self.name_variant(lad)

    def name_variant(self, lad: Measured) -> None:
        v, h, rule = self.variant, self.hyper, self.rule
        assert v is not None
        w1 = lad.steps[0]["w"]
        ref1 = reference_run(rule, h, ladder())[0]["w"]
        ratio = w1[ONE] / ref1[ONE]
        if v.updated_velocity:
            mu = h["momentum"]
            self.add(
                Finding(
                    "nesterov-updated-velocity",
                    f"the first step is {ratio:.6g} times npoptim's: the parameter moves with the velocity after its "
                    f"update, (1+μ+μ²)/(1+μ) = {(1 + mu + mu * mu) / (1 + mu):.6g} at μ = {mu:g}",
                    expected=f"first step −(1+μ)ηg = {float(ref1[ONE])!r} at g = 1",
                    measured=f"{float(w1[ONE])!r} at g = 1",
                    fix="params[key] += μ*μ*v_old − (1+μ)*lr*g, computed before v is updated (or from v_old)",
                    probe="ladder",
                    step=1,
                    key="w",
                    element=[ONE],
                )
            )
        if v.correction == "none":
            b1, b2 = h["beta1"], h["beta2"]
            self.add(
                Finding(
                    "no-bias-correction",
                    f"the first step at g = 1 is {float(w1[ONE])!r} = {ratio:.6g}·(−η); Algorithm 1's is −η·sign(g): "
                    f"(1−β₁)/√(1−β₂) = {(1 - b1) / math.sqrt(1 - b2):.6g} means m and v are not divided by 1 − βᵗ",
                    expected=f"first step −η·sign(g) = {float(ref1[ONE])!r} at g = 1",
                    measured=f"{float(w1[ONE])!r} at g = 1",
                    fix="m_hat = m / (1 - beta1**t); v_hat = v / (1 - beta2**t), t counted once per update call",
                    probe="ladder",
                    step=1,
                    key="w",
                    element=[ONE],
                )
            )
        if v.eps_inside:
            outside = run_model(rule, v.but(eps_inside=False), h, ladder())[0]["w"]
            rel = np.abs(w1 - outside) / np.maximum(np.abs(outside), 1e-300)
            i = int(np.argmax(rel))
            self.add(
                Finding(
                    "eps-inside-root",
                    f"at |g| = {abs(LADDER[i]):g} the first step is {float(w1[i])!r}; with ε = {h['eps']:.3g} "
                    f"outside the root it would be {float(outside[i])!r}: tiny gradients are limited by "
                    f"√ε = {math.sqrt(h['eps']):.3g} instead of ε",
                    expected="g / (√h + ε)",
                    measured=f"g / √(h + ε) with ε = {h['eps']:.3g}",
                    fix="np.sqrt(h) + eps, not np.sqrt(h + eps)",
                    probe="ladder",
                    step=1,
                    key="w",
                    element=[i],
                )
            )
        if v.correction == "hat":
            b2, eps = h["beta2"], h["eps"]
            alg1 = run_model(rule, v.but(correction="ref"), h, ladder())
            rel = max(
                float(np.max(np.abs(a["w"] - lad.steps[t]["w"]) / np.maximum(np.abs(a["w"]), 1e-300)))
                for t, a in enumerate(alg1)
            )
            one = abs(lad.steps[0]["w"][ONE] - alg1[0]["w"][ONE]) / abs(alg1[0]["w"][ONE])
            self.add(
                Finding(
                    "eps-hat",
                    f"Adam in the ε̂ form (Kingma & Ba §2; the book, Keras): the correction is folded into the step "
                    f"size and ε = {eps:.3g} is added to √v, which is Algorithm 1 with ε_t = ε/√(1−β₂ᵗ) "
                    f"({1 / math.sqrt(1 - b2):.3g}ε at step 1, {1 / math.sqrt(1 - b2**2):.3g}ε at step 2): "
                    "a convention, "
                    f"not a defect. The steps differ by {one:.2g} (relative) at |g| = 1, up to {rel:.2g} where |g| is "
                    f"near ε",
                    expected=FORMULAS[rule],
                    measured=f"ε̂ form, ε = {eps:.3g}",
                    probe="ladder",
                )
            )

    def check_single(self) -> None:
        m = self.run_probe(single())
        if m.error:
            self.call_error(m)
        elif self.variant is not None:
            d = compare(self.rule, self.variant, self.hyper, m, self.adaptive)
            if d is not None:
                self.divergence(d)

    def depends(self, m1: Measured, m2: Measured, key: str) -> tuple[int, int, float, float] | None:
        """The first (call, element, value in m1, value in m2) where ``key``'s path differs beyond rounding."""
        k = kappa(self.hyper)
        scale = run_model(self.rule, self.variant or Variant(), self.hyper, m1.probe.with_abs_grads())
        for t, (a1, a2, s) in enumerate(zip(m1.steps, m2.steps, scale, strict=False), start=1):
            x, y = a1.get(key), a2.get(key)
            if x is None or y is None or x.shape != y.shape:
                continue
            lim = 2 * bound(t, k, s[key], x, False)
            same = (np.abs(x - y) <= lim) | (x == y) | (np.isnan(x) & np.isnan(y))  # nan on both sides: the same path
            if not same.all():
                i = int(np.argwhere(~same)[0][0])
                return t, i, float(x[i]), float(y[i])
        return None

    def check_keys(self) -> None:
        p1, p2 = shared()
        m1, m2 = self.run_probe(p1), self.run_probe(p2)
        is_shared = False
        found = self.depends(m1, m2, "a") if not m1.error and not m2.error else None
        if found is not None:
            t, i, x, y = found
            # State shared in the loop's order reaches only the key updated later at call 1 (the first key
            # reads fresh state).  When b also depends on a at call 1, each key's step reads the other's
            # gradient within the call (clipping by the global norm): a formula defect, not shared state.
            m3 = self.run_probe(shared_other()) if t == 1 else None
            back = self.depends(m1, m3, "b") if m3 is not None and not m3.error else None
            if back is not None and back[0] == 1:
                self.add(
                    Finding(
                        "wrong-update",
                        f"within one call each key's step depends on the other key's gradient: a[{i}] after call 1 "
                        f"is {x!r} or {y!r} as only grads['b'] changes, b[{back[1]}] is {back[2]!r} or "
                        f"{back[3]!r} as only grads['a'] changes (clipping or scaling by the global gradient norm?)",
                        expected="each parameter's update depends only on its own gradient and state",
                        measured=f"a[{i}] after call 1: {x!r} vs {y!r}; b[{back[1]}]: {back[2]!r} vs {back[3]!r}",
                        fix="update each key from grads[key] alone; no clipping or scaling across keys",
                        probe="shared-1/shared-2/shared-3",
                        step=1,
                        key="a",
                        element=[i],
                    )
                )
            else:
                is_shared = True
                self.add(
                    Finding(
                        "state-shared-across-keys",
                        f"params['a'] after call {t} depends on grads['b']: two runs that differ only in b's "
                        f"gradients give a[{i}] = {x!r} and {y!r}",
                        expected="each parameter's update depends only on its own gradient and state",
                        measured=f"a[{i}] after call {t}: {x!r} vs {y!r}",
                        fix="keep one state array per key: self.v[key] = np.zeros_like(params[key]) for each key",
                        probe="shared-1/shared-2",
                        step=t,
                        key="a",
                        element=[i],
                    )
                )
        multi = [m1, self.run_probe(shapes()), self.run_probe(keys())]
        for m in multi:
            if m.error and not is_shared:
                self.call_error(m)
                return
        if self.variant is None or is_shared:
            return
        divs = [(m, compare(self.rule, self.variant, self.hyper, m, self.adaptive)) for m in multi if not m.error]
        divs = [(m, d) for m, d in divs if d is not None]
        if not divs:
            return
        per_key = self.variant.but(step_per_key=True)
        if self.rule in HAS_STEP and all(
            compare(self.rule, per_key, self.hyper, m, self.adaptive) is None for m, _ in divs
        ):
            m, d = next(((m, d) for m, d in divs if m.probe.name == "keys"), divs[0])
            n = len(m.probe.params)
            self.add(
                Finding(
                    "step-counted-per-key",
                    f"with {n} keys the bias correction drifts: {d.where()} is {d.actual!r}, npoptim's {d.expected!r}; "
                    f"the steps match a counter advanced once per key (key {list(m.probe.params).index(d.key) + 1} "
                    f"of {n} at call {d.step} steps as t = {(d.step - 1) * n + list(m.probe.params).index(d.key) + 1})",
                    expected="t advances once per update call, the same for every key",
                    measured=f"{d.where()}: {d.actual!r} vs {d.expected!r}",
                    fix="increment self.iter once per update call, before (outside) the loop over the keys",
                    probe=m.probe.name,
                    step=d.step,
                    key=d.key,
                    element=None if d.index is None else list(d.index),
                )
            )
        else:
            self.divergence(divs[0][1], " with several parameters")
