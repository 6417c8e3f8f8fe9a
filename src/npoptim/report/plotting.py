"""Small, reusable plotting helpers shared by the experiments.

Everything works on :class:`matplotlib.figure.Figure` objects rendered by the
Agg canvas; nothing here imports :mod:`matplotlib.pyplot` or changes
matplotlib's global state (backend, rcParams), so the helpers are safe in
servers, tests and notebooks alike.  Figures are saved at the size they were
made (no ``bbox_inches="tight"``): ``figsize * dpi`` pixels, which tests check.

Add a helper here when two experiments need it; keep each one small.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..optimizers import display_name

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..problems.functions import Objective

__all__ = [
    "DPI",
    "new_figure",
    "save_figure",
    "optimizer_color",
    "panel_layout",
    "contour_grid",
    "contour_levels",
    "draw_contours",
    "draw_path",
    "mark_start",
    "mark_minima",
    "set_domain",
]

#: Resolution of every saved figure, dots per inch.
DPI = 100

# One colour per optimizer, stable across figures and runs: the registry name
# picks the colour, so "adam" is the same colour in every picture.
_KNOWN_COLORS = {
    "sgd": "#1f77b4",
    "momentum": "#d62728",
    "nesterov": "#ff7f0e",
    "adagrad": "#2ca02c",
    "rmsprop": "#9467bd",
    "adam": "#e377c2",
}
_EXTRA_COLORS = ("#8c564b", "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#843c39", "#7b4173")


def new_figure(figsize: tuple[float, float], *, dpi: int = DPI, layout: str | None = "constrained") -> Figure:
    """A Figure with an Agg canvas attached (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def save_figure(
    fig: Figure, path: str | Path, *, dpi: int | None = None, metadata: dict[str, str] | None = None
) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix) at its own size; create parent folders.

    The image is ``figsize * dpi`` pixels exactly: no tight bounding box.
    Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"Software": "npoptim"} if path.suffix.lower() == ".png" else None
    if metadata and meta is not None:
        meta.update(metadata)
    fig.savefig(path, dpi=dpi or fig.dpi, metadata=meta)
    return path


def optimizer_color(name: str) -> str:
    """The colour of an optimizer in every figure (a stable choice for names we do not know)."""
    key = name.lower()
    if key in _KNOWN_COLORS:
        return _KNOWN_COLORS[key]
    return _EXTRA_COLORS[sum(map(ord, key)) % len(_EXTRA_COLORS)]


def panel_layout(n: int, *, max_cols: int = 3) -> tuple[int, int]:
    """``(rows, cols)`` for ``n`` panels, at most ``max_cols`` per row."""
    if n < 1:
        raise ValueError(f"panel_layout: need at least one panel, got n={n}")
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def contour_grid(objective: Objective, *, n: int = 240) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X, Y, Z`` on an ``n`` x ``n`` grid over a 2-D objective's domain (one vectorised call)."""
    if objective.dim != 2:
        raise ValueError(f"contour_grid: {objective.name!r} is {objective.dim}-dimensional; contours need 2")
    (x0, x1), (y0, y1) = objective.domain
    X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))  # noqa: N806
    with np.errstate(over="ignore", invalid="ignore"):
        Z = objective.value(np.stack([X, Y], axis=-1))  # noqa: N806
    return X, Y, Z


def contour_levels(Z: np.ndarray, minimum: float, *, count: int = 18) -> np.ndarray:  # noqa: N803
    """Levels geometrically spaced in :math:`f - f^*`, so valleys and plateaus both show."""
    gap = np.asarray(Z, dtype=float) - minimum
    gap = gap[np.isfinite(gap) & (gap > 0)]
    if gap.size == 0:
        return minimum + np.linspace(0.0, 1.0, count)
    lo, hi = np.quantile(gap, [0.002, 0.98])
    lo = max(lo, hi * 1e-6, np.finfo(float).tiny)
    return minimum + np.geomspace(lo, max(hi, lo * 10), count)


def draw_contours(ax: Axes, objective: Objective, *, n: int = 240, count: int = 18, cmap: str = "Blues_r") -> None:
    """Filled contours (light) plus thin lines of a 2-D objective on ``ax``, levels as :func:`contour_levels`."""
    from matplotlib.colors import BoundaryNorm

    X, Y, Z = contour_grid(objective, n=n)  # noqa: N806
    levels = contour_levels(Z, objective.minimum, count=count)
    import matplotlib

    colormap = matplotlib.colormaps[cmap]
    norm = BoundaryNorm(levels, ncolors=colormap.N, extend="both")
    ax.contourf(X, Y, Z, levels=levels, cmap=colormap, norm=norm, alpha=0.3, extend="both")
    ax.contour(X, Y, Z, levels=levels, colors="0.45", linewidths=0.5, alpha=0.8)


