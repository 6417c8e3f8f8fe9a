"""``npoptim trajectories``: optimizer paths on test functions (:mod:`npoptim.experiments.trajectories`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..experiments.trajectories import DEFAULT_LR_GRID, DEFAULT_OUT, DEFAULT_TOL, THEORY_STEPS, run_trajectories

HELP = "paths of optimizers on 2-D test functions (the book's figure), fair lr tuning, theory vs measurement"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``npoptim trajectories``."""
    parser.add_argument("--function", default="anisotropic", metavar="SPEC",
                        help="test function: anisotropic (default), rosenbrock, beale, booth, himmelblau, rastrigin, "
                             "quadratic; parameters after a colon, e.g. quadratic:kappa=100,dim=10")
    parser.add_argument("--optimizers", default=None, metavar="A,B,...",
                        help="comma-separated optimizer names, or all (default: the book's six)")
    parser.add_argument("--lr", action="append", default=[], metavar="NAME=LR",
                        help="learning rate for one optimizer, repeatable (default: the book's: sgd=0.95 momentum=0.1 "
                             "nesterov=0.1 adagrad=1.5 rmsprop=0.1 adam=0.3)")
    parser.add_argument("--start", nargs="+", default=None, metavar="X",
                        help="start point, one number per coordinate (default: the function's usual start)")
    parser.add_argument("--steps", default="30", metavar="N", help="updates per optimizer (default 30)")
    parser.add_argument("--tune", action="store_true",
                        help="also tune every lr on one log-spaced grid, same budget, objective f(x_T) - f*")
    parser.add_argument("--grid", nargs=3, default=None, metavar=("LOW", "HIGH", "POINTS"),
                        help="tuning grid: LOW HIGH POINTS, log-spaced (default {:g} {:g} {})".format(*DEFAULT_LR_GRID))
    parser.add_argument("--tol", default=str(DEFAULT_TOL), metavar="D",
                        help=f"distance to a minimiser counted as arrived, for steps_to_tol (default {DEFAULT_TOL:g})")
    parser.add_argument("--theory-steps", default=str(THEORY_STEPS), metavar="N",
                        help=f"quadratics: measure rates over max(steps, N) updates (default {THEORY_STEPS})")
    parser.add_argument("--animate", action="store_true", help="also write trajectories.gif (2-D functions)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                        help=f"output folder (default ./{DEFAULT_OUT.as_posix()})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no summary on stdout")


def _number(option: str, raw: str, kind: type = float) -> Any:
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{option}: invalid {'integer' if kind is int else 'number'} {raw!r}") from None


def _parse_lrs(items: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        for part in filter(None, (s.strip() for s in item.split(","))):
            name, eq, raw = part.partition("=")
            if not eq or not name.strip():
                raise ValueError(f"--lr {part!r}: expected NAME=LR, e.g. --lr sgd=0.95")
            out[name.strip().lower()] = _number(f"--lr {name.strip()}", raw.strip())
    return out


def run(args: argparse.Namespace) -> int:
    """Run ``npoptim trajectories`` from parsed arguments; return the exit status."""
    optimizers = None if args.optimizers is None else [s.strip() for s in args.optimizers.split(",") if s.strip()]
    if optimizers is not None and not optimizers:
        raise ValueError(f"--optimizers {args.optimizers!r}: no optimizer named")
    start = None if args.start is None else tuple(_number("--start", s) for s in args.start)
    grid = DEFAULT_LR_GRID
    if args.grid is not None:
        low, high, points = args.grid
        grid = (_number("--grid LOW", low), _number("--grid HIGH", high), _number("--grid POINTS", points, int))
    result = run_trajectories(
        Path(args.out),
        function=args.function,
        optimizers=optimizers,
        lrs=_parse_lrs(args.lr),
        start=start,
        steps=_number("--steps", args.steps, int),
        tune=args.tune,
        animate=args.animate,
        progress=not args.quiet,
        grid=grid,
        tol=_number("--tol", args.tol),
        theory_steps=_number("--theory-steps", args.theory_steps, int),
    )
    if not args.quiet:
        out = Path(args.out)
        print(result["summary_markdown"])
        if result["theory_markdown"]:
            print()
            print(result["theory_markdown"])
        print()
        for file in [*result["figures"].values(), "trajectories.json", "trajectories.md"]:
            print(f"wrote {out / file}")
    return 0
