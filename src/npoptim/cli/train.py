"""``npoptim train``: the book's optimizer comparison on digits or MNIST (see :mod:`npoptim.experiments.training`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..experiments import training
from ..experiments.training import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_HIDDEN,
    DEFAULT_LR,
    DEFAULT_SEEDS,
    DEFAULT_STEPS,
    DEFAULT_TARGET_LOSS,
    MNIST_ENV,
)
from ..report.files import versions, write_json, write_text
from ..report.training import write_training
from ._args import hidden_sizes, parse_lrs, positive_int, show_progress, split_names

HELP = "train the book's 4x100 network on digits (or MNIST) with each optimizer and compare loss curves"


def add_arguments(parser: Any) -> None:
    parser.add_argument("--data", choices=("digits", "mnist"), default=None,
                        help="digits (scikit-learn's 8x8 digits, embedded; default) or mnist (IDX files)")
    parser.add_argument("--mnist-dir", metavar="DIR", default=None,
                        help=f"directory of MNIST IDX files, gzip or raw (default: ${MNIST_ENV})")
    parser.add_argument("--optimizers", nargs="+", action="extend", metavar="NAME", default=None,
                        help="optimizers to compare, space- or comma-separated, or all (default: the book's six)")
    parser.add_argument("--lr", nargs="+", action="extend", metavar="NAME=VALUE", default=None,
                        help=f"learning rate per optimizer (default {DEFAULT_LR} for all, as in the book)")
    parser.add_argument("--steps", type=positive_int, default=DEFAULT_STEPS,
                        help=f"updates per run (default {DEFAULT_STEPS})")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE,
                        help=f"mini-batch size (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--hidden", type=hidden_sizes, default=DEFAULT_HIDDEN, metavar="N,N,...",
                        help="hidden layer sizes (default 100,100,100,100)")
    parser.add_argument("--seeds", type=positive_int, default=DEFAULT_SEEDS,
                        help=f"number of seeds, 0..N-1 (default {DEFAULT_SEEDS})")
    parser.add_argument("--eval-every", type=positive_int, default=None,
                        help="steps between held-out evaluations (default steps/20)")
    parser.add_argument("--target-loss", type=float, default=DEFAULT_TARGET_LOSS,
                        help=f"smoothed training loss for 'steps to target' (default {DEFAULT_TARGET_LOSS})")
    parser.add_argument("--weight-decay", type=float, default=0.0, metavar="LAMBDA",
                        help="L2 penalty lambda/2 * sum W^2 in the loss (default 0)")
    parser.add_argument("--out", default="train_results", metavar="DIR",
                        help="output directory (default ./train_results)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: Any) -> int:
    from ..report import markdown as report

    if args.weight_decay < 0 or not math.isfinite(args.weight_decay):
        raise ValueError(f"--weight-decay must be a finite number >= 0, got {args.weight_decay}")
    lrs = parse_lrs(args.lr)
    names = split_names(args.optimizers)
    training._resolve_optimizers(names, lrs)  # check names and rates before loading data
    data = training.load_dataset(args.data, args.mnist_dir)
    out = Path(args.out)
    result = training.run_training(
        data,
        optimizers=names,
        lrs=lrs,
        steps=args.steps,
        batch_size=args.batch_size,
        hidden=args.hidden,
        seeds=args.seeds,
        eval_every=args.eval_every,
        target_loss=args.target_loss,
        weight_decay_lambda=args.weight_decay,
        progress=show_progress(args),
    )
    out.mkdir(parents=True, exist_ok=True)
    write_training(out, result)
    payload = {"command": "npoptim train", "versions": versions(), "training": result.results}
    write_json(out / "results.json", payload)
    write_text(out / "report.md", report.training_report(payload))
    return 0
