r"""Problems a sweep runs, and :func:`run_config`, the function every worker calls.

A run's configuration is plain JSON data::

    {"problem": "rosenbrock",                     # canonical name (see below)
     "problem_options": {...},                    # what else defines the problem
     "optimizer": "adam",                         # a key of npoptim.OPTIMIZERS
     "hyperparameters": {...},                    # the optimizer's complete constructor arguments
     "seed": 0, "steps": 200,                     # the run's seed and its budget (updates)
     "npoptim_version": "0.1.0"}

Test functions (:mod:`npoptim.functions`, any spec ``get_function`` accepts;
stored under the function's canonical name).  Seed :math:`s` starts at
:math:`x_0 = x_{start} + \sigma_0 z`, :math:`z \sim \mathcal{N}(0, I)` from
``np.random.default_rng(s)`` (``start_jitter`` :math:`\sigma_0`), and with
``grad_noise`` :math:`\sigma_g > 0` each step sees the stochastic gradient
:math:`\nabla f(x_t) + \sigma_g \xi_t`, :math:`\xi_t \sim \mathcal{N}(0, I)`
from the same generator.  The recorded metric is the suboptimality
:math:`f(x_t) - f^\star`.

Training (``"digits"``, ``"mnist"``): :mod:`npoptim.nn` on :mod:`npoptim.data`
with the seeding and batch order of ``npoptim train`` (both run
:func:`npoptim.engine.train`); the metric is the training-set loss.

A run whose iterate or loss becomes non-finite (or exceeds
:data:`DIVERGED`) has *diverged*: that is a result, not an error -- its final
metric is ``inf`` and its status ``ok``.  Any exception is caught and returned
as status ``failed`` with its text, so one bad run never stops a sweep.
"""

from __future__ import annotations

import functools
import math
import os
import socket
import time
import traceback
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._fingerprint import code_fingerprint
from .._version import __version__
from ..engine.paths import run_path
from ..engine.training import train
from ..optimizers import create_optimizer
from ..problems.functions import FUNCTIONS, get_function

__all__ = [
    "run_config",
    "canonical_problem",
    "problem_options",
    "TRAINING_PROBLEMS",
    "DIVERGED",
    "N_RECORDS",
    "make_config",
]

#: A suboptimality or loss above this counts as diverged.
DIVERGED = 1e12
#: A run records its metric at about this many evenly spaced steps (plus step 0 and the last).
N_RECORDS = 100
#: Training problems by name (the rest are test functions).
TRAINING_PROBLEMS = ("digits", "mnist")


def canonical_problem(spec: str) -> str:
    """The stored name of a problem: a test function's canonical spec, or a training problem's name."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"invalid problem {spec!r}: expected a test-function spec or one of {TRAINING_PROBLEMS}")
    name = spec.strip()
    if name.lower() in TRAINING_PROBLEMS:
        return name.lower()
    try:
        return get_function(name).name
    except ValueError as exc:
        known = ", ".join(TRAINING_PROBLEMS)
        raise ValueError(f"invalid problem {spec!r}: {exc}; or a training problem: {known}") from None


def problem_options(
    problem: str,
    *,
    start_jitter: float,
    grad_noise: float,
    data_dir: str | None = None,
    hidden: tuple[int, ...] = (100, 100, 100, 100),
    batch_size: int = 128,
) -> dict:
    """The options stored with a problem in every run's configuration (``problem``: its canonical name)."""
    canon = canonical_problem(problem)
    if canon != problem:
        raise ValueError(f"problem {problem!r} must be given by its canonical name {canon!r}")
    if problem in TRAINING_PROBLEMS:
        if not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(f"invalid hidden={hidden!r}: hidden layer sizes must be positive integers")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"invalid batch_size={batch_size!r}: must be a positive integer")
        opts: dict[str, Any] = {"hidden": [int(h) for h in hidden], "batch_size": int(batch_size)}
        if problem == "mnist":
            if not data_dir:
                raise ValueError("problem 'mnist' needs --data-dir, the directory with the MNIST IDX files")
            opts["data_dir"] = str(os.path.abspath(data_dir))
        return opts
    return {"start_jitter": float(start_jitter), "grad_noise": float(grad_noise)}


def make_config(
    problem: str,
    options: Mapping[str, Any],
    optimizer: str,
    tuned: Mapping[str, float],
    seed: int,
    steps: int,
    *,
    version: str = __version__,
    code: str | None = None,
) -> dict[str, Any]:
    """A complete run configuration: the tuned values over the optimizer's defaults.

    ``version``: the npoptim version the run belongs to (a worker refuses a run of another version).
    ``code``: the code fingerprint it belongs to (:func:`npoptim._fingerprint.code_fingerprint`; a
    worker refuses a run of other code); ``None`` leaves it out (runs stored before it was recorded).
    """
    opt = create_optimizer(optimizer, **tuned)  # validates names and values
    # JSON has no inf: an infinite setting is stored as None, which the one constructor that takes inf reads
    # back as it (Prodigy's growth_rate, as in its state dict); the rebuilt optimizer is checked to be the same
    hyper = {k: None if isinstance(v, float) and v == math.inf else v for k, v in opt.hyperparameters.items()}
    if create_optimizer(optimizer, **hyper).hyperparameters != opt.hyperparameters:
        raise ValueError(f"{optimizer}: hyperparameters {opt.hyperparameters} cannot be stored as JSON")
    config = {
        "problem": problem,
        "problem_options": dict(options),
        "optimizer": optimizer,
        "hyperparameters": hyper,
        "seed": int(seed),
        "steps": int(steps),
        "npoptim_version": version,
    }
    if code is not None:
        config["npoptim_code"] = code
    return config


