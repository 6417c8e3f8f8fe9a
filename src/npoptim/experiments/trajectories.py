r"""``npoptim trajectories``: optimizer paths on test functions, fair tuning, theory beside measurement.

The default run draws the picture of Saito, *Deep Learning from Scratch*
(2016), section 6.1: :math:`f(x, y) = x^2/20 + y^2` from :math:`(-7, 2)`, 30
updates, SGD :math:`\eta = 0.95`, Momentum 0.1, AdaGrad 1.5, Adam 0.3, plus
Nesterov (0.1) and RMSprop (0.1).  Every optimizer runs through the public
API, ``params = {"xy": x}``, ``opt.update(params, {"xy": grad})``, with its
default hyperparameters other than the learning rate.

``--tune`` gives every optimizer its learning rate from the same log-spaced
grid, with the same budget (``steps`` updates from the same start) and the
same objective, the final suboptimality :math:`f(x_T) - f^*`; a run that
stops on a non-finite iterate scores :math:`+\infty`; ties go to the smaller
rate.  For quadratics (a constant Hessian: ``anisotropic``, ``booth``,
``quadratic``) the measured per-step contraction is set beside the spectral
radius that :mod:`npoptim.experiments.theory` predicts.

Library use::

    from npoptim.experiments.trajectories import run_trajectories
    result = run_trajectories(Path("out"), function="rosenbrock", tune=True)
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.paths import TUNING_OBJECTIVE, Run, lr_grid, run_path, tune_lr
from ..engine.paths import positive as _positive

HELP = "paths of optimizers on 2-D test functions (the book's figure), fair lr tuning, theory vs measurement"

#: Learning rates of the book's figure (SGD, Momentum, AdaGrad, Adam), plus our
#: choices for Nesterov (0.1, as Momentum, so the two differ only in the
#: look-ahead) and RMSprop (0.1: with decay 0.99 and h_0 = 0 its first step is
#: 10 eta sign(g) = (1, -1) from (-7, 2), its steps then shrink towards eta
#: sign(g) as h warms up; at 0.1 these sign-like, axis-aligned steps are
#: visible and it ends about where Momentum and Nesterov do, f - f* ~ 0.02).
BOOK_LRS: dict[str, float] = {
    "sgd": 0.95,
    "momentum": 0.1,
    "nesterov": 0.1,
    "adagrad": 1.5,
    "rmsprop": 0.1,
    "adam": 0.3,
}

#: Where the CLI writes unless ``--out`` is given (relative to the working directory).
DEFAULT_OUT = Path("npoptim-out") / "trajectories"

#: The tuning grid: ``(lowest lr, highest lr, number of log-spaced points)``, 5 per decade.
DEFAULT_LR_GRID: tuple[float, float, int] = (1e-3, 10.0, 21)

#: Default tolerance for ``steps_to_tol``: the first step whose distance to the nearest minimiser is <= tol.
DEFAULT_TOL = 1e-3

#: Rates are asymptotic: theory rows are measured over max(steps, this) updates by default.
THEORY_STEPS = 300

#: Learning rates per decade at which the theory figure measures rates (circles over the curves).
_SWEEP_PER_DECADE = 3

__all__ = [
    "HELP",
    "BOOK_LRS",
    "DEFAULT_OUT",
    "DEFAULT_LR_GRID",
    "TUNING_OBJECTIVE",
    "Run",
    "run_path",
    "default_lr",
    "lr_grid",
    "run_trajectories",
    "add_arguments",
    "run",
]


def default_lr(name: str) -> float:
    """The book's learning rate for ``name`` (:data:`BOOK_LRS`), else the optimizer's own default ``lr``."""
    from ..optimizers import get_optimizer

    key = name.lower()
    if key in BOOK_LRS:
        return BOOK_LRS[key]
    cls = get_optimizer(key)
    param = inspect.signature(cls).parameters.get("lr")
    if param is None or param.default is inspect.Parameter.empty:
        raise ValueError(f"optimizer {name!r} has no default 'lr'; give one with lrs={{{name!r}: ...}}")
    return float(param.default)


def _resolve_optimizers(optimizers: Sequence[str] | str | None) -> list[str]:
    from ..optimizers import select_optimizers

    return select_optimizers(optimizers)


def _resolve_lrs(names: list[str], lrs: Mapping[str, float] | None) -> tuple[dict[str, float], dict[str, str]]:
    from ..optimizers import get_optimizer

    given = {}
    for key, value in (lrs or {}).items():
        get_optimizer(key)
        if key.lower() not in names:
            raise ValueError(
                f"a learning rate is given for {key!r}, which is not among the optimizers run: {', '.join(names)}"
            )
        given[key.lower()] = _positive(f"learning rate for {key!r}", value)
    out, source = {}, {}
    for name in names:
        if name in given:
            out[name], source[name] = given[name], "given"
        else:
            out[name] = default_lr(name)
            source[name] = "book" if name in BOOK_LRS else "optimizer default"
    return out, source


def _resolve_start(fn: Any, start: Sequence[float] | None) -> tuple[float, ...]:
    if start is None:
        return tuple(float(v) for v in fn.start)
    values = tuple(start)
    if len(values) != fn.dim:
        raise ValueError(
            f"start has {len(values)} coordinate(s) {values!r} but function {fn.name!r} is {fn.dim}-dimensional"
        )
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"invalid start coordinate {v!r} in {values!r}: must be a finite number")
    return tuple(float(v) for v in values)


def _resolve_steps(steps: Any, what: str = "steps") -> int:
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or not 1 <= steps <= 1_000_000:
        raise ValueError(f"invalid {what}={steps!r}: must be an integer from 1 to 1000000")
    return int(steps)


# --- the experiment ----------------------------------------------------------------


def _make(name: str, lr: float) -> Any:
    from ..optimizers import create_optimizer

    return create_optimizer(name, lr=lr)


def _display(name: str) -> str:
    from ..optimizers import get_optimizer

    return get_optimizer(name).__name__


def _summary(fn: Any, run: Run, tol: float) -> dict[str, Any]:
    dist = fn.distance_to_minimum(run.points)
    hit = np.flatnonzero(dist <= tol)
    from ..engine.theory import measured_rate

    return {
        "path": run.points.tolist(),
        "values": run.values.tolist(),
        "final_point": run.points[-1].tolist(),
        "final_value": float(run.values[-1]),
        "suboptimality": float(run.values[-1] - fn.minimum),
        "distance_to_minimum": float(dist[-1]),
        "nearest_minimizer": fn.nearest_minimizer(run.points[-1]).tolist(),
        "steps_to_tol": int(hit[0]) if hit.size else None,
        "steps_done": len(run.points) - 1,
        "stopped": run.stopped,
        "diverged": run.diverged,
        "measured_rate": measured_rate(dist),
    }


def run_trajectories(
    out_dir: Path,
    *,
    function: str = "anisotropic",
    optimizers: Sequence[str] | None = None,
    lrs: Mapping[str, float] | None = None,
    start: tuple[float, ...] | None = None,
    steps: int = 30,
    tune: bool = False,
    animate: bool = False,
    progress: bool = False,
    grid: tuple[float, float, int] = DEFAULT_LR_GRID,
    tol: float = DEFAULT_TOL,
    theory_steps: int = THEORY_STEPS,
) -> dict:
    """Run the optimizers on ``function``, draw the figures into ``out_dir``, return (and save) every number.

    Parameters
    ----------
    out_dir : Path
        Created if missing; receives the figures, ``trajectories.json`` (the
        returned dict) and ``trajectories.md`` (a report with the figures and tables).
    function : str
        A spec for :func:`npoptim.functions.get_function`, e.g. ``"rosenbrock"``
        or ``"quadratic:kappa=100,dim=10"``.
    optimizers : names from :data:`npoptim.OPTIMIZERS`, or ``"all"``; default the book's six
        (:data:`npoptim.BOOK_OPTIMIZERS`).
    lrs : learning rate per optimizer; the others get :func:`default_lr`.
    start : the start point, default the function's.
    steps : number of updates, the budget of every run.
    tune : also pick each optimizer's lr from ``grid`` (:data:`TUNING_OBJECTIVE`).
    animate : also write ``trajectories.gif`` (2-D functions only).
    progress : show a tqdm progress bar on stderr while tuning.
    grid : ``(low, high, points)`` of the log-spaced tuning grid.
    tol : distance to the nearest minimiser that counts as arrived, for ``steps_to_tol``.
    theory_steps : quadratics only: rates are measured over ``max(steps, theory_steps)`` updates.

    Returns
    -------
    dict
        JSON-serialisable: ``config``, ``figures`` (name -> file in ``out_dir``),
        ``figure_specs`` (figsize, dpi), ``captions``, ``caption``,
        ``optimizers`` (name -> lr, path, final point and value, distance,
        steps to tol, measured rate, and the untuned run under ``"given"`` when tuning),
        ``tuning`` (when tuned), ``theory`` (quadratics; else ``None``),
        ``summary_markdown`` and ``theory_markdown``.
    """
    from .. import __version__
    from ..problems.functions import get_function

    fn = get_function(function)
    names = _resolve_optimizers(optimizers)
    given_lrs, lr_source = _resolve_lrs(names, lrs)
    x0 = _resolve_start(fn, start)
    steps = _resolve_steps(steps)
    tol = _positive("tol", tol)
    theory_steps = _resolve_steps(theory_steps, "theory_steps")
    lo, hi, npts = grid
    lr_values = lr_grid(lo, hi, npts)
    if animate and fn.dim != 2:
        raise ValueError(f"--animate draws 2-D paths, but function {fn.name!r} is {fn.dim}-dimensional")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    given_runs = {name: run_path(fn, _make(name, given_lrs[name]), x0, steps) for name in names}
    hyper = {name: _make(name, given_lrs[name]).hyperparameters for name in names}

    tuning: dict[str, Any] | None = None
    final_lrs = dict(given_lrs)
    if tune:
        tuning = _tune(fn, names, x0, steps, lr_values, progress)
        final_lrs = {name: tuning[name]["best_lr"] for name in names}
    runs = {n: (run_path(fn, _make(n, final_lrs[n]), x0, steps) if tune else given_runs[n]) for n in names}

    result: dict[str, Any] = {
        "config": {
            "function": fn.name,
            "formula": fn.formula,
            "dim": fn.dim,
            "optimizers": names,
            "lrs": given_lrs,
            "lr_source": lr_source,
            "hyperparameters": hyper,
            "start": list(x0),
            "steps": steps,
            "tune": bool(tune),
            "lr_grid": {"low": float(lo), "high": float(hi), "points": int(npts), "spacing": "log"},
            "tuning_objective": TUNING_OBJECTIVE,
            "tol": tol,
            "theory_steps": theory_steps,
            "animate": bool(animate),
            "npoptim_version": __version__,
        },
        "function": {
            "name": fn.name,
            "minimizers": [list(m) for m in fn.minimizers],
            "minimum": fn.minimum,
            "domain": [list(d) for d in fn.domain],
        },
        "optimizers": {},
        "tuning": tuning,
        "theory": None,
        "figures": {},
        "figure_specs": {},
        "captions": {},
    }
    for name in names:
        entry = {"display_name": _display(name), "lr": final_lrs[name],
                 "lr_source": "tuned" if tune else lr_source[name]}
        entry.update(_summary(fn, runs[name], tol))
        if tune:
            entry["given"] = {"lr": given_lrs[name], **_summary(fn, given_runs[name], tol)}
        result["optimizers"][name] = entry

    if fn.hessian is not None:
        tuned = final_lrs if tune else None
        result["theory"] = _theory(fn, names, x0, steps, given_lrs, tuned, lr_values, theory_steps)

    _draw_all(out_dir, fn, names, x0, steps, given_lrs, given_runs, final_lrs, runs, tune, animate, result)
    result["summary_markdown"] = _summary_markdown(result)
    result["theory_markdown"] = _theory_markdown(result["theory"]) if result["theory"] else ""
    result["caption"] = result["captions"].get("trajectories") or result["captions"].get("theory", "")
    result = _jsonable(result)
    (out_dir / "trajectories.json").write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    (out_dir / "trajectories.md").write_text(_report_markdown(result))
    return result


def _tune(fn: Any, names: list[str], x0: tuple[float, ...], steps: int, grid: np.ndarray, progress: bool) -> dict:
    from tqdm.auto import tqdm

    with tqdm(total=len(names) * len(grid), desc="tuning lr", disable=not progress, leave=False) as bar:
        return {name: tune_lr(fn, lambda lr, name=name: _make(name, lr), x0, steps, grid,
                              on_point=lambda: bar.update(1)) for name in names}


def _theory(fn, names, x0, steps, given_lrs, tuned_lrs, grid, theory_steps) -> dict:
    from ..engine.theory import METHODS, measured_rate, method_of, optimal_settings, spectral_radius
    from ..optimizers import SGD, Momentum, Nesterov

    eig = np.linalg.eigvalsh(fn.hessian)
    m, L = float(eig.min()), float(eig.max())  # noqa: N806
    minimizer = np.asarray(fn.minimizers[0], dtype=float)
    horizon = max(steps, theory_steps)

    def rate(opt: Any) -> float | None:
        run = run_path(fn, opt, x0, horizon)
        return measured_rate(np.linalg.norm(run.points - minimizer, axis=-1))

    rows = []
    settings = [("given", given_lrs)] + ([("tuned", tuned_lrs)] if tuned_lrs else [])
    for label, lrs_ in settings:
        for name in names:
            opt = _make(name, lrs_[name])
            method = method_of(opt)
            mom = float(getattr(opt, "momentum", 0.0)) if method in ("heavy_ball", "nesterov") else 0.0
            pred = float(spectral_radius(method, eig, lrs_[name], mom)) if method else None
            rows.append({
                "optimizer": name, "setting": label, "method": method, "lr": lrs_[name],
                "momentum": mom if method else None, "predicted_rate": pred, "measured_rate": rate(opt),
            })
    classes = {"gd": SGD, "heavy_ball": Momentum, "nesterov": Nesterov}
    optimal = {}
    for method in METHODS:
        s = optimal_settings(method, m, L)
        opt = classes[method](lr=s["lr"]) if method == "gd" else classes[method](lr=s["lr"], momentum=s["momentum"])
        optimal[method] = {**s, "predicted_rate": s["rate"], "measured_rate": rate(opt)}
    # Curves: rho(eta) for each method at the momentum the run used (its class default if not run),
    # and the rate measured at each grid lr.
    curve_lrs = np.geomspace(grid[0], grid[-1], 300)
    decades = math.log10(grid[-1] / grid[0])
    sweep_lrs = np.geomspace(grid[0], grid[-1], max(2, round(decades * _SWEEP_PER_DECADE) + 1))
    curves = {}
    for method, cls in classes.items():
        run_name = next((n for n in names if type(_make(n, 0.1)) is cls), None)
        mom = 0.0 if method == "gd" else float((_make(run_name, 0.1) if run_name else cls()).momentum)
        sweep = [rate(cls(lr=float(lr)) if method == "gd" else cls(lr=float(lr), momentum=mom)) for lr in sweep_lrs]
        curves[method] = {
            "momentum": mom,
            "lr": curve_lrs.tolist(),
            "predicted_rate": spectral_radius(method, eig, curve_lrs, mom).tolist(),
            "measured_lr": sweep_lrs.tolist(),
            "measured_rate": sweep,
        }
    return {
        "eigenvalues": eig.tolist() if eig.size <= 64 else [m, L],
        "m": m, "L": L, "kappa": L / m,
        "horizon": horizon,
        "rows": rows, "optimal": optimal, "curves": curves,
        "measured_rate_definition": (
            f"over a run of {horizon} updates (max(steps, theory_steps)), exp of the least-squares slope of "
            "log E_k, E_k = sqrt(d_k^2 + d_{k-1}^2), over its second half, d_k = distance to the minimiser, "
            "stopping where E_k falls below 1e-12 E_1 (round-off); see npoptim.experiments.theory.measured_rate"
        ),
    }


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
        plotting.draw_path(ax, run.points, color=plotting.optimizer_color(name), label=f"{_display(name)} path")
        plotting.mark_start(ax, x0)
        plotting.mark_minima(ax, fn.minimizers)
        plotting.set_domain(ax, fn)
        end = "diverged" if run.diverged else f"f − f* = {_fmt(float(run.values[-1] - fn.minimum))}"
        ax.set_title(f"{_display(name)}, η = {lrs[name]:.3g}\n{end} after {len(run.points) - 1} steps", fontsize=10)
        ax.tick_params(labelsize=8)
        if i == 0:
            ax.legend(loc="lower right", fontsize=7, framealpha=0.85)
    fig.suptitle(f"{heading} — {fn.formula}, start {_point(x0)}, {steps} updates", fontsize=11)
    return fig, {"figsize": list(figsize), "dpi": plotting.DPI}


def _draw_all(out_dir, fn, names, x0, steps, given_lrs, given_runs, final_lrs, runs, tune, animate, result) -> None:
    from ..report import plotting

    figs, specs, caps = result["figures"], result["figure_specs"], result["captions"]
    lr_text = ", ".join(f"{_display(n)} {given_lrs[n]:g}" for n in names)
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
            f"rate measured at {_SWEEP_PER_DECADE} learning rates per decade over {th['horizon']} updates "
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
        ax.plot(grid[ok], np.maximum(obj[ok], floor), "-", color=color, label=_display(name), linewidth=1.5)
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
        right.plot(k, np.maximum(d, 1e-300), "-", color=color, label=f"{_display(name)}, η = {lrs[name]:.3g}")
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
                                 label=f"{_display(name)} η={lrs[name]:.3g}")
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
            f"| {r['optimizer']} ({r['setting']}) | {METHODS.get(r['method'], '— (no linear theory)')} "
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


# --- command line ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``npoptim trajectories``."""
    parser.add_argument("--function", default="anisotropic", metavar="SPEC",
                        help="test function: anisotropic (default), rosenbrock, beale, booth, himmelblau, rastrigin, "
                             "quadratic; parameters after a colon, e.g. quadratic:kappa=100,dim=10")
    parser.add_argument("--optimizers", default=None, metavar="A,B,...",
                        help="comma-separated optimizer names, or all (default: the book's six)")
    parser.add_argument("--lr", action="append", default=[], metavar="NAME=LR",
                        help="learning rate for one optimizer, repeatable (default: the book's: sgd=0.95 momentum=0.1 "
                             "nesterov=0.1 adagrad=1.5 rmsprop=0.1 adam=0.3)")
    parser.add_argument("--start", nargs="+", default=None, metavar="X",
                        help="start point, one number per coordinate (default: the function's usual start)")
    parser.add_argument("--steps", default="30", metavar="N", help="updates per optimizer (default 30)")
    parser.add_argument("--tune", action="store_true",
                        help="also tune every lr on one log-spaced grid, same budget, objective f(x_T) - f*")
    parser.add_argument("--grid", nargs=3, default=None, metavar=("LOW", "HIGH", "POINTS"),
                        help="tuning grid: LOW HIGH POINTS, log-spaced (default {:g} {:g} {})".format(*DEFAULT_LR_GRID))
    parser.add_argument("--tol", default=str(DEFAULT_TOL), metavar="D",
                        help=f"distance to a minimiser counted as arrived, for steps_to_tol (default {DEFAULT_TOL:g})")
    parser.add_argument("--theory-steps", default=str(THEORY_STEPS), metavar="N",
                        help=f"quadratics: measure rates over max(steps, N) updates (default {THEORY_STEPS})")
    parser.add_argument("--animate", action="store_true", help="also write trajectories.gif (2-D functions)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                        help=f"output folder (default ./{DEFAULT_OUT.as_posix()})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no summary on stdout")


def _number(option: str, raw: str, kind: type = float) -> Any:
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{option}: invalid {'integer' if kind is int else 'number'} {raw!r}") from None


def _parse_lrs(items: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        for part in filter(None, (s.strip() for s in item.split(","))):
            name, eq, raw = part.partition("=")
            if not eq or not name.strip():
                raise ValueError(f"--lr {part!r}: expected NAME=LR, e.g. --lr sgd=0.95")
            out[name.strip().lower()] = _number(f"--lr {name.strip()}", raw.strip())
    return out


def run(args: argparse.Namespace) -> int:
    """Run ``npoptim trajectories`` from parsed arguments; return the exit status."""
    optimizers = None if args.optimizers is None else [s.strip() for s in args.optimizers.split(",") if s.strip()]
    if optimizers is not None and not optimizers:
        raise ValueError(f"--optimizers {args.optimizers!r}: no optimizer named")
    start = None if args.start is None else tuple(_number("--start", s) for s in args.start)
    grid = DEFAULT_LR_GRID
    if args.grid is not None:
        low, high, points = args.grid
        grid = (_number("--grid LOW", low), _number("--grid HIGH", high), _number("--grid POINTS", points, int))
    result = run_trajectories(
        Path(args.out),
        function=args.function,
        optimizers=optimizers,
        lrs=_parse_lrs(args.lr),
        start=start,
        steps=_number("--steps", args.steps, int),
        tune=args.tune,
        animate=args.animate,
        progress=not args.quiet,
        grid=grid,
        tol=_number("--tol", args.tol),
        theory_steps=_number("--theory-steps", args.theory_steps, int),
    )
    if not args.quiet:
        out = Path(args.out)
        print(result["summary_markdown"])
        if result["theory_markdown"]:
            print()
            print(result["theory_markdown"])
        print()
        for file in [*result["figures"].values(), "trajectories.json", "trajectories.md"]:
            print(f"wrote {out / file}")
    return 0
