r"""The numbers of one explorer view, computed by the library: no Dash, no drawing.

Each path is :func:`npoptim.engine.run_path` with the optimizer the registry builds from the
page's settings, so what the page draws is what the library does.  Per update :math:`k` of the
inspected optimizer the view also holds the gradient :math:`g_k` it used, its state after the
update (velocity, moments, accumulators: the arrays ``optimizer.state`` holds) and the *effective
per-coordinate step size*

.. math:: \eta^{\mathrm{eff}}_{k,i} = \frac{x_{k-1,i} - x_{k,i}}{g_{k,i}},

which is :math:`\eta` for SGD, :math:`\eta/(\sqrt{h_k} + \epsilon)` for AdaGrad and RMSprop and
:math:`\eta\,\hat m_k/(g_k(\sqrt{\hat v_k} + \epsilon))` for Adam: where adaptive methods differ.

"Tune" is the tuning of ``npoptim trajectories --tune``: the same log-spaced grid
(:data:`~npoptim.experiments.trajectories.DEFAULT_LR_GRID`), budget (the view's steps, from its
start) and objective (:data:`~npoptim.engine.paths.TUNING_OBJECTIVE`), through
:func:`npoptim.engine.tune_lr`, with the page's other hyperparameters.

>>> from npoptim.explore.state import default_state
>>> view = compute_view(default_state())
>>> [round(y, 4) for _, y in view["optimizers"]["sgd"]["path"][:3]]   # y <- (1 - 2 * 0.95) y
[2.0, -1.8, 1.62]
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from ..engine.paths import TUNING_OBJECTIVE, Run, lr_grid, run_path, tune_lr
from ..engine.theory import measured_rate, method_of, spectral_radius
from ..experiments.trajectories import DEFAULT_LR_GRID, DEFAULT_TOL, THEORY_STEPS
from ..optimizers.registry import ALL_OPTIMIZERS, create_optimizer, display_name
from ..problems.functions import get_function
from .state import LR_MAX, LR_MIN, ViewState

__all__ = ["COLORS", "color_of", "make_optimizer", "path_of", "contour", "compute_view", "tune", "finite"]

#: One colour per registered optimizer, by registry order (Plotly's default qualitative palette, then more).
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
          "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939")


def color_of(name: str) -> str:
    """The colour of optimizer ``name`` on every panel."""
    order = list(ALL_OPTIMIZERS)
    return COLORS[(order.index(name) if name in order else len(order)) % len(COLORS)]


def finite(a: Any) -> Any:
    """``a`` (array, list or number) as nested lists of floats with every non-finite number as ``None`` (JSON)."""
    arr = np.asarray(a, dtype=float)
    if arr.ndim == 0:
        return float(arr) if math.isfinite(float(arr)) else None
    if np.isfinite(arr).all():
        return arr.tolist()
    obj = arr.astype(object)
    obj[~np.isfinite(arr)] = None
    return obj.tolist()


def make_optimizer(state: ViewState, name: str, lr: float | None = None) -> Any:
    """The optimizer the page runs for ``name``: its slider's rate (or ``lr``) and its main hyperparameters."""
    return create_optimizer(name, lr=state.lrs[name] if lr is None else lr, **state.hyper[name])


def contour(function: str, points: int = 121) -> dict[str, Any]:
    """The map: ``log10(f - f* + 1e-6)`` on a ``points`` x ``points`` grid of the function's domain."""
    fn = get_function(function)
    (xlo, xhi), (ylo, yhi) = fn.domain[:2]
    x, y = np.linspace(xlo, xhi, points), np.linspace(ylo, yhi, points)
    with np.errstate(over="ignore", invalid="ignore"):
        z = np.log10(np.maximum(fn.value(np.stack(np.meshgrid(x, y), axis=-1)) - fn.minimum, 0.0) + 1e-6)
    return {"function": fn.name, "x": x.tolist(), "y": y.tolist(), "z": finite(np.round(z, 4)),
            "domain": [list(d) for d in fn.domain[:2]]}