def _optimizer(config: Mapping[str, Any]) -> Any:
    """The run's optimizer (its default backend: the compiled path only where it pays, never other results)."""
    return create_optimizer(config["optimizer"], **config["hyperparameters"])


def _record_steps(steps: int, n_records: int = N_RECORDS) -> np.ndarray:
    every = max(1, steps // n_records)
    return np.unique(np.r_[np.arange(0, steps + 1, every), steps]).astype(np.int64)


def _curve(values: np.ndarray, record: np.ndarray, upto: int | None) -> np.ndarray:
    """The metric at the ``record`` steps a run reached (``upto``: its last valid step); inf elsewhere or above
    :data:`DIVERGED`."""
    curve = np.full(len(record), np.inf)
    n = len(values) if upto is None else min(len(values), int(np.searchsorted(record, upto, side="right")))
    curve[:n] = values[:n]
    curve[~(np.isfinite(curve) & (curve <= DIVERGED))] = np.inf
    return curve


def _run_function(config: Mapping[str, Any]) -> dict[str, Any]:
    f = get_function(config["problem"])
    opts = config["problem_options"]
    steps = int(config["steps"])
    rng = np.random.default_rng(int(config["seed"]))
    x = np.asarray(f.start, dtype=float) + float(opts["start_jitter"]) * rng.standard_normal(f.dim)
    # a 2-to-10-element problem: the compiled parallel path only adds overhead (and numba's start-up)
    opt = _optimizer(config)
    sigma = float(opts["grad_noise"])
    noise = (lambda: sigma * rng.standard_normal(f.dim)) if sigma else None
    record = _record_steps(steps)
    run = run_path(f, opt, x, steps, noise=noise, ceiling=DIVERGED)
    reached = record[record < len(run.values)]
    curve = _curve(run.values[reached] - f.minimum, record, None)
    diverged = run.stopped
    return {
        "final": math.inf if diverged else float(curve[-1]),
        "diverged": diverged,
        "curve_x": record,
        "curve": curve,
        "metrics": {"distance_to_minimum": float(f.distance_to_minimum(run.points[-1])) if not diverged else None},
    }


#: Points of the training-loss curve: each costs a forward pass over the whole training set
#: (on MNIST more than 100 mini-batch steps), so fewer than for test functions.
TRAINING_RECORDS = 25


@functools.lru_cache(maxsize=4)
def dataset(problem: str, data_dir: str | None) -> Any:
    """The data set of a training problem, loaded once per process."""
    from ..problems import data

    if problem == "digits":
        return data.load_digits()
    if problem == "mnist":
        if not data_dir:
            raise ValueError("problem 'mnist' needs a data directory")
        return data.load_mnist(data_dir)
    raise ValueError(f"unknown training problem {problem!r}")


def _run_training(config: Mapping[str, Any]) -> dict[str, Any]:
    """One training run under ``npoptim train``'s seeding and batch order (:func:`npoptim.engine.train`).

    The difference from ``npoptim train``: a sweep sets *every* hyperparameter of the optimizer.  The metric is
    the loss on the whole training set (not the noisy mini-batch loss) at about :data:`TRAINING_RECORDS` steps;
    ``metrics`` adds the final held-out accuracy and loss.
    """
    from threadpoolctl import threadpool_limits

    from ..problems import nn

    opts = config["problem_options"]
    data = dataset(config["problem"], opts.get("data_dir"))
    steps = int(config["steps"])
    record = _record_steps(steps, TRAINING_RECORDS)
    x, y = data.x_train, data.y_train
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(over="ignore", invalid="ignore"):
        run = train(opts["hidden"], data, _optimizer(config), seed=int(config["seed"]), steps=steps,
                    batch_size=int(opts["batch_size"]), record=lambda params: nn.loss(params, x, y),
                    record_steps=record, stop=lambda value: not math.isfinite(value) or value > DIVERGED)
        diverged = run.diverged_at is not None
        curve = _curve(np.array(run.records, dtype=float), record, run.diverged_at)
        metrics: dict[str, Any] = {}
        if not diverged:
            held = nn.loss(run.params, data.x_held_out, data.y_held_out)
            metrics = {
                "held_out_accuracy": nn.accuracy(run.params, data.x_held_out, data.y_held_out),
                "held_out_loss": held if math.isfinite(held) else None,
            }
    return {
        "final": math.inf if diverged else float(curve[-1]),
        "diverged": diverged,
        "curve_x": record,
        "curve": curve,
        "metrics": metrics,
    }


def run_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Run one configuration; never raises.

    Returns ``{"status": "ok" | "failed", "error", "final", "diverged",
    "curve_x", "curve", "metrics", "wall_s", "worker"}``.
    """
    start = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        if config.get("npoptim_version") != __version__:
            raise ValueError(
                f"run was configured for npoptim {config.get('npoptim_version')!r} "
                f"but this worker has npoptim {__version__!r}"
            )
        if "npoptim_code" in config and config["npoptim_code"] != code_fingerprint():
            raise ValueError(
                f"run was configured for npoptim code {config['npoptim_code']!r} "
                f"but this worker has npoptim code {code_fingerprint()!r} (other source files)"
            )
        problem = config["problem"]
        if problem in TRAINING_PROBLEMS:
            out = _run_training(config)
        elif problem.partition(":")[0] in FUNCTIONS:
            out = _run_function(config)
        else:
            raise ValueError(f"unknown problem {problem!r}")
        out.update(status="ok", error=None)
    except Exception as exc:  # noqa: BLE001 -- a failed run is data, recorded with its error
        tb = traceback.format_exc(limit=-3)
        out = {"status": "failed", "error": f"{type(exc).__name__}: {exc}\n{tb}"}
    out["wall_s"] = time.perf_counter() - start
    out["worker"] = worker
    return out
