"""``npoptim check``'s output: the report (a plain dict, :meth:`npoptim.grading.Report.to_dict`) as text
for a person or as JSON.  Reads the report by its fields; runs nothing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["render_text", "render_json"]


def _hyper(h: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in h.items())


def render_text(report: Mapping[str, Any]) -> str:
    """A verdict line, then each finding: what was expected, what was measured, the fix in one line."""
    findings = list(report.get("findings", []))
    defects = [f for f in findings if f.get("severity") == "defect"]
    notes = [f for f in findings if f.get("severity") != "defect"]
    verdict = "FAIL" if report.get("verdict") == "fail" else "PASS"
    counts = f"{len(defects)} defect{'s' * (len(defects) != 1)}, {len(notes)} note{'s' * (len(notes) != 1)}"
    lines = [
        f"{verdict}  {report.get('target')} graded as {report.get('rule')} "
        f"({_hyper(report.get('hyperparameters', {}))}): {counts}"
    ]
    measured = report.get("measured") or {}
    if "eps" in measured:
        lines.append(f"      measured eps = {measured['eps']:.6g}")
    for f in defects + notes:
        lines.append("")
        lines.append(f"  [{f.get('severity')}] {f.get('code')}: {f.get('message')}")
        for field in ("expected", "measured", "fix"):
            if f.get(field):
                lines.append(f"      {field + ':':10}{f[field]}")
    return "\n".join(lines) + "\n"


def render_json(report: Mapping[str, Any]) -> str:
    """``{"verdict": "pass"|"fail", "rule": ..., "findings": [{"code", "severity", "message", ...}], ...}``."""
    return json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