@lru_cache(maxsize=512)
def _path(function: str, name: str, lr: float, hyper: tuple[tuple[str, float], ...], start: tuple[float, float],
          steps: int) -> tuple[Run, dict[str, Any]]:
    """One path (:func:`run_path`) and its per-update quantities: gradient, state after the update, effective step.

    Cached: a slider move recomputes the one path whose setting changed (the page's 6 x 300 steps
    would otherwise cost 1800 updates a move).  The arrays returned are never written to.
    """
    grads: list[np.ndarray] = []
    slots: dict[str, list[np.ndarray]] = {}

    def observe(k: int, grad: np.ndarray, opt: Any) -> None:
        grads.append(np.array(grad, dtype=float))
        for slot, value in opt.state["xy"].items():
            if isinstance(value, np.ndarray):
                slots.setdefault(slot, []).append(value.astype(float, copy=True))

    opt = create_optimizer(name, lr=lr, **dict(hyper))
    run = run_path(get_function(function), opt, start, steps, observe=observe)
    g = np.array(grads).reshape(-1, 2)
    dx = run.points[:-1] - run.points[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(g != 0, dx / np.where(g != 0, g, 1.0), np.nan)
    return run, {"name": name, "grad": finite(g), "effective_lr": finite(eff),
                 "state": {s: finite(np.array(v).reshape(-1, 2)) for s, v in slots.items()}}


def path_of(state: ViewState, name: str, steps: int | None = None) -> tuple[Run, dict[str, Any]]:
    """``name``'s path in ``state`` (``steps`` updates, default the state's) and its per-update quantities."""
    hyper = tuple(sorted(state.hyper[name].items()))
    return _path(state.function, name, state.lrs[name], hyper, tuple(state.start), state.steps if steps is None
                 else steps)


def _theory(fn: Any, state: ViewState, runs: dict[str, Any]) -> dict[str, Any] | None:
    """Predicted contraction rho(lr) (:mod:`npoptim.experiments.theory`) beside the measured rate, quadratics only."""
    if fn.hessian is None:
        return None
    eig = np.linalg.eigvalsh(fn.hessian)
    minimizer = np.asarray(fn.minimizers[0], dtype=float)
    horizon = max(state.steps, THEORY_STEPS)
    curve_lrs = np.geomspace(LR_MIN, LR_MAX, 200)
    rows = []
    for name in state.shown:
        opt = make_optimizer(state, name)
        method = method_of(opt)
        if method is None:
            continue
        mom = float(getattr(opt, "momentum", 0.0)) if method != "gd" else 0.0
        run = runs[name] if state.steps >= horizon else path_of(state, name, horizon)[0]
        rows.append({
            "optimizer": name, "method": method, "lr": state.lrs[name], "momentum": mom,
            "predicted_rate": float(spectral_radius(method, eig, state.lrs[name], mom)),
            "measured_rate": measured_rate(np.linalg.norm(run.points - minimizer, axis=-1)),
            "curve_lr": curve_lrs.tolist(), "curve_rate": finite(spectral_radius(method, eig, curve_lrs, mom)),
        })
    return {"eigenvalues": eig.tolist(), "horizon": horizon, "rows": rows}


def compute_view(state: ViewState) -> dict[str, Any]:
    """Every number the page draws for ``state`` (a clamped :class:`~npoptim.explore.state.ViewState`), as JSON data.

    ``optimizers[name]``: ``path`` (start first), ``loss`` (:math:`f - f^*` per iterate), ``lr``,
    ``hyper``, ``color``, ``display``, and the read-out ``suboptimality``, ``distance``,
    ``steps_to_tol`` (first iterate within :data:`DEFAULT_TOL` of a minimiser, or ``None``),
    ``diverged`` and ``stopped`` (as :class:`~npoptim.engine.paths.Run` defines them).
    ``inspect``: the per-update quantities of ``state.inspect``; ``theory``: quadratics only.
    """
    fn = get_function(state.function)
    paths = {n: path_of(state, n) for n in state.shown}
    runs = {n: run for n, (run, _) in paths.items()}
    out: dict[str, Any] = {
        "function": fn.name, "domain": [list(d) for d in fn.domain[:2]], "minimum": fn.minimum,
        "minimizers": [list(m) for m in fn.minimizers], "start": list(state.start), "steps": state.steps,
        "shown": list(state.shown), "tol": DEFAULT_TOL, "optimizers": {}, "messages": list(state.messages),
    }
    for name, run in runs.items():
        dist = fn.distance_to_minimum(run.points)
        hit = np.flatnonzero(dist <= DEFAULT_TOL)
        loss = run.values - fn.minimum
        out["optimizers"][name] = {
            "display": display_name(name), "color": color_of(name),
            "lr": state.lrs[name], "hyper": dict(state.hyper[name]),
            "path": finite(run.points), "loss": finite(loss),
            "suboptimality": finite(loss[-1]), "distance": finite(dist[-1]),
            "steps_to_tol": int(hit[0]) if hit.size else None, "steps_done": len(run.points) - 1,
            "stopped": bool(run.stopped), "diverged": bool(run.diverged),
        }
        if run.diverged:
            out["messages"].append(f"{display_name(name)} (lr {state.lrs[name]:g}) diverged"
                                   + (f" after {len(run.points) - 1} updates" if run.stopped else ""))
    out["inspect"] = paths[state.inspect][1] if state.inspect in state.shown else None
    out["theory"] = _theory(fn, state, runs)
    return out


def tune(state: ViewState) -> dict[str, Any]:
    """Every shown optimizer's rate from the grid of ``npoptim trajectories --tune`` (module docstring).

    Returns ``{"objective": TUNING_OBJECTIVE, "grid": [...], "optimizers": {name: tune_lr's dict}}``;
    ``best_lr`` is a grid point, which the sliders' range (1e-4 to 10) holds.
    """
    fn = get_function(state.function)
    grid = lr_grid(*DEFAULT_LR_GRID)
    results = {}
    for name in state.shown:
        r = tune_lr(fn, lambda lr, name=name: make_optimizer(state, name, lr), state.start, state.steps, grid)
        results[name] = {**r, "objective": finite(r["objective"]), "best_objective": finite(r["best_objective"]),
                         "color": color_of(name), "display": display_name(name)}
    return {"objective": TUNING_OBJECTIVE, "grid": grid.tolist(), "optimizers": results}
