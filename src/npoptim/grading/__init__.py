"""``npoptim check``'s computation: grade an optimizer class someone wrote against npoptim's reference.

:func:`check_optimizer` loads the class in a child process (:mod:`.runner`, :mod:`.worker`), runs the
designed probes of :mod:`.probes` on it, and names what is wrong from the behaviour alone
(:mod:`.diagnosis`, comparing with :mod:`.models` within :mod:`.tolerance`).  It returns a
:class:`~.findings.Report` (plain data); :mod:`npoptim.report.check` renders it.  The user's code never
runs in this process.

Example (a correct SGD written the book's way; the child needs a second or so)::

    >>> import pathlib, tempfile
    >>> src = "class SGD:\\n    def __init__(self, lr=0.01):\\n        self.lr = lr\\n" \\
    ...       "    def update(self, params, grads):\\n        for k in params:\\n" \\
    ...       "            params[k] -= self.lr * grads[k]\\n"
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mine.py"
    >>> _ = path.write_text(src)
    >>> check_optimizer(f"{path}:SGD").verdict
    'pass'
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..optimizers.registry import OPTIMIZERS
from .diagnosis import Diagnosis
from .findings import BOOK_DEFAULTS, CODES, RULES, Finding, Report
from .models import ADAPTIVE
from .runner import CheckError, Target, Worker, parse_target

__all__ = [
    "check_optimizer",
    "infer_rule",
    "plan_arguments",
    "validate_hyperparameters",
    "CheckError",
    "Report",
    "Finding",
    "CODES",
    "RULES",
    "DEFAULT_TIMEOUT",
]

DEFAULT_TIMEOUT = 20.0
#: when a class name contains several rule names, the more specific wins (NesterovMomentum is Nesterov)
_PRIORITY = ("nesterov", "rmsprop", "adagrad", "adam", "momentum", "sgd")


def infer_rule(class_name: str, rule: str | None = None) -> str:
    """The rule to grade against: ``rule`` if given, else the registry name the class name contains."""
    if rule is not None:
        r = str(rule).lower()
        if r not in RULES:
            extra = " (check grades the book's six rules)" if r in OPTIMIZERS else ""
            raise CheckError(f"unknown --rule {rule!r}{extra}; choices: {', '.join(RULES)}")
        return r
    name = class_name.lower()
    found = [n for n in OPTIMIZERS if n in name]
    found = [n for n in found if not any(n != o and n in o for o in found)]  # adam inside adamw: adamw
    for r in _PRIORITY:
        if r in found:
            return r
    if found:
        raise CheckError(
            f"class {class_name!r} looks like {found[0]!r}, which check does not grade; "
            f"pass --rule, one of: {', '.join(RULES)}"
        )
    raise CheckError(
        f"cannot tell the rule from the class name {class_name!r}; pass --rule, one of: {', '.join(RULES)}"
    )


#: the ranges the models are defined on (checks run before any code): lr > 0, eps >= 0, the rates in [0, 1)
_RATES = ("momentum", "decay_rate", "beta1", "beta2")


def validate_hyperparameters(user: Mapping[str, float]) -> dict[str, float]:
    """``user`` as floats, or :class:`CheckError` naming the key and value outside the range its rule allows.

    ``lr`` must be > 0: at η = 0 no class moves, so no defect could be seen.
    """
    out = {}
    for name, value in user.items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise CheckError(f"--kwargs {name}={value!r}: not a number") from None
        if not math.isfinite(v):
            raise CheckError(f"--kwargs {name}={value!r}: must be finite")
        if name == "lr" and not v > 0:
            raise CheckError(f"--kwargs lr={value!r}: must be > 0 (at lr = 0 nothing moves, so nothing can be graded)")
        if name == "eps" and v < 0:
            raise CheckError(f"--kwargs eps={value!r}: must be >= 0")
        if name in _RATES and not 0.0 <= v < 1.0:
            raise CheckError(f"--kwargs {name}={value!r}: must be in [0, 1)")
        out[name] = v
    return out


def plan_arguments(rule: str, signature: Mapping, user: Mapping[str, float]) -> tuple[dict, dict, list[Finding]]:
    """``(constructor keywords, reference hyperparameters, notes)`` for a class of ``signature``.

    The book's names with its defaults, overridden by ``user``; ``lr`` and the user's are always passed,
    other book names only when ``__init__`` takes them (else the book's value is assumed, and noted).
    """
    allowed = set(BOOK_DEFAULTS[rule]) | ({"eps"} if rule in ADAPTIVE else set())
    unknown = sorted(set(user) - allowed)
    if unknown:
        raise CheckError(
            f"--kwargs: {', '.join(unknown)} not modelled for {rule}; its arguments: {', '.join(sorted(allowed))}"
        )
    hyper = {**BOOK_DEFAULTS[rule], **{k: float(v) for k, v in user.items()}}
    params = {p["name"]: p for p in signature.get("params", [])}
    takes_all = not signature.get("inspectable", True) or signature.get("var_keyword", False)
    kwargs, notes = {}, []
    for name, value in hyper.items():
        if name == "lr" or name in user or name in params or takes_all:
            kwargs[name] = value
        else:
            notes.append(
                Finding(
                    "hyperparameter-not-accepted",
                    f"__init__ takes no {name!r}: graded as if it were the book's {value!r}",
                    fix=f"def __init__(self, ..., {name}={value!r})",
                )
            )
    for name, book in BOOK_DEFAULTS[rule].items():
        p = params.get(name)
        if p and p.get("has_default") and p.get("default") is not None and p["default"] != book:
            notes.append(
                Finding(
                    "default-differs",
                    f"the default {name}={p['default']!r} differs from the book's "
                    f"{name}={book!r} (graded with {name}={hyper[name]!r}, passed explicitly)",
                )
            )
    return kwargs, hyper, notes


def check_optimizer(
    target: str | Target,
    rule: str | None = None,
    kwargs: Mapping[str, float] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Report:
    """Grade the class ``target`` names (``PATH.py:Class``, ``NOTEBOOK.ipynb:Class``, ``package.module:Class``).

    Raises :class:`CheckError` when it cannot be graded: a bad target or rule, code that does not load,
    no such class, no ``update``, the time limit (``timeout`` seconds for the whole check), a crash.
    """
    if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
        raise CheckError(f"invalid timeout {timeout!r}: must be a finite number of seconds > 0")
    kwargs = validate_hyperparameters(dict(kwargs or {}))  # refused before any code runs
    t = target if isinstance(target, Target) else parse_target(target)
    if rule is not None:
        infer_rule(t.class_name, rule)  # an unknown --rule is refused before any code runs
    with Worker(t, timeout) as worker:
        r = infer_rule(t.class_name, rule)  # after loading: a missing class is named first
        ctor, hyper, notes = plan_arguments(r, worker.info.get("signature", {}), dict(kwargs or {}))
        diagnosis = Diagnosis(worker, r, hyper, ctor)
        found = diagnosis.run()
    report = Report(t.text, r, hyper, findings=found + notes, measured=diagnosis.measured)
    report.findings.sort(key=lambda f: f.severity != "defect")
    return report
