"""The path loop: an optimizer's iterates on a test function, the learning-rate grid and its tuning.

:func:`run_path` is the only loop in the package that walks an optimizer over a
test function; ``npoptim trajectories``, the theory comparison, the lr tuning
and every test-function run of a sweep call it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Run", "run_path", "lr_grid", "tune_lr", "TUNING_OBJECTIVE", "positive"]

TUNING_OBJECTIVE = (
    "final suboptimality f(x_T) - f* after T updates from the same start; "
    "a run stopped by a non-finite iterate scores +inf; ties go to the smaller lr"
)

#: An iterate farther than this from the origin stops the run as diverged (its square must stay finite).
_BLOWUP = 1e150
#: So does a suboptimality this many times the start's: it will not come back in any useful time.
_GROWTH = 1e20


@dataclass(frozen=True)
class Run:
    """One optimizer's path: iterates ``points`` (``(k+1, dim)``, start first) and ``values``.

    ``stopped`` is True when the run ended before its budget because a
    gradient or iterate stopped being finite, left a ball of radius 1e150, or
    its suboptimality :math:`f - f^*` grew to 1e20 times the start's (or above
    ``ceiling``, where one is given).
    """

    points: np.ndarray
    values: np.ndarray
    stopped: bool

    @property
    def diverged(self) -> bool:
        """Stopped early, or ended higher than it started."""
        return self.stopped or not (self.values[-1] <= self.values[0])


def run_path(
    function: Any,
    optimizer: Any,
    start: Sequence[float],
    steps: int,
    *,
    noise: Callable[[], np.ndarray] | None = None,
    ceiling: float | None = None,
    observe: Callable[[int, np.ndarray, Any], None] | None = None,
) -> Run:
    """Minimise ``function`` (an :class:`~npoptim.functions.Objective` or a spec) with ``optimizer``, ``steps`` updates.

    Uses the optimizer's public API only: ``params = {"xy": x}``,
    ``optimizer.update(params, {"xy": function.gradient(x)})``.  ``noise()``,
    when given, is added to every gradient (a stochastic gradient); ``ceiling``,
    when given, replaces the relative divergence bound by an absolute one on
    :math:`f - f^*` (checked at the start too).  ``observe(k, grad, optimizer)``, when given, is
    called after the ``k``-th update that the run keeps (``k = 1, 2, ...``), with the gradient that
    update used: the explorer reads the optimizer's state there.

    >>> from npoptim import SGD
    >>> run = run_path("anisotropic", SGD(lr=0.95), (-7.0, 2.0), 2)
    >>> run.points[:, 1]   # y <- (1 - 2 * 0.95) y = -0.9 y
    array([ 2.  , -1.8 ,  1.62])
    """
    from ..errors import NonFiniteGradientError
    from ..problems.functions import get_function

    fn = get_function(function)
    params = {"xy": np.array(start, dtype=float)}
    points = [params["xy"].copy()]
    values = [float(fn.value(params["xy"]))]
    limit = _GROWTH * max(values[0] - fn.minimum, 1e-300) if ceiling is None else float(ceiling)

    def ok(x: np.ndarray, value: float) -> bool:
        inside = value - fn.minimum < limit if ceiling is None else value - fn.minimum <= limit
        return bool(np.isfinite(x).all() and math.isfinite(value) and np.abs(x).max() < _BLOWUP and inside)

    with np.errstate(over="ignore", invalid="ignore"):
        stopped = not ok(params["xy"], values[0])
        for _ in range(0 if stopped else int(steps)):
            grad = np.asarray(fn.gradient(params["xy"]), dtype=float)
            if noise is not None:
                grad = grad + noise()
            if not np.isfinite(grad).all():
                stopped = True
                break
            try:
                optimizer.update(params, {"xy": grad})
            except NonFiniteGradientError:  # an optimizer's own check (e.g. of a state gone non-finite)
                stopped = True
                break
            x = params["xy"]
            value = float(fn.value(x))
            if not ok(x, value):
                stopped = True
                break
            points.append(x.copy())
            values.append(value)
            if observe is not None:
                observe(len(points) - 1, grad, optimizer)
    return Run(points=np.array(points), values=np.array(values), stopped=stopped)


def positive(what: str, value: Any) -> float:
    """``value`` as a float, or ValueError naming ``what`` unless it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"invalid {what}: {value!r} (must be a finite number > 0)")
    return float(value)


def lr_grid(low: float, high: float, points: int) -> np.ndarray:
    """``points`` learning rates log-spaced from ``low`` to ``high`` inclusive."""
    low, high = positive("lr grid low", low), positive("lr grid high", high)
    if not high > low:
        raise ValueError(f"lr grid: high={high!r} must be greater than low={low!r}")
    if isinstance(points, bool) or not isinstance(points, numbers.Integral) or points < 2:
        raise ValueError(f"lr grid: invalid points={points!r}: must be an integer >= 2")
    return np.geomspace(low, high, int(points))


def tune_lr(function: Any, make: Callable[[float], Any], start: Sequence[float], steps: int,
            grid: np.ndarray, on_point: Callable[[], None] | None = None) -> dict[str, Any]:
    """Every lr of ``grid`` on ``function`` (``make(lr)``: a fresh optimizer), scored by :data:`TUNING_OBJECTIVE`."""
    from ..problems.functions import get_function

    fn = get_function(function)
    scores = []
    for lr in grid:
        run = run_path(fn, make(float(lr)), start, steps)
        scores.append(math.inf if run.stopped else float(run.values[-1] - fn.minimum))
        if on_point is not None:
            on_point()
    best = int(np.argmin(np.array(scores)))  # first minimum: ties go to the smaller lr
    return {
        "grid": grid.tolist(),
        "objective": scores,
        "best_lr": float(grid[best]),
        "best_objective": scores[best],
        "at_grid_edge": best in (0, len(grid) - 1),
    }
