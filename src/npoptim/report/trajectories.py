"""The trajectories' outputs: the figures, the GIF, the markdown and ``trajectories.json``, from computed runs.

:func:`write_trajectories` takes what :func:`npoptim.experiments.trajectories.compute_trajectories`
returns (the result dict, the function and the runs) and completes the result with the figures'
files, specs and captions and the markdown, as ``npoptim trajectories`` writes it.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.paths import TUNING_OBJECTIVE
from ..optimizers import display_name

__all__ = ["write_trajectories", "MAX_FRAMES", "SWEEP_PER_DECADE"]

#: Learning rates per decade at which the theory figure measures rates (circles over the curves).
SWEEP_PER_DECADE = 3


def write_trajectories(out_dir: Path, computed: Any) -> dict:
    """Draw ``computed`` (``result``, ``function``, ``given_runs``, ``runs``) into ``out_dir``; return the result.

    Writes the PNG figures (and ``trajectories.gif`` when the run was asked to animate),
    ``trajectories.json`` (the returned dict, JSON-clean: non-finite numbers as null) and ``trajectories.md``.
    """
    result, fn = computed.result, computed.function
    c = result["config"]
    names, x0, steps, tune = c["optimizers"], tuple(c["start"]), c["steps"], c["tune"]
    final_lrs = {name: result["optimizers"][name]["lr"] for name in names}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _draw_all(out_dir, fn, names, x0, steps, c["lrs"], computed.given_runs, final_lrs, computed.runs, tune,
              c["animate"], result)
    result["summary_markdown"] = _summary_markdown(result)
    result["theory_markdown"] = _theory_markdown(result["theory"]) if result["theory"] else ""
    result["caption"] = result["captions"].get("trajectories") or result["captions"].get("theory", "")
    result = _jsonable(result)
    (out_dir / "trajectories.json").write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    (out_dir / "trajectories.md").write_text(_report_markdown(result))
    return result


# --- figures ----------------------------------------------------------------------


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.{digits}g}"


def _point(p: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in p) + ")"


def _panel_aspect(fn: Any) -> float:
    (x0, x1), (y0, y1) = fn.domain[:2]
    return min(max((y1 - y0) / (x1 - x0), 0.35), 1.5)


def _panels(fn, names, x0, steps, lrs, runs, heading) -> tuple[Any, dict]:
    from ..report import plotting

    rows, cols = plotting.panel_layout(len(names))
    pw = 4.0
    ph = pw * _panel_aspect(fn) + 0.55
    figsize = (round(cols * pw + 0.3, 2), round(rows * ph + 0.55, 2))
    fig = plotting.new_figure(figsize)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(names):
            ax.set_visible(False)
            continue
        name, run = names[i], runs[names[i]]
        plotting.draw_contours(ax, fn)
        plotting.draw_path(ax, run.points, color=plotting.optimizer_color(name), label=f"{display_name(name)} path")
        plotting.mark_start(ax, x0)
        plotting.mark_minima(ax, fn.minimizers)
        plotting.set_domain(ax, fn)
        end = "diverged" if run.diverged else f"f − f* = {_fmt(float(run.values[-1] - fn.minimum))}"
        ax.set_title(f"{display_name(name)}, η = {lrs[name]:.3g}\n{end} after {len(run.points) - 1} steps", fontsize=10)
        ax.tick_params(labelsize=8)
        if i == 0:
            ax.legend(loc="lower right", fontsize=7, framealpha=0.85)
    fig.suptitle(f"{heading} — {fn.formula}, start {_point(x0)}, {steps} updates", fontsize=11)
    return fig, {"figsize": list(figsize), "dpi": plotting.DPI}


def _draw_all(out_dir, fn, names, x0, steps, given_lrs, given_runs, final_lrs, runs, tune, animate, result) -> None:
    from ..report import plotting

    figs, specs, caps = result["figures"], result["figure_specs"], result["captions"]
    lr_text = ", ".join(f"{display_name(n)} {given_lrs[n]:g}" for n in names)
    if fn.dim == 2:
        book = fn.name == "anisotropic" and tuple(x0) == (-7.0, 2.0)
        heading = "Given learning rates" + (" (the book's figure)" if book and not tune and steps == 30 else "")
        fig, spec = _panels(fn, names, x0, steps, given_lrs, given_runs, heading)
        plotting.save_figure(fig, out_dir / "trajectories.png")
        figs["trajectories"], specs["trajectories"] = "trajectories.png", spec
        caps["trajectories"] = (
            f"Paths of {len(names)} optimizers on {fn.name} from {_point(x0)}, {steps} updates each, "
            f"learning rates as given ({lr_text}); other hyperparameters at their defaults. "
            "White circle: start; gold star: minimum. Hand-picked rates favour whoever picked them: "
            "see --tune for the same grid and budget for all."
        )
        if tune:
            fig, spec = _panels(fn, names, x0, steps, final_lrs, runs, "Tuned learning rates")
            plotting.save_figure(fig, out_dir / "trajectories_tuned.png")
            figs["trajectories_tuned"], specs["trajectories_tuned"] = "trajectories_tuned.png", spec
            caps["trajectories_tuned"] = (
                f"The same runs with each learning rate tuned on one grid ({_grid_text(result)}); "
                f"objective: {TUNING_OBJECTIVE}."
            )
    if tune:
        fig, spec = _sensitivity_figure(fn, names, x0, steps, given_lrs, result)
        plotting.save_figure(fig, out_dir / "lr_sensitivity.png")
        figs["lr_sensitivity"], specs["lr_sensitivity"] = "lr_sensitivity.png", spec
        edge = [n for n in names if result["tuning"][n]["at_grid_edge"]]
        caps["lr_sensitivity"] = (
            f"Final suboptimality f(x_T) − f* after T = {steps} updates against the learning rate, "
            f"{_grid_text(result)}, the same for every optimizer. Filled dot: tuned lr; triangle: given lr; "
            "x at the top: the run diverged (stopped, or ended above 1000 times the start's suboptimality)."
            + (f" Best lr at the edge of the grid for: {', '.join(edge)} — widen the grid." if edge else "")
        )
    if result["theory"] is not None:
        fig, spec = _theory_figure(fn, names, steps, runs, tune, final_lrs, result["theory"])
        plotting.save_figure(fig, out_dir / "theory.png")
        figs["theory"], specs["theory"] = "theory.png", spec
        th = result["theory"]
        caps["theory"] = (
            f"Left: predicted per-step contraction ρ (spectral radius of the linear iteration; eigenvalues of the "
            f"Hessian in [{th['m']:.3g}, {th['L']:.3g}], κ = {th['kappa']:.3g}) against the learning rate, and the "
            f"rate measured at {SWEEP_PER_DECADE} learning rates per decade over {th['horizon']} updates "
            "(circles); stars: optimal settings. "
            "Right: distance to the minimiser per step of the runs shown; dashed: the smallest C·ρ^k lying above "
            "each run, ρ predicted, for the optimizers theory covers (SGD, Momentum, Nesterov)."
        )
    if animate:
        spec = _animation(out_dir / "trajectories.gif", fn, names, x0, steps, final_lrs, runs)
        figs["animation"], specs["animation"] = "trajectories.gif", spec
        which = "tuned" if tune else "given"
        caps["animation"] = f"All paths moving together ({which} learning rates), one frame per update."


def _grid_text(result: dict) -> str:
    g = result["config"]["lr_grid"]
    return f"{g['points']} log-spaced learning rates from {g['low']:g} to {g['high']:g}"


def _sensitivity_figure(fn, names, x0, steps, given_lrs, result) -> tuple[Any, dict]:
    from ..report import plotting

    figsize = (8.0, 4.8)
    fig = plotting.new_figure(figsize)
    ax = fig.subplots()
    floor = 1e-16
    top = 1e3 * max(float(fn.value(np.asarray(x0))) - fn.minimum, floor * 10)  # shown as "diverged" above this
    for name in names:
        t = result["tuning"][name]
        grid, obj = np.array(t["grid"]), np.array(t["objective"], dtype=float)
        color = plotting.optimizer_color(name)
        ok = np.isfinite(obj) & (obj < top)
        ax.plot(grid[ok], np.maximum(obj[ok], floor), "-", color=color, label=display_name(name), linewidth=1.5)
        if (~ok).any():
            ax.plot(grid[~ok], np.full((~ok).sum(), top), "x", color=color, markersize=6)
        best = t["best_lr"]
        ax.plot([best], [max(t["best_objective"], floor)], "o", color=color, markersize=8, markeredgecolor="black")
        i = int(np.argmin(np.abs(np.log(grid) - math.log(given_lrs[name]))))
        gv = obj[i] if np.isfinite(obj[i]) else top
        ax.plot([given_lrs[name]], [max(gv, floor)], "v", color=color, markersize=8, markeredgecolor="black")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate η")
    ax.set_ylabel(f"f(x_T) − f*,  T = {steps}")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, ncols=2, loc="best")
    ax.set_title(
        f"Learning-rate sensitivity on {fn.name} from {_point(x0)}\n"
        f"{_grid_text(result)}; ● tuned, ▼ given, × diverged",
        fontsize=10,
    )
    return fig, {"figsize": list(figsize), "dpi": plotting.DPI}


def _theory_figure(fn, names, steps, runs, tune, lrs, th) -> tuple[Any, dict]:
    from ..engine.theory import METHODS
    from ..report import plotting

    method_color = {"gd": plotting.optimizer_color("sgd"), "heavy_ball": plotting.optimizer_color("momentum"),
                    "nesterov": plotting.optimizer_color("nesterov")}
    figsize = (12.0, 4.8)
    fig = plotting.new_figure(figsize)
    left, right = fig.subplots(1, 2)
    from matplotlib.lines import Line2D

    for method, c in th["curves"].items():
        color = method_color[method]
        left.plot(c["lr"], c["predicted_rate"], "-", color=color, linewidth=1.6)
        meas = np.array([np.nan if v is None else v for v in c["measured_rate"]], dtype=float)
        left.plot(c["measured_lr"], meas, "o", color=color, markerfacecolor="none", markersize=5)
        o = th["optimal"][method]
        left.plot([o["lr"]], [o["rate"]], "*", color=color, markersize=14, markeredgecolor="black")
        note = f"η*={o['lr']:.2g}" + ("" if method == "gd" else f", μ*={o['momentum']:.2f}")
        left.annotate(note, (o["lr"], o["rate"]), textcoords="offset points", xytext=(-8, -4), ha="right",
                      va="top", fontsize=7, color=color)
    handles = [Line2D([], [], color=method_color[mth], linewidth=2,
                      label=METHODS[mth] + ("" if mth == "gd" else f", μ = {c['momentum']:g}"))
               for mth, c in th["curves"].items()]
    handles += [Line2D([], [], color="0.3", label="theory ρ(η)"),
                Line2D([], [], color="0.3", marker="o", markerfacecolor="none", linestyle="none",
                       label=f"measured ({th['horizon']} updates)"),
                Line2D([], [], color="0.3", marker="*", markersize=11, markerfacecolor="0.6", linestyle="none",
                       label="optimal (η*, μ*)")]
    left.axhline(1.0, color="0.4", linestyle="--", linewidth=1)
    left.text(th["curves"]["gd"]["lr"][0], 1.02, " ρ = 1: no convergence",
              fontsize=8, color="0.3", va="bottom")
    left.set_xscale("log")
    left.set_ylim(0.0, 1.25)
    left.set_xlabel("learning rate η")
    left.set_ylabel("per-step contraction ρ")
    left.set_title(f"Spectral radius vs measured rate, κ = {th['kappa']:.3g}", fontsize=10)
    left.legend(handles=handles, fontsize=7, loc="lower left")
    left.grid(True, alpha=0.3)

    rows = {r["optimizer"]: r for r in th["rows"] if r["setting"] == ("tuned" if tune else "given")}
    minimizer = np.asarray(fn.minimizers[0], dtype=float)
    for name in names:
        run, color = runs[name], plotting.optimizer_color(name)
        d = np.linalg.norm(run.points - minimizer, axis=-1)
        k = np.arange(len(d))
        right.plot(k, np.maximum(d, 1e-300), "-", color=color, label=f"{display_name(name)}, η = {lrs[name]:.3g}")
        pred = rows.get(name, {}).get("predicted_rate")
        if pred is not None and pred > 0 and len(d) > 1:
            envelope = np.max(d / pred**k) * pred**k  # the smallest C rho^k above the path
            right.plot(k, envelope, "--", color=color, linewidth=1, alpha=0.8)
    right.set_yscale("log")
    right.set_xlabel("step k")
    right.set_ylabel("distance to minimiser ‖x_k − x*‖")
    which = "tuned" if tune else "given"
    right.set_title(f"Measured paths ({which} lrs); dashed: smallest C·ρ^k above it", fontsize=10)
    right.legend(fontsize=7, loc="best")
    right.grid(True, alpha=0.3)
    fig.suptitle(f"Theory beside measurement on {fn.name}", fontsize=11)
    return fig, {"figsize": list(figsize), "dpi": plotting.DPI}


#: At most this many frames in the GIF (longer runs are subsampled evenly, first and last step kept).
MAX_FRAMES = 61


def _animation(path: Path, fn, names, x0, steps, lrs, runs) -> dict:
    from matplotlib.animation import FuncAnimation, PillowWriter

    from ..report import plotting

    dpi = 72
    width = 6.4
    figsize = (width, round(width * _panel_aspect(fn) + 0.9, 2))
    fig = plotting.new_figure(figsize, dpi=dpi)
    ax = fig.subplots()
    # contour lines only (no fill): few colours, so the GIF stays small
    X, Y, Z = plotting.contour_grid(fn, n=160)  # noqa: N806
    ax.contour(X, Y, Z, levels=plotting.contour_levels(Z, fn.minimum), colors="0.6", linewidths=0.6)
    plotting.mark_start(ax, x0)
    plotting.mark_minima(ax, fn.minimizers)
    plotting.set_domain(ax, fn)
    lines = {}
    for name in names:
        (lines[name],) = ax.plot([], [], "-o", color=plotting.optimizer_color(name), markersize=2.5, linewidth=1.3,
                                 label=f"{display_name(name)} η={lrs[name]:.3g}")
    ax.legend(loc="lower right", fontsize=7, ncols=2, framealpha=0.85)
    title = ax.set_title("", fontsize=10)
    frames = np.unique(np.linspace(0, steps, min(steps + 1, MAX_FRAMES)).round().astype(int)).tolist()

    def frame(k: int) -> list:
        for name in names:
            pts = runs[name].points[: k + 1]
            lines[name].set_data(pts[:, 0], pts[:, 1])
        title.set_text(f"{fn.name}: step {k} of {steps}")
        return [*lines.values(), title]

    anim = FuncAnimation(fig, frame, frames=frames, blit=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    anim.save(path, writer=PillowWriter(fps=6), dpi=dpi)
    return {"figsize": list(figsize), "dpi": dpi, "frames": len(frames), "frame_steps": frames}


# --- text ------------------------------------------------------------------------


def _summary_markdown(result: dict) -> str:
    th = result["theory"]
    pred, meas = {}, {}
    if th:  # rates over the theory horizon, not the (possibly short) run drawn
        setting = "tuned" if result["config"]["tune"] else "given"
        pred = {r["optimizer"]: r["predicted_rate"] for r in th["rows"] if r["setting"] == setting}
        meas = {r["optimizer"]: r["measured_rate"] for r in th["rows"] if r["setting"] == setting}
    lines = [
        "| optimizer | lr | final point | f − f* | distance to minimum | steps to tol "
        "| measured rate | predicted rate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, o in result["optimizers"].items():
        final = "diverged" if o["stopped"] else _point([float(f"{v:.4g}") for v in o["final_point"][:4]]) + (
            " …" if len(o["final_point"]) > 4 else "")
        lines.append(
            f"| {o['display_name']} | {o['lr']:.3g} ({o['lr_source']}) | {final} | {_fmt(o['suboptimality'])} | "
            f"{_fmt(o['distance_to_minimum'])} | {o['steps_to_tol'] if o['steps_to_tol'] is not None else '—'} | "
            f"{_fmt(meas.get(name, o['measured_rate']), 4)} | {_fmt(pred.get(name), 4)} |"
        )
    note = f"over {th['horizon']} updates (see the theory table)" if th else "over the run shown"
    lines.append(f"\nMeasured rate: per-step contraction of the distance to the minimiser, {note}.")
    return "\n".join(lines)


def _theory_markdown(th: dict) -> str:
    from ..engine.theory import METHODS

    lines = [
        f"Hessian eigenvalues in [{th['m']:.4g}, {th['L']:.4g}], condition number κ = {th['kappa']:.4g}.",
        "",
        "| run | method | η | μ | predicted ρ | measured ρ |",
        "|---|---|---|---|---|---|",
    ]
    for r in th["rows"]:
        lines.append(
            f"| {display_name(r['optimizer'])} ({r['setting']}) | {METHODS.get(r['method'], '— (no linear theory)')} "
            f"| {r['lr']:.4g} | {_fmt(r['momentum'], 4) if r['method'] else '—'} "
            f"| {_fmt(r['predicted_rate'], 4)} | {_fmt(r['measured_rate'], 4)} |"
        )
    for method, o in th["optimal"].items():
        lines.append(
            f"| optimal | {METHODS[method]} | {o['lr']:.4g} | {o['momentum']:.4g} | {o['predicted_rate']:.4g} | "
            f"{_fmt(o['measured_rate'], 4)} |"
        )
    lines += ["", f"Measured ρ: {th['measured_rate_definition']}."]
    return "\n".join(lines)


def _report_markdown(result: dict) -> str:
    c = result["config"]
    parts = [
        f"# Trajectories on {c['function']}",
        "",
        f"Start {_point(c['start'])}, {c['steps']} updates per optimizer"
        + (f"; learning rates tuned: {c['tuning_objective']}." if c["tune"] else "."),
        "",
    ]
    for key, file in result["figures"].items():
        if file.endswith(".png") or file.endswith(".gif"):
            parts += [f"![{key}]({file})", "", result["captions"].get(key, ""), ""]
    parts += ["## Results", "", result["summary_markdown"], ""]
    if result["theory_markdown"]:
        parts += ["## Theory beside measurement", "", result["theory_markdown"], ""]
    return "\n".join(parts)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        x = float(x)
        return x if math.isfinite(x) else None
    return x
