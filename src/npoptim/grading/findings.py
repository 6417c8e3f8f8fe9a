"""What ``npoptim check`` reports: findings (a code, a severity, what was expected, measured and the fix)
and the report that holds them, as plain data for :mod:`npoptim.report.check` to render."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CODES", "Finding", "Report", "FORMULAS", "BOOK_DEFAULTS", "RULES"]

#: code -> (severity, one-line meaning); docs/check.md has the same table
CODES: dict[str, tuple[str, str]] = {
    "constructor-error": ("defect", "the constructor raises, or does not keep the learning rate it was given"),
    "state-missing": ("defect", "update raises on its first or second call (state never created, or only in part)"),
    "not-in-place": ("defect", "a parameter array is replaced by a new object instead of updated in place"),
    "mutates-grads": ("defect", "the caller's gradient arrays are changed"),
    "state-shared-across-keys": ("defect", "several parameters share one state"),
    "step-counted-per-key": ("defect", "the step counter advances per parameter instead of per call"),
    "eps-inside-root": ("defect", "g / sqrt(h + eps) where the rule has g / (sqrt(h) + eps)"),
    "nesterov-updated-velocity": ("defect", "Nesterov moves with the updated velocity"),
    "no-bias-correction": ("defect", "Adam without the bias corrections"),
    "wrong-update": ("defect", "the update differs from the reference beyond rounding"),
    "eps-hat": ("note", "Adam in the eps-hat form: a convention, not a defect"),
    "torch-momentum-form": ("note", "momentum with the learning rate outside the buffer (torch's form)"),
    "default-differs": ("note", "a constructor default differs from the book's"),
    "hyperparameter-not-accepted": ("note", "the constructor takes no argument of the book's name"),
    "own-defaults": ("note", "graded with the class's own defaults (it refused the book's arguments)"),
}

#: The six rules of "Deep Learning from Scratch" section 6.1 that check grades, with the book's defaults.
BOOK_DEFAULTS: dict[str, dict[str, float]] = {
    "sgd": {"lr": 0.01},
    "momentum": {"lr": 0.01, "momentum": 0.9},
    "nesterov": {"lr": 0.01, "momentum": 0.9},
    "adagrad": {"lr": 0.01},
    "rmsprop": {"lr": 0.01, "decay_rate": 0.99},
    "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999},
}
RULES: tuple[str, ...] = tuple(BOOK_DEFAULTS)

#: the reference update of each rule, as the expected side of a finding
FORMULAS: dict[str, str] = {
    "sgd": "w ← w − ηg",
    "momentum": "v ← μv − ηg; w ← w + v",
    "nesterov": "w ← w + μ²v − (1+μ)ηg with the old v; then v ← μv − ηg",
    "adagrad": "h ← h + g²; w ← w − ηg/(√h + ε)",
    "rmsprop": "h ← ρh + (1−ρ)g²; w ← w − ηg/(√h + ε)",
    "adam": "m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; w ← w − η m̂/(√v̂ + ε), m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)",
}


@dataclass
class Finding:
    code: str
    message: str
    expected: str = ""
    measured: str = ""
    fix: str = ""
    probe: str | None = None
    step: int | None = None
    key: str | None = None
    element: list[int] | None = None

    @property
    def severity(self) -> str:
        return CODES[self.code][0]

    def to_dict(self) -> dict[str, Any]:
        d = {"code": self.code, "severity": self.severity}
        d.update({k: v for k, v in asdict(self).items() if k != "code" and v not in (None, "")})
        return d


@dataclass
class Report:
    target: str
    rule: str
    hyperparameters: dict[str, float]
    findings: list[Finding] = field(default_factory=list)
    measured: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return "fail" if any(f.severity == "defect" for f in self.findings) else "pass"

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    @property
    def defects(self) -> list[str]:
        return [f.code for f in self.findings if f.severity == "defect"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "rule": self.rule,
            "target": self.target,
            "hyperparameters": dict(self.hyperparameters),
            "measured": dict(self.measured),
            "findings": [f.to_dict() for f in self.findings],
        }
