"""The structural findings of ``npoptim check``, seen on every probe independently of the formula.

* ``not-in-place``: after a call, ``params[key]`` is another array object (the book's layers hold the
  arrays, so they never see the update);
* ``mutates-grads``: the caller's gradients changed during the call: an array's values (``grads[key] *=
  ...``), or the dict's entry itself (``grads[key] = ...``, ``grads.pop(key)``), which a caller that
  reads the gradients after the update (to log their norm, say) would then see.
"""

from __future__ import annotations

from .findings import Finding
from .measure import Measured

__all__ = ["structural_findings"]


def structural_findings(m: Measured) -> list[Finding]:
    """The first ``not-in-place`` and the first ``mutates-grads`` of the probe ``m`` measured."""
    name, out = m.probe.name, []
    for t, key in m.replaced[:1]:
        out.append(
            Finding(
                "not-in-place",
                f"after call {t} of probe {name!r}, params[{key!r}] is a new array object: a layer holding "
                "the old array (as the book's networks do) never sees the update",
                expected="params[key] is the same array object after update, its values changed in place",
                measured=f"params[{key!r}] replaced at call {t}",
                fix="params[key] -= step   (not params[key] = params[key] - step)",
                probe=name,
                step=t,
                key=key,
            )
        )
    for c in m.grads_changed[:1]:
        key, call = c["key"], c["call"]
        if c.get("rebound"):
            what = "removed" if c["rebound"] == "removed" else "replaced by another object"
            out.append(
                Finding(
                    "mutates-grads",
                    f"call {call} of probe {name!r} changed the caller's grads dict: grads[{key!r}] was {what}",
                    expected="grads are read only: the dict and its arrays",
                    measured=f"grads[{key!r}] {what} at call {call}",
                    fix="keep what you compute in a local variable (g = grads[key] * scale), never grads[key] = ...",
                    probe=name,
                    step=call,
                    key=key,
                )
            )
            continue
        out.append(
            Finding(
                "mutates-grads",
                f"call {call} of probe {name!r} changed the caller's grads[{key!r}]: element "
                f"{c['index']} was {c['before']!r} before the call and {c['after']!r} after",
                expected="grads are read only",
                measured=f"grads[{key!r}].flat[{c['index']}]: {c['before']!r} -> {c['after']!r}",
                fix="compute into a new array (step = self.lr * grads[key]), never grads[key] *= ... or -=",
                probe=name,
                step=call,
                key=key,
                element=[c["index"]],
            )
        )
    return out
