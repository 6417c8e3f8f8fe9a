"""``npoptim schedule``'s outputs: the schedules drawn over N updates, their table, ``results.json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_schedules"]


def write_schedules(out: Path, schedules: Sequence[tuple[str, Any]], steps: int, *, log: bool = False) -> list[dict]:
    """Draw ``(spec, schedule)`` pairs over ``steps`` updates into ``out``: ``schedules.png``, ``results.json``
    and ``report.md``; return the per-schedule rows of ``results.json``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out.mkdir(parents=True, exist_ok=True)

    fig = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    results = []
    for spec, sched in schedules:
        values = sched.values(steps)
        ax.plot(range(steps), values, drawstyle="steps-post", label=spec if len(spec) <= 70 else spec[:67] + "...")
        results.append(
            {
                "spec": spec,
                "schedule": sched.to_dict(),
                "first": float(values[0]),
                "last": float(values[-1]),
                "min": float(values.min()),
                "max": float(values.max()),
                "argmax": int(values.argmax()),
            }
        )
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("t (updates already applied)")
    ax.set_ylabel("learning rate")
    ax.set_title(f"Learning-rate schedules over {steps} updates")
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", fontsize="small")
    fig.savefig(out / "schedules.png")

    (out / "results.json").write_text(json.dumps({"steps": steps, "schedules": results}, indent=2) + "\n")
    lines = [
        "# Learning-rate schedules",
        "",
        f"{steps} updates; `t` is the number of updates already applied (the rate of update t + 1).",
        "",
        "![schedules](schedules.png)",
        "",
        "| schedule | first | last | min | max | argmax t |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| `{r['spec']}` | {r['first']:.6g} | {r['last']:.6g} | {r['min']:.6g} | {r['max']:.6g} | {r['argmax']} |"
        )
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return results
