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

import inspect
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.paths import TUNING_OBJECTIVE, Run, lr_grid, run_path, tune_lr
from ..engine.paths import positive as _positive
from ..optimizers import display_name
from ..report.trajectories import SWEEP_PER_DECADE as _SWEEP_PER_DECADE

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


__all__ = [
    "BOOK_LRS",
    "DEFAULT_OUT",
    "DEFAULT_LR_GRID",
    "TUNING_OBJECTIVE",
    "Run",
    "run_path",
    "default_lr",
    "lr_grid",
    "run_trajectories",
    "compute_trajectories",
    "Trajectories",
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
    from ..optimizers import registry_name

    given = {}
    for key, value in (lrs or {}).items():
        name = registry_name(key)  # raises naming an unknown one; an alias becomes the registry's name
        if name not in names:
            raise ValueError(
                f"a learning rate is given for {key!r}, which is not among the optimizers run: {', '.join(names)}"
            )
        given[name] = _positive(f"learning rate for {key!r}", value)
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
    optimizers : registry names (aliases accepted), or ``"all"`` (:data:`npoptim.ALL_OPTIMIZERS`);
        default the book's six
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
    from ..report.trajectories import write_trajectories

    computed = compute_trajectories(
        function=function, optimizers=optimizers, lrs=lrs, start=start, steps=steps, tune=tune, animate=animate,
        progress=progress, grid=grid, tol=tol, theory_steps=theory_steps,
    )
    return write_trajectories(Path(out_dir), computed)


@dataclass
class Trajectories:
    """What :func:`compute_trajectories` returns: the result dict (no figures yet), the function, the runs."""

    result: dict[str, Any]
    function: Any
    given_runs: dict[str, Run]
    runs: dict[str, Run]


def compute_trajectories(**options: Any) -> Trajectories:
    """Every number of :func:`run_trajectories` (the same keywords but ``out_dir``), drawing and writing nothing.

    ``animate`` is only recorded (and checked: 2-D functions only);
    :func:`npoptim.report.trajectories.write_trajectories` draws the figures, fills ``figures``,
    ``figure_specs`` and ``captions`` and adds the markdown.
    """
    bound = inspect.signature(run_trajectories).bind(None, **options)  # a misspelt keyword is a TypeError
    bound.apply_defaults()
    o = bound.arguments
    function, optimizers, lrs, start, steps, tune = (o[k] for k in ("function", "optimizers", "lrs", "start",
                                                                     "steps", "tune"))
    animate, progress, grid, tol, theory_steps = (o[k] for k in ("animate", "progress", "grid", "tol",
                                                                 "theory_steps"))
    from .._version import __version__
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
        entry = {"display_name": display_name(name), "lr": final_lrs[name],
                 "lr_source": "tuned" if tune else lr_source[name]}
        entry.update(_summary(fn, runs[name], tol))
        if tune:
            entry["given"] = {"lr": given_lrs[name], **_summary(fn, given_runs[name], tol)}
        result["optimizers"][name] = entry

    if fn.hessian is not None:
        tuned = final_lrs if tune else None
        result["theory"] = _theory(fn, names, x0, steps, given_lrs, tuned, lr_values, theory_steps)

    return Trajectories(result=result, function=fn, given_runs=given_runs, runs=runs)


compute_trajectories.__signature__ = inspect.signature(run_trajectories).replace(  # type: ignore[attr-defined]
    parameters=list(inspect.signature(run_trajectories).parameters.values())[1:], return_annotation="Trajectories"
)


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
