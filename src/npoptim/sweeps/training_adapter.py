"""One sweep run of the training task: :mod:`npoptim.nn` on :mod:`npoptim.data`, under ``npoptim train``'s protocol.

The seeding, initialisation and batch order are those of
:func:`npoptim.experiments.training.run_training` (``SeedSequence(seed).spawn(2)``:
one generator for the He-initialised weights, one for
:func:`~npoptim.experiments.training.batch_order`), so a run here with only
``lr`` set ends at the same training loss as ``run_training`` for that seed.
The difference: a sweep sets *every* hyperparameter of the optimizer
(momentum, betas, ...), which ``run_training`` does not take.

Recorded metric: the loss on the whole training set (not the noisy mini-batch
loss), at about :data:`TRAINING_RECORDS` evenly spaced steps; ``metrics`` adds the final held-out accuracy and loss.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["run", "dataset", "TRAINING_RECORDS"]

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


def run(config: Mapping[str, Any]) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from ..experiments.training import batch_order
    from ..problems import nn
    from .problems import _optimizer, _record_steps, run_recorded

    opts = config["problem_options"]
    data = dataset(config["problem"], opts.get("data_dir"))
    steps = int(config["steps"])
    seed = int(config["seed"])
    sizes = nn.layer_sizes(data.n_features, list(opts["hidden"]), data.n_classes)
    init_rng, batch_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    params = nn.init_params(sizes, rng=init_rng, dtype=data.x_train.dtype.type)
    order = batch_order(len(data.y_train), int(opts["batch_size"]), steps, batch_rng)
    opt = _optimizer(config)
    record = _record_steps(steps, TRAINING_RECORDS)
    x, y = data.x_train, data.y_train

    def gradient(t: int) -> dict[str, np.ndarray]:
        idx = order[t]
        return nn.loss_and_grads(params, x[idx], y[idx])[1]

    with threadpool_limits(limits=1, user_api="blas"), np.errstate(over="ignore", invalid="ignore"):
        curve, diverged = run_recorded(opt, params, record, lambda: nn.loss(params, x, y), gradient)
        metrics: dict[str, Any] = {}
        if not diverged:
            held = nn.loss(params, data.x_held_out, data.y_held_out)
            metrics = {
                "held_out_accuracy": nn.accuracy(params, data.x_held_out, data.y_held_out),
                "held_out_loss": held if math.isfinite(held) else None,
            }
    return {
        "final": math.inf if diverged else float(curve[-1]),
        "diverged": diverged,
        "curve_x": record,
        "curve": curve,
        "metrics": metrics,
    }
