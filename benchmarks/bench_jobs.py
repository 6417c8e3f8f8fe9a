"""Wall time of whole jobs, and how much of it is optimizer time.

    python benchmarks/bench_jobs.py                  # npoptim compare + a 1000-step sweep, in this process
    python benchmarks/bench_jobs.py --jobs sweep --warm-up  # with the compiled kernels loaded first

Runs each job through ``npoptim.cli.main`` in this process (the sweep with
``--n-jobs 1``, so every update happens here) with ``Optimizer.update`` wrapped
by a timer: *optimizer* is the summed wall time inside ``update`` calls (the
wrapper itself adds ~0.1 us per call), *calls* their number.  To compare two
versions, run this file under each (e.g. ``PYTHONPATH=<other checkout>/src``):
the job, its arguments and the machine are the same; on a shared machine run
them alternately, more than once.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import npoptim
from npoptim import cli
from npoptim.optimizers.base import Optimizer

SWEEP = ["--problems", "rosenbrock", "--optimizers", "sgd", "momentum", "adam", "--budget", "10",
         "--steps", "1000", "--seeds", "3", "--n-jobs", "1", "--quiet", "--no-report"]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", nargs="*", default=["compare", "sweep"], choices=["compare", "sweep"])
    ap.add_argument("--warm-up", action="store_true", help="fused.warm_up() first (not timed): the kernels loaded")
    args = ap.parse_args(argv)
    if args.warm_up:
        from npoptim.optimizers import fused

        fused.warm_up()
    spent = [0.0, 0]
    inner = Optimizer.update

    def timed_update(self, params, grads):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return inner(self, params, grads)
        finally:
            spent[0] += time.perf_counter() - t0
            spent[1] += 1

    Optimizer.update = timed_update  # type: ignore[method-assign]
    print(f"npoptim from {Path(npoptim.__file__).parent}; load average {os.getloadavg()[0]:.2f}")
    for job in args.jobs:
        with tempfile.TemporaryDirectory() as tmp:
            argv_job = ["compare", "--quiet", "--out", tmp]
            if job == "sweep":
                argv_job = ["sweep", *SWEEP, "--db", str(Path(tmp) / "s.db")]
            spent[:] = [0.0, 0]
            t0 = time.perf_counter()
            rc = cli.main(argv_job)
            wall = time.perf_counter() - t0
        print(
            f"{job}: rc {rc}, wall {wall:.1f} s, optimizer {spent[0]:.2f} s ({100 * spent[0] / wall:.0f} %), "
            f"{spent[1]} update calls ({1e6 * spent[0] / max(spent[1], 1):.1f} us each)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
