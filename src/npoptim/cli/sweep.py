"""``npoptim sweep``: fair, seeded, resumable optimizer comparisons (see docs/sweeps.md).

Examples::

    npoptim sweep --problems rosenbrock beale --db sweep.db --out sweep-report
    npoptim sweep --problems rosenbrock --db sweep.db --scheduler tcp://10.0.0.5:8786
    npoptim sweep --optimizers adam prodigy --lr-range prodigy=0.3:3   # one optimizer's lr range
    npoptim sweep --resume sweep.db                 # continue an interrupted sweep
    npoptim sweep --report sweep.db --out report    # tables and figures, nothing recomputed
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._args import hidden_sizes, positive_int

HELP = "tune every optimizer with equal budgets, rerun the best over seeds, report curves and performance profiles"

DEFAULT_PROBLEMS = ("anisotropic", "rosenbrock", "beale", "booth", "himmelblau", "quadratic:kappa=100,dim=10")


def _n_jobs(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer (-1: all cores), got {text!r}") from None
    if v == 0 or v < -1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or -1 (all cores), got {text!r}")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..optimizers import BOOK_OPTIMIZERS

    mode = parser.add_argument_group("what to do (default: run or resume the sweep described by the options)")
    ex = mode.add_mutually_exclusive_group()
    ex.add_argument("--resume", metavar="DB", help="continue the sweep stored in DB with its stored settings")
    ex.add_argument("--report", metavar="DB", help="only render tables and figures from DB; runs nothing")

    s = parser.add_argument_group("the sweep")
    spec_actions: list[argparse.Action] = []

    def spec_option(*names: str, **kwargs) -> None:
        spec_actions.append(s.add_argument(*names, **kwargs))

    spec_option("--problems", nargs="+", metavar="SPEC", default=list(DEFAULT_PROBLEMS),
                   help="test-function specs of npoptim.functions (e.g. rosenbrock, 'quadratic:kappa=100,dim=10') "
                   "and/or the training tasks digits, mnist (default: %(default)s)")
    spec_option("--optimizers", nargs="+", metavar="NAME", default=list(BOOK_OPTIMIZERS),
                   help="names from the optimizer registry, or 'all' (default: the book's six: %(default)s)")
    spec_option("--search", choices=("random", "grid"), default="random", help="search method (default: random)")
    spec_option("--space", choices=("full", "lr"), default="full",
                   help="tune lr plus each optimizer's table of hyperparameters (full), or lr only (default: full)")
    spec_option("--budget", type=positive_int, default=20,
                   help="settings tried per optimizer and problem, the same for all (default: 20)")
    spec_option("--lr-range", nargs="+", action="extend", metavar="LOW HIGH | NAME=LOW:HIGH", default=None,
                   help="log-uniform learning-rate ranges: LOW HIGH for every optimizer, NAME=LOW:HIGH for one "
                   "(both may be given, and the option repeated; NAME=... wins). Default: each optimizer's own "
                   "range, two decades either side of its default lr except where the table of "
                   "npoptim.sweeps.space.LR_RANGES says otherwise (e.g. prodigy 0.01:10)")
    spec_option("--steps", type=positive_int, default=200, help="updates per run (default: 200)")
    spec_option("--seeds", type=positive_int, default=5, help="seeds the best setting is rerun with (default: 5)")
    spec_option("--tune-seeds", type=positive_int, default=1, help="seeds per tuning run (default: 1)")
    spec_option("--search-seed", type=int, default=0, help="seed of the random search (default: 0)")
    spec_option("--start-jitter", type=float, default=0.1,
                   help="test functions: std of the Gaussian perturbation of the start per seed (default: 0.1)")
    spec_option("--grad-noise", type=float, default=0.0,
                   help="test functions: std of Gaussian noise added to each gradient (default: 0)")
    spec_option("--profile-tol", type=float, default=1e-3,
                   help="performance-profile target f_L + tol (f(x0) - f_L) (default: 1e-3)")
    spec_option("--data-dir", help="directory with the MNIST IDX files (problem mnist)")
    spec_option("--hidden", type=hidden_sizes, default=(100, 100, 100, 100),
                   help="training problems: hidden layer sizes, comma-separated (default: 100,100,100,100)")
    spec_option("--batch-size", type=positive_int, default=128, help="training problems: batch size "
                   "(default: 128)")

    # with --resume / --report the stored specification rules; remember the defaults to catch ignored options
    parser.set_defaults(_spec_defaults={a.dest: a.default for a in spec_actions})

    r = parser.add_argument_group("running")
    r.add_argument("--db", default="sweep.db", help="the SQLite store; created or resumed (default: sweep.db)")
    r.add_argument("--out", default=None, help="directory for report.md, results.json and figures "
                   "(default: DB's name without .db, plus -report)")
    r.add_argument("--n-jobs", type=_n_jobs, default=-1, help="local worker processes (default: -1, all cores)")
    r.add_argument("--scheduler", metavar="ADDRESS", help="run on the Dask cluster of this scheduler "
                   "(e.g. tcp://10.0.0.5:8786) instead of the local pool")
    r.add_argument("--retries", type=int, default=2, help="Dask: retries of a task that raised (default: 2)")
    r.add_argument("--chunk-size", type=positive_int, default=1,
                   help="Dask: runs per task; >1 amortises the scheduler's per-task cost for very short runs "
                   "(default: 1)")
    r.add_argument("--retry-failed", action="store_true", help="run again the runs stored as failed")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--no-report", action="store_true", help="run only; write no report")


def _out_dir(args: argparse.Namespace, db: str) -> Path:
    if args.out:
        return Path(args.out)
    p = Path(db)
    return p.with_name(p.stem + "-report")


def parse_lr_ranges(items: list[str] | None) -> tuple[tuple[float, float] | None, dict[str, tuple[float, float]]]:
    """``--lr-range`` tokens -> (the range for every optimizer or None, {name: range}); the ranges themselves
    (low < high, finite, > 0) and the names are checked by the sweep's specification.

    >>> parse_lr_ranges(["1e-4", "1", "prodigy=0.1:10"])
    ((0.0001, 1.0), {'prodigy': (0.1, 10.0)})
    """
    common: list[float] = []
    per: dict[str, tuple[float, float]] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            try:
                common.append(float(item))
            except ValueError:
                raise ValueError(f"--lr-range {item!r}: expected a number (LOW HIGH) or NAME=LOW:HIGH, "
                                 "e.g. prodigy=0.1:10") from None
            continue
        low, colon, high = value.partition(":")
        try:
            if not name or not colon:
                raise ValueError
            rng = (float(low), float(high))
        except ValueError:
            raise ValueError(f"--lr-range {item!r}: expected NAME=LOW:HIGH with two numbers, e.g. "
                             "prodigy=0.1:10") from None
        if name.lower() in per:
            raise ValueError(f"--lr-range: {name!r} given twice")
        per[name.lower()] = rng
    if common and len(common) != 2:
        raise ValueError(f"--lr-range: the range for every optimizer is two numbers LOW HIGH, got "
                         f"{len(common)}: {' '.join(f'{v:g}' for v in common)}")
    return (tuple(common) if common else None), per  # type: ignore[return-value]


def _spec_from_args(args: argparse.Namespace):
    from ..optimizers import select_optimizers
    from ..sweeps.protocol import SweepSpec

    lr_range, lr_ranges = parse_lr_ranges(args.lr_range)
    return SweepSpec(
        problems=tuple(args.problems),
        optimizers=tuple(select_optimizers(args.optimizers)),
        search=args.search,
        space=args.space,
        budget=args.budget,
        lr_range=lr_range,
        lr_ranges=lr_ranges,
        steps=args.steps,
        seeds=args.seeds,
        tune_seeds=args.tune_seeds,
        search_seed=args.search_seed,
        start_jitter=args.start_jitter,
        grad_noise=args.grad_noise,
        profile_tol=args.profile_tol,
        data_dir=args.data_dir,
        hidden=tuple(args.hidden),
        batch_size=args.batch_size,
    )


def _stored_spec(db: str):
    from ..sweeps.protocol import SweepSpec
    from ..sweeps.store import Store

    with Store(db, create=False) as store:
        text = store.get_meta("spec")
    if text is None:
        raise ValueError(f"sweep store {db!r} holds no sweep specification (was a sweep ever started with it?)")
    return SweepSpec.from_json(text)


def _render(spec, db: str, out: Path, quiet: bool) -> None:
    from ..sweeps.protocol import summarise
    from ..sweeps.report import write_report
    from ..sweeps.store import Store

    with Store(db, create=False) as store:
        summary = summarise(spec, store)
    write_report(summary, out, store_path=db)
    if not quiet:
        print(f"report written to {out / 'report.md'}" + ("" if summary["complete"] else " (sweep incomplete)"),
              file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from ..sweeps.execute import DaskBackend, JoblibBackend
    from ..sweeps.protocol import done_counts, open_sweep, run_sweep
    from ..sweeps.store import Store

    mode = "--report" if args.report else "--resume" if args.resume else None
    if mode:
        given = sorted(d for d, v in args._spec_defaults.items() if getattr(args, d) != v)
        if given:
            opts = ", ".join("--" + d.replace("_", "-") for d in given)
            raise ValueError(f"{opts} cannot be combined with {mode}: the sweep's stored settings are used")
    if args.report:
        _render(_stored_spec(args.report), args.report, _out_dir(args, args.report), args.quiet)
        return 0
    if args.resume:
        db, spec = args.resume, _stored_spec(args.resume)
    else:
        db, spec = args.db, _spec_from_args(args)
    if args.retries < 0:
        raise ValueError(f"invalid --retries {args.retries}: must be >= 0")
    if args.scheduler:
        backend = DaskBackend(args.scheduler, retries=args.retries, chunk_size=args.chunk_size)
    else:
        backend = JoblibBackend(args.n_jobs)

    show = not args.quiet and sys.stderr.isatty()
    with Store(db) as store:
        open_sweep(store, spec)
        done, total = done_counts(spec, store)
        bar = None
        if show:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=done, unit="run", desc="sweep", dynamic_ncols=True, smoothing=0.05)
            bar.write(f"npoptim sweep: {total} runs ({done} already stored in {db}) on {backend.describe()}")

        def on_result(config, result):
            if bar is not None:
                bar.update(1)
                if result["status"] != "ok":
                    bar.write(f"failed: {config['problem']} {config['optimizer']} seed {config['seed']}: "
                              f"{result['error'].splitlines()[0]}")

        try:
            run_sweep(spec, store, backend, retry_failed=args.retry_failed, on_result=on_result)
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            print(f"npoptim sweep: interrupted; {store.count()} runs are stored in {db}; "
                  f"run `npoptim sweep --resume {db}` to continue", file=sys.stderr)
            return 130
        finally:
            if bar is not None:
                bar.close()
        n_failed = store.count("failed")
    if n_failed and not args.quiet:
        print(f"npoptim sweep: {n_failed} run(s) failed (stored with their errors); --retry-failed runs them again",
              file=sys.stderr)
    if not args.no_report:
        _render(spec, db, _out_dir(args, db), args.quiet)
    return 0
