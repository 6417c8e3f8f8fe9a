"""Tables, figures, ``results.json`` and ``report.md`` of a sweep, rendered from its summary only."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..optimizers import display_name
from .profiles import performance_profile

__all__ = ["write_report", "problem_table", "profile_table", "lr_range_table", "edge_warnings", "slug"]


def slug(name: str) -> str:
    """A file-name-safe form of a problem name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "∞ / diverged" if x is None else format(x, spec)


def problem_table(summary: dict[str, Any], problem: str) -> str:
    """Markdown table of one problem: best setting, tuning score, rerun final mean ± std, steps to target."""
    spec = summary["spec"]
    prob = summary["problems"][problem]
    metric = "training loss" if problem in ("digits", "mnist") else "f(x) − f*"
    training = problem in ("digits", "mnist")
    acc_head = " held-out accuracy (seeds that did not diverge) |" if training else ""
    lines = [
        f"| optimizer | best hyperparameters | tuning score | final {metric}, mean ± std | diverged | "
        f"steps to target |{acc_head}",
        "|---|---|---|---|---|---|" + ("---|" if training else ""),
    ]
    for o, row in prob["optimizers"].items():
        hp = ", ".join(f"{k}={v:.3g}" for k, v in row["best"].items())
        if row["reruns"] == 0:
            final = "not run"
        elif row["final_mean"] is None:
            final = "∞ (a seed diverged)"
        else:
            final = f"{row['final_mean']:.4g} ± {row['final_std']:.2g}"
        n = f"{row['reruns']}/{spec['seeds']}" + (f" ({row['rerun_failed']} failed)" if row["rerun_failed"] else "")
        steps = "—" if row["steps_to_target"] is None else f"{row['steps_to_target']:.0f}"
        acc = ""
        if training:
            acc = (f" {row['held_out_accuracy_mean']:.4f} ± {row['held_out_accuracy_std']:.4f} |"
                   if "held_out_accuracy_mean" in row else " — |")
        lines.append(f"| {display_name(o)} | {hp} | {_fmt(row['tuning_score'])} | {final} ({n} seeds) | "
                     f"{row['diverged']} | {steps} |{acc}")
    return "\n".join(lines)


def profile_table(summary: dict[str, Any]) -> str:
    prof = summary["profile"]
    head = "| optimizer | " + " | ".join(f"ρ(τ={t:g})" for t in prof["taus"]) + " |"
    lines = [head, "|---|" + "---|" * len(prof["taus"])]
    rho = np.array(prof["rho"])
    for j, o in enumerate(prof["solvers"]):
        lines.append(f"| {display_name(o)} | " + " | ".join(f"{v:.2f}" for v in rho[:, j]) + " |")
    return "\n".join(lines)


def _range(r: list[float]) -> str:
    return f"[{r[0]:g}, {r[1]:g}]"


def lr_range_table(summary: dict[str, Any]) -> str:
    """Markdown table: each optimizer's lr range, where it comes from, and the problems whose best lr is at
    one of its ends."""
    lines = ["| optimizer | lr range | from | best lr at an end of the range |", "|---|---|---|---|"]
    for o, info in summary["lr_ranges"].items():
        edges = [f"{p} ({row['lr_at_edge']})" for p, prob in summary["problems"].items()
                 for name, row in prob["optimizers"].items() if name == o and row.get("lr_at_edge")]
        lines.append(f"| {display_name(o)} | {_range(info['range'])} | {info['source']} | "
                     f"{', '.join(edges) if edges else '—'} |")
    return "\n".join(lines)


def edge_warnings(summary: dict[str, Any], problem: str) -> list[str]:
    """One line per optimizer whose best lr on ``problem`` is the lowest or highest it tried."""
    out = []
    more = " (random search: or more settings, --budget)" if summary["spec"]["search"] == "random" else ""
    for o, row in summary["problems"][problem]["optimizers"].items():
        edge = row.get("lr_at_edge")
        if not edge:
            continue
        lo, hi = row["lr_range"]
        wider = f"{lo / 10:g}:{hi:g}" if edge == "low" else f"{lo:g}:{hi * 10:g}"
        word, side = ("lowest", "below") if edge == "low" else ("highest", "above")
        out.append(f"- **{display_name(o)}: best lr {row['best']['lr']:.3g} is the {word} tried** (range "
                   f"{_range(row['lr_range'])}); the optimum may lie {side} it: widen the range, e.g. "
                   f"`--lr-range {o}={wider}`{more}.")
    return out


