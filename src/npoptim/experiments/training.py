r"""`npoptim train`: the book's optimizer comparison on a real classification task.

Protocol ("Deep Learning from Scratch", section 6.1.8, made fair and repeatable)
---------------------------------------------------------------------------------
* Network: :mod:`npoptim.nn`, inputs -> 4 hidden ReLU layers of 100 -> 10 classes,
  softmax cross-entropy, He initialisation.
* For every seed :math:`s`: ``np.random.SeedSequence(s).spawn(2)`` gives one
  generator for the initial weights and one for the batch order.  Every
  optimizer starts from a copy of *the same* initial weights and sees *the same*
  mini-batches in the same order (each epoch a fresh permutation of the
  training set, batches of 128 taken in turn, the last partial batch of an
  epoch dropped).  So the only difference between two runs of one seed is the
  update rule.
* Learning rate: the book uses :math:`\eta = 0.01` for every optimizer; so do
  we (:data:`DEFAULT_LR`), for every registered optimizer, including ones added
  later -- except Prodigy, whose ``lr`` multiplies its own estimated step (1, :data:`DEFAULT_LRS`).
  ``--lr name=value`` overrides it.  This compares the rules at one
  common, untuned step size; a per-optimizer tuned comparison would answer a
  different question.
* Recorded: the raw mini-batch loss at every step (with the parameters before
  that step's update); its trailing moving average over
  ``smooth_window`` steps (:func:`moving_average`); every ``eval_every``
  steps, the held-out accuracy and loss; at the end, the loss on the whole
  training set.  Steps to target: the first step count :math:`t` at which the
  smoothed loss is at most ``target_loss``.
* Summaries are mean and sample standard deviation (``ddof=1``) across seeds.
* BLAS runs on one thread (``threadpoolctl``): the matrices are small, so
  threads only add overhead, and the numbers then do not depend on the
  machine's core count.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.training import batch_order, moving_average, train
from ..optimizers import display_name
from ..report.files import versions, write_json
from ..report.training import FIGURE_NAME, LOSSES_NAME, write_training

__all__ = [
    "DEFAULT_LR",
    "DEFAULT_STEPS",
    "default_lr",
    "moving_average",
    "batch_order",
    "TrainingResult",
    "run_training",
    "write_training",
    "write_json",
    "versions",
    "FIGURE_NAME",
    "LOSSES_NAME",
    "load_dataset",
]

#: The book's learning rate for every optimizer in its MNIST comparison; also the fallback for new optimizers.
DEFAULT_LR = 0.01
#: Per-optimizer exceptions to :data:`DEFAULT_LR`: the book's protocol uses one rate for all, but Prodigy's
#: ``lr`` is not a step size -- it multiplies the step Prodigy estimates itself, and its paper fixes it at 1.
DEFAULT_LRS: dict[str, float] = {"prodigy": 1.0}
DEFAULT_STEPS = 1000
DEFAULT_BATCH_SIZE = 128
DEFAULT_HIDDEN = (100, 100, 100, 100)
DEFAULT_SEEDS = 3
DEFAULT_TARGET_LOSS = 0.1
DEFAULT_SMOOTH_WINDOW = 50


def default_lr(name: str) -> float:
    """The learning rate ``npoptim train`` uses for ``name`` unless told otherwise."""
    return DEFAULT_LRS.get(name.lower(), DEFAULT_LR)


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """Mean, sample std (0 for one value) and count of the finite values; ``None`` if there are none."""
    finite = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return None, None, 0
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return float(finite.mean()), std, int(finite.size)


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


@dataclass
class TrainingResult:
    """Everything one training comparison produced.

    ``results`` is JSON-serialisable (configuration, table, per-run numbers,
    held-out curves); the arrays hold the per-step curves by optimizer,
    shape ``(n_seeds, steps)`` (NaN after a divergence).
    """

    results: dict[str, Any]
    raw_loss: dict[str, np.ndarray] = field(default_factory=dict)
    smoothed_loss: dict[str, np.ndarray] = field(default_factory=dict)


def _resolve_optimizers(optimizers: Sequence[str] | None, lrs: Mapping[str, float] | None) -> dict[str, float]:
    from ..optimizers import ALIASES, select_optimizers

    names = select_optimizers(optimizers)  # None: the book's six; "all": ALL_OPTIMIZERS
    lrs = {ALIASES.get(str(k).lower(), str(k).lower()): v for k, v in (lrs or {}).items()}
    stray = sorted(set(lrs) - set(names))
    if stray:
        raise ValueError(f"learning rate given for {', '.join(stray)}, which is not among the optimizers {names}")
    chosen = {}
    for name in names:
        lr = lrs.get(name, default_lr(name))
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning rate for {name} must be a finite number > 0, got {lr!r}")
        chosen[name] = float(lr)
    return chosen


def run_training(
    data: Any,
    *,
    optimizers: Sequence[str] | None = None,
    lrs: Mapping[str, float] | None = None,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    hidden: Sequence[int] = DEFAULT_HIDDEN,
    seeds: int | Sequence[int] = DEFAULT_SEEDS,
    eval_every: int | None = None,
    target_loss: float = DEFAULT_TARGET_LOSS,
    smooth_window: int = DEFAULT_SMOOTH_WINDOW,
    weight_decay_lambda: float = 0.0,
    progress: bool = False,
) -> TrainingResult:
    """Train one network per (optimizer, seed) on ``data`` (a :class:`npoptim.data.Dataset`) under the protocol above.

    ``optimizers`` are registry names (default: the book's six, :data:`npoptim.BOOK_OPTIMIZERS`;
    ``"all"``: every registered one); ``lrs`` maps
    some of them to learning rates (default :func:`default_lr`); ``seeds`` is
    a count (seeds ``0..n-1``) or explicit seeds; ``eval_every`` defaults to
    ``steps // 20``.  ``progress`` shows a tqdm bar on stderr.
    """
    from threadpoolctl import threadpool_limits
    from tqdm.auto import tqdm

    from ..optimizers import create_optimizer
    from ..problems import nn

    chosen = _resolve_optimizers(optimizers, lrs)
    seed_list = list(range(seeds)) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not seed_list or any(s < 0 for s in seed_list) or len(set(seed_list)) != len(seed_list):
        raise ValueError(f"seeds must be a positive count or distinct non-negative integers, got {seeds!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    eval_every = max(1, steps // 20) if eval_every is None else eval_every
    if eval_every < 1:
        raise ValueError(f"eval_every must be >= 1, got {eval_every}")
    if not (np.isfinite(target_loss) and target_loss > 0):
        raise ValueError(f"target_loss must be a finite number > 0, got {target_loss!r}")
    sizes = nn.layer_sizes(data.n_features, list(hidden), data.n_classes)
    eval_steps = sorted({*range(0, steps + 1, eval_every), steps})
    x_tr, y_tr, x_ho, y_ho = data.x_train, data.y_train, data.x_held_out, data.y_held_out
    lam = weight_decay_lambda

    def held_out(params: dict[str, np.ndarray]) -> tuple[float, float | None]:
        return nn.accuracy(params, x_ho, y_ho), _finite_or_none(nn.loss(params, x_ho, y_ho, weight_decay_lambda=lam))

    runs: dict[str, dict[str, Any]] = {name: {} for name in chosen}
    raw = {name: np.full((len(seed_list), steps), np.nan) for name in chosen}
    curves = {name: {"held_out_accuracy": [], "held_out_loss": []} for name in chosen}
    bar = tqdm(total=len(chosen) * len(seed_list) * steps, disable=not progress, unit="step", file=sys.stderr,
               desc="training", mininterval=0.5)
    started = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"), bar, np.errstate(over="ignore", invalid="ignore"):
        for k, seed in enumerate(seed_list):
            for name, lr in chosen.items():
                bar.set_postfix_str(f"{name} seed {seed}", refresh=False)
                run = train(hidden, data, create_optimizer(name, lr=lr), seed=seed, steps=steps,
                            batch_size=batch_size, weight_decay_lambda=lam, record=held_out, record_steps=eval_steps)
                bar.update(steps)
                diverged = run.diverged_at
                raw[name][k] = run.losses
                padding = [None] * (len(eval_steps) - len(run.records))
                acc_curve = [acc for acc, _ in run.records] + padding
                loss_curve = [loss for _, loss in run.records] + padding
                smooth = moving_average(raw[name][k], smooth_window)
                reached = np.flatnonzero(smooth <= target_loss)
                final_loss = nn.loss(run.params, x_tr, y_tr, weight_decay_lambda=lam) if diverged is None else np.nan
                runs[name][str(seed)] = {
                    "initial_params_sha256": run.initial_params_sha256,
                    "final_train_loss": _finite_or_none(final_loss),
                    "final_smoothed_loss": _finite_or_none(smooth[-1]),
                    "held_out_accuracy": acc_curve[-1],
                    "held_out_loss": loss_curve[-1],
                    "steps_to_target": int(reached[0]) if reached.size else None,
                    "diverged_at_step": diverged,
                }
                curves[name]["held_out_accuracy"].append(acc_curve)
                curves[name]["held_out_loss"].append(loss_curve)
    elapsed = time.perf_counter() - started

    table = []
    for name, lr in chosen.items():
        per_seed = list(runs[name].values())
        row: dict[str, Any] = {"optimizer": name, "display_name": display_name(name), "lr": lr,
                               "default_lr": float(create_optimizer(name).hyperparameters["lr"])}
        for key in ("final_train_loss", "held_out_accuracy", "steps_to_target"):
            mean, std, count = _mean_std([r[key] for r in per_seed])
            row[key] = {"mean": mean, "std": std, "n": count}
        row["diverged"] = sum(r["diverged_at_step"] is not None for r in per_seed)
        table.append(row)

    results = {
        "experiment": "training",
        "config": {
            "data": data.summary(),
            "optimizers": list(chosen),
            "lrs": chosen,
            "lr_policy": f"{DEFAULT_LR} for every optimizer unless overridden (the book's MNIST comparison)"
            + "".join(f"; {n} {v:g} (its lr multiplies its own step)" for n, v in DEFAULT_LRS.items() if n in chosen),
            "steps": int(steps),
            "batch_size": int(batch_size),
            "hidden": [int(h) for h in hidden],
            "layer_sizes": sizes,
            "init": "He normal, N(0, 2/fan_in), zero biases",
            "dtype": str(x_tr.dtype),
            "weight_decay_lambda": float(lam),
            "seeds": seed_list,
            "seeding": "SeedSequence(seed).spawn(2): initial weights, batch order; shared by all optimizers",
            "batch_order": "each epoch a permutation of the training set; last partial batch dropped",
            "eval_every": int(eval_every),
            "smoothing": f"trailing moving average over {smooth_window} steps",
            "smooth_window": int(smooth_window),
            "target_loss": float(target_loss),
            "steps_to_target": "first step count at which the smoothed mini-batch loss <= target_loss",
            "std": "sample standard deviation across seeds (ddof=1)",
        },
        "table": table,
        "runs": runs,
        "curves": {"eval_steps": eval_steps, **curves},
        "timing": {"training_seconds": round(elapsed, 2)},
    }
    smoothed = {name: np.stack([moving_average(r, smooth_window) for r in raw[name]]) for name in chosen}
    return TrainingResult(results=results, raw_loss=raw, smoothed_loss=smoothed)


# --- data ------------------------------------------------------------------

MNIST_ENV = "NPOPTIM_MNIST_DIR"


def load_dataset(data: str | None, mnist_dir: str | None) -> Any:
    """The data set the CLI names: ``digits`` (default) or ``mnist`` from ``mnist_dir`` / ``$NPOPTIM_MNIST_DIR``."""
    import os

    from ..problems import data as datasets

    if data is None:
        data = "mnist" if mnist_dir else "digits"
    if data == "digits":
        if mnist_dir:
            raise ValueError("--mnist-dir was given with --data digits; use --data mnist to train on MNIST")
        return datasets.load_digits()
    if data == "mnist":
        directory = mnist_dir or os.environ.get(MNIST_ENV)
        if not directory:
            raise ValueError(f"--data mnist needs --mnist-dir DIR (or the environment variable {MNIST_ENV})")
        return datasets.load_mnist(directory)
    raise ValueError(f"unknown data set {data!r}; choose digits or mnist")
