r"""The training loop: the book's MLP (:mod:`npoptim.nn`) on a data set (:mod:`npoptim.data`), one optimizer, one seed.

:func:`train` is the only training loop in the package; ``npoptim train``,
``npoptim compare`` and every training run of a sweep call it.  Seeding:
``np.random.SeedSequence(seed).spawn(2)`` gives one generator for the
He-initialised weights and one for the batch order (:func:`batch_order`), so
every optimizer of one seed starts from the same weights and sees the same
mini-batches.  BLAS runs on one thread (``threadpoolctl``): the matrices are
small, and the numbers then do not depend on the machine's core count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TrainRun", "train", "evaluation_point", "initial_state", "batch_order", "moving_average", "fingerprint"]


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    r"""Trailing moving average: :math:`\bar\ell_t = \frac{1}{m}\sum_{i=t-m+1}^{t} \ell_i`, :math:`m = \min(w, t+1)`.

    >>> moving_average(np.array([4.0, 2.0, 0.0, 2.0]), 2)
    array([4., 3., 1., 1.])
    """
    values = np.asarray(values, dtype=np.float64)
    if window < 1:
        raise ValueError(f"smoothing window must be >= 1, got {window}")
    csum = np.concatenate([[0.0], np.cumsum(values)])
    t = np.arange(1, len(values) + 1)
    lo = np.maximum(t - window, 0)
    return (csum[t] - csum[lo]) / (t - lo)


def batch_order(n: int, batch_size: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of every mini-batch, shape ``(steps, batch_size)``: each epoch a permutation of ``range(n)``."""
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch size must be in [1, {n}] (the training set size), got {batch_size}")
    per_epoch = n // batch_size
    epochs = -(-steps // per_epoch)
    batches = [rng.permutation(n)[: per_epoch * batch_size].reshape(per_epoch, batch_size) for _ in range(epochs)]
    return np.concatenate(batches)[:steps]


def fingerprint(params: Mapping[str, np.ndarray]) -> str:
    """A short sha256 of a parameter dict's names and bytes (identical initial weights have one)."""
    h = hashlib.sha256()
    for key in sorted(params):
        h.update(key.encode())
        h.update(np.ascontiguousarray(params[key]).tobytes())
    return h.hexdigest()[:16]


def initial_state(data: Any, hidden: Sequence[int], seed: int, batch_size: int,
                  steps: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The initial weights and the batch order of ``seed``: what every optimizer of that seed shares."""
    from ..problems import nn

    sizes = nn.layer_sizes(data.n_features, list(hidden), data.n_classes)
    init_rng, batch_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    params = nn.init_params(sizes, rng=init_rng, dtype=data.x_train.dtype.type)
    return params, batch_order(len(data.y_train), batch_size, steps, batch_rng)


@dataclass
class TrainRun:
    """What :func:`train` returns.

    ``losses``: the mini-batch loss of every step, with the parameters before
    that step's update (NaN from the step the run stopped at on);
    ``records``: ``record(params)`` at each step of ``record_steps`` the run
    reached, in order; ``diverged_at``: the step at which the loss, a gradient
    or ``stop(record)`` ended the run (None: it ran its budget); ``params``:
    the last parameters.
    """

    params: dict[str, np.ndarray]
    losses: np.ndarray
    records: list[Any]
    diverged_at: int | None
    initial_params_sha256: str


def evaluation_point(optimizer: Any, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The parameters a model is evaluated at: ``params`` itself, except for an optimizer that evaluates
    elsewhere (one with ``evaluating(params)``, the schedule-free rules: their average :math:`x`, not the
    training point :math:`y`).  Then it is a copy, written by the optimizer's own ``evaluating`` on a
    copy, so the training point is not touched (a switch there and back is not exact in floating point)."""
    if not callable(getattr(optimizer, "evaluating", None)):
        return params
    point = {key: value.copy() for key, value in params.items()}
    with optimizer.evaluating(point):
        return {key: value.copy() for key, value in point.items()}


def train(
    hidden: Sequence[int],
    data: Any,
    optimizer: Any,
    *,
    seed: int,
    steps: int,
    batch_size: int,
    weight_decay_lambda: float = 0.0,
    record: Callable[[dict[str, np.ndarray]], Any] | None = None,
    record_steps: Iterable[int] = (),
    stop: Callable[[Any], bool] | None = None,
) -> TrainRun:
    """Train the MLP with ``hidden`` layers on ``data`` with ``optimizer``, ``steps`` mini-batches of ``batch_size``.

    Before the update of each step in ``record_steps`` (and after the last,
    for step ``steps``) ``record(params)`` is called; a record for which
    ``stop`` is true ends the run as diverged (and is not kept).  A non-finite
    mini-batch loss ends the run at that step; so does a
    :class:`~npoptim.errors.NonFiniteGradientError`, after the record of the
    next step (it sees the parameters the failed update left).  ``record`` and the returned ``params`` see
    :func:`evaluation_point` (for schedule-free rules their average :math:`x`, as their paper evaluates).
    """
    from threadpoolctl import threadpool_limits

    from ..errors import NonFiniteGradientError
    from ..problems import nn

    initial, order = initial_state(data, hidden, seed, batch_size, steps)
    params = {key: value.copy() for key, value in initial.items()}
    at = set(record_steps) if record is not None else set()
    losses = np.full(steps, np.nan)
    records: list[Any] = []
    x, y, lam = data.x_train, data.y_train, weight_decay_lambda
    diverged = None
    # A run that diverges overflows on the way; it is detected and reported, so numpy's warnings are silenced.
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            if t in at:
                value = record(evaluation_point(optimizer, params))
                if stop is not None and stop(value):
                    diverged = t
                    break
                records.append(value)
            if t == steps or diverged is not None:
                break
            idx = order[t]
            loss, grads = nn.loss_and_grads(params, x[idx], y[idx], weight_decay_lambda=lam)
            if not np.isfinite(loss):
                diverged = t
                break
            losses[t] = loss
            try:
                optimizer.update(params, grads)
            except NonFiniteGradientError:
                diverged = t
    return TrainRun(params=evaluation_point(optimizer, params), losses=losses, records=records, diverged_at=diverged,
                    initial_params_sha256=fingerprint(initial))
