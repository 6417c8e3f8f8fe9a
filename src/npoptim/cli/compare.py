"""``npoptim compare``: both experiments with their defaults into one directory (:mod:`npoptim.experiments.compare`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..experiments.compare import DEFAULT_OUT, run_compare
from ..experiments.training import DEFAULT_SEEDS, DEFAULT_STEPS
from ._args import parse_lrs, positive_int, show_progress, split_names

HELP = "the main job: trajectories + training comparison -> figures, results.json, report.md in one directory"


def add_arguments(parser: Any) -> None:
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output directory (default ./{DEFAULT_OUT})")
    parser.add_argument("--seeds", type=positive_int, default=None,
                        help=f"training seeds 0..N-1 (default {DEFAULT_SEEDS})")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help=f"training steps per run (default {DEFAULT_STEPS})")
    parser.add_argument("--optimizers", nargs="+", action="extend", metavar="NAME", default=None,
                        help="optimizers, space- or comma-separated: registry names, muon+adamw (Muon for W*, "
                        "AdamW for the rest), schedulefree-adamw, ... or all (default: the book's six)")
    parser.add_argument("--lr", nargs="+", action="extend", metavar="NAME=VALUE", default=None,
                        help="training learning rates, e.g. adam=0.001 (default 0.01 each, the book's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: Any) -> int:
    argv = ["npoptim compare", f"--out {args.out}"]
    argv += [f"--seeds {args.seeds}"] if args.seeds is not None else []
    argv += [f"--steps {args.steps}"] if args.steps is not None else []
    names, lrs = split_names(args.optimizers), parse_lrs(args.lr)
    argv += [f"--optimizers {','.join(names)}"] if names is not None else []
    argv += [f"--lr {' '.join(f'{k}={v:g}' for k, v in lrs.items())}"] if lrs else []
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {args.out!r} exists and is not a directory")
    run_compare(out, seeds=args.seeds, steps=args.steps, optimizers=names, lrs=lrs, progress=show_progress(args),
                command=" ".join(argv))
    return 0