def _arr(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _plot_curves(ax: Any, summary: dict[str, Any], problem: str) -> None:
    for o, row in summary["problems"][problem]["optimizers"].items():
        c = row.get("curve")
        if not c:
            continue
        x, m, s = np.array(c["steps"]), _arr(c["mean"]), _arr(c["std"])
        (line,) = ax.plot(x, m, label=display_name(o))
        lo = np.where(m - s > 0, m - s, m * 1e-3)
        ax.fill_between(x, lo, m + s, color=line.get_color(), alpha=0.2, linewidth=0)
    target = summary["problems"][problem]["target"]
    if target is not None and target > 0:
        ax.axhline(target, color="0.4", linestyle=":", linewidth=1, label="profile target")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss" if problem in ("digits", "mnist") else "f(x) − f*")
    ax.set_title(f"{problem}: mean ± std over {summary['spec']['seeds']} seeds (best setting)")
    ax.legend(fontsize=8)


def _plot_sensitivity(ax: Any, summary: dict[str, Any], problem: str) -> None:
    sens = summary["problems"][problem]["sensitivity"]
    finite = [s["score"] for pts in sens.values() for s in pts if s["score"] is not None and s["score"] > 0]
    top = max(finite) * 10 if finite else 1.0
    for o, pts in sens.items():
        lr = np.array([p["hyperparameters"]["lr"] for p in pts])
        sc = _arr([p["score"] for p in pts])
        order = np.argsort(lr)
        lr, sc = lr[order], sc[order]
        ok = np.isfinite(sc)
        # a line only where lr is the sole tuned value; otherwise neighbours differ in other hyperparameters too
        lr_only = all(set(p["hyperparameters"]) == {"lr"} for p in pts)
        style = "o-" if lr_only else "o"
        (line,) = ax.plot(lr[ok], np.maximum(sc[ok], 1e-300), style, markersize=3 if lr_only else 4,
                          linewidth=0.8, label=display_name(o) + ("" if lr_only else " (other values vary)"))
        if (~ok).any():
            ax.plot(lr[~ok], np.full((~ok).sum(), top), "x", color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("tuning score (final metric; × = diverged)")
    ax.set_title(f"{problem}: lr sensitivity ({summary['spec']['search']} search, "
                 f"{summary['spec']['budget']} settings each)")
    ax.legend(fontsize=8)


def _plot_profile(ax: Any, summary: dict[str, Any]) -> None:
    prof = summary["profile"]
    costs = np.array([[math.inf if v is None else v for v in row] for row in prof["costs"]])
    finite = costs[np.isfinite(costs)]
    best = costs.min(axis=1)
    with np.errstate(invalid="ignore"):
        ratios = (costs / best[:, None])[np.isfinite(costs)] if finite.size else np.array([1.0])
    tau_max = max(2.0, float(np.max(ratios)) * 1.5)
    taus = np.geomspace(1.0, tau_max, 400)
    rho = performance_profile(costs, taus)
    for j, o in enumerate(prof["solvers"]):
        ax.step(taus, rho[:, j], where="post", label=display_name(o))
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("τ (within this factor of the best)")
    ax.set_ylabel("fraction of problems")
    ax.set_title(f"performance profiles over {len(prof['problems'])} problems (Dolan & Moré 2002)")
    ax.legend(fontsize=8)


def write_report(summary: dict[str, Any], out: str | Path, *, store_path: str | None = None) -> list[Path]:
    """Write ``results.json``, ``report.md`` and the PNG figures into ``out``; return the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    spec = summary["spec"]

    (out / "results.json").write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    written.append(out / "results.json")

    md = ["# Optimizer sweep", ""]
    md.append(
        f"{len(spec['optimizers'])} optimizers × {len(spec['problems'])} problems; {spec['search']} search of "
        f"{spec['budget']} settings per optimizer (lr log-uniform in each optimizer's range, below; "
        f"space `{spec['space']}`), {spec['steps']} steps per run, "
        f"{spec['tune_seeds']} tuning seed(s); the best setting rerun with {spec['seeds']} fresh seeds. "
        f"npoptim {spec['npoptim_version']}"
        + (f" (code {spec['npoptim_code']})." if spec.get("npoptim_code") else ".")
    )
    runs = summary["runs"]
    md.append("")
    md.append(f"Runs stored: {runs['stored']} of {runs['tuning'] + runs['rerun']} ({runs['failed']} failed)"
              + ("" if summary["complete"] else " — **incomplete sweep: numbers below use what is stored**")
              + (f"; store `{store_path}`." if store_path else "."))
    md += ["", "## Learning-rate ranges", "",
           "The lr of each optimizer is drawn from its own range (its meaning differs: Prodigy's multiplies "
           "its own step estimate, Adafactor's caps a relative step). An end marked below means the best "
           "setting's lr was the lowest (low) or highest (high) the optimizer tried on that problem: the range "
           "may be too narrow there.", "", lr_range_table(summary)]
    for p in spec["problems"]:
        s = slug(p)
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
        _plot_curves(axes[0], summary, p)
        _plot_sensitivity(axes[1], summary, p)
        fig.tight_layout()
        path = out / f"sweep_{s}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
        md += ["", f"## {p}", "", problem_table(summary, p)]
        warn = edge_warnings(summary, p)
        if warn:
            md += ["", "Best lr at an end of its range:", "", *warn]
        md += ["", f"![{p}]({path.name})"]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    _plot_profile(ax, summary)
    fig.tight_layout()
    path = out / "performance_profile.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    md += ["", "## Performance profiles", "", f"Cost: {summary['profile']['measure']}; ρ(τ) is the fraction of "
           "problems an optimizer solves within τ times the fewest steps of any optimizer.", "",
           profile_table(summary), "", f"![profiles]({path.name})", ""]
    (out / "report.md").write_text("\n".join(md))
    written.append(out / "report.md")
    return written