def set_domain(ax: Axes, objective: Objective, *, equal: bool = True) -> None:
    """Limit ``ax`` to the objective's domain; equal aspect, so steps and angles are drawn true."""
    (x0, x1), (y0, y1) = objective.domain
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    if equal:
        ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def draw_path(
    ax: Axes, path: np.ndarray, *, color: str, label: str | None = None, markersize: float = 3.0, linewidth: float = 1.3
) -> Any:
    """A 2-D path as a line with a dot at each iterate; returns the line."""
    path = np.asarray(path, dtype=float)
    (line,) = ax.plot(
        path[:, 0], path[:, 1], "-o", color=color, label=label, markersize=markersize, linewidth=linewidth, zorder=3
    )
    return line


def mark_start(ax: Axes, start: Sequence[float], *, label: str | None = "start") -> None:
    """The start: a large white circle with a black edge."""
    ax.plot([start[0]], [start[1]], "o", markersize=9, markerfacecolor="white", markeredgecolor="black",
            markeredgewidth=1.5, label=label, zorder=4)


def mark_minima(ax: Axes, points: Iterable[Sequence[float]], *, label: str | None = "minimum") -> None:
    """The minimiser(s): gold stars with a black edge (one legend entry for all)."""
    pts = np.asarray(list(points), dtype=float).reshape(-1, 2)
    ax.plot(pts[:, 0], pts[:, 1], "*", markersize=14, markerfacecolor="gold", markeredgecolor="black",
            markeredgewidth=1.0, linestyle="none", label=label, zorder=5)


# --- training curves (npoptim train / compare; appended by the training experiment) ----------------

__all__ += ["TRAINING_FIGSIZE", "training_curves_figure"]

#: Size of the training-curves figure in inches (pixels: times :data:`DPI`).
TRAINING_FIGSIZE = (12.0, 4.8)


def training_curves_figure(
    results: dict[str, Any], raw_loss: dict[str, np.ndarray], smoothed_loss: dict[str, np.ndarray]
) -> Figure:
    r"""Two panels: training loss (log scale) and held-out accuracy against the step, one colour per optimizer.

    ``results`` is :class:`npoptim.experiments.training.TrainingResult`'s
    ``results``; the loss arrays are ``(seeds, steps)``.  Loss: faint line the
    raw mini-batch loss averaged over seeds; solid line and band the smoothed
    loss's mean :math:`\pm` standard deviation *of its logarithm* across seeds
    (a geometric mean with a multiplicative band, which a log axis shows
    symmetrically and which never dips below zero).  Accuracy: mean
    :math:`\pm` standard deviation across seeds at each evaluation.
    """
    import warnings

    cfg = results["config"]
    fig = new_figure(TRAINING_FIGSIZE)
    ax_loss, ax_acc = fig.subplots(1, 2)
    steps = np.arange(cfg["steps"])
    eval_steps = np.array(results["curves"]["eval_steps"])

    def mean_std(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns after a divergence
            mean = np.nanmean(a, axis=0)
            std = np.nanstd(a, axis=0, ddof=1) if len(a) > 1 else np.zeros(a.shape[1])
        return mean, np.nan_to_num(std)

    for name in cfg["optimizers"]:
        color = optimizer_color(name)
        raw = raw_loss[name]
        if np.isfinite(raw).any():
            ax_loss.plot(steps, mean_std(raw)[0], color=color, alpha=0.18, linewidth=0.6)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_mean, log_std = mean_std(np.log(np.maximum(smoothed_loss[name], 1e-300)))
        ax_loss.plot(steps, np.exp(log_mean), color=color, linewidth=1.6,
                     label=f"{display_name(name)} (lr={cfg['lrs'][name]:g})")
        ax_loss.fill_between(steps, np.exp(log_mean - log_std), np.exp(log_mean + log_std), color=color, alpha=0.2,
                             linewidth=0)
        acc = np.array(results["curves"][name]["held_out_accuracy"], dtype=float) * 100.0
        a_mean, a_std = mean_std(acc)
        ax_acc.plot(eval_steps, a_mean, "-o", color=color, markersize=2.5, linewidth=1.4, label=display_name(name))
        ax_acc.fill_between(eval_steps, a_mean - a_std, a_mean + a_std, color=color, alpha=0.2, linewidth=0)
    ax_loss.axhline(cfg["target_loss"], color="0.3", linestyle=":", linewidth=1, label=f"target {cfg['target_loss']:g}")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss (mini-batch)")
    ax_loss.set_title(f"Training loss: faint = raw; line = moving mean over {cfg['smooth_window']} steps", fontsize=10)
    ax_loss.grid(alpha=0.3, which="major")
    ax_loss.legend(fontsize=8)
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("held-out accuracy (%)")
    ax_acc.set_title(f"Held-out accuracy ({cfg['data']['n_held_out']} {cfg['data']['name']} images)", fontsize=10)
    ax_acc.set_ylim(max(0.0, ax_acc.get_ylim()[0]), 100.5)
    ax_acc.grid(alpha=0.3)
    n = len(cfg["seeds"])
    band = "bands: ± 1 std across seeds (loss: of log loss)" if n > 1 else "one seed"
    fig.suptitle(f"{cfg['data']['name']}: {'-'.join(map(str, cfg['layer_sizes']))} ReLU network, batch "
                 f"{cfg['batch_size']}, {n} seed{'s' * (n > 1)}; {band}", fontsize=11)
    return fig
