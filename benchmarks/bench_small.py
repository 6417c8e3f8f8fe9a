"""Small models and tiny calls: one optimizer step where npoptim's users train.

    python benchmarks/bench_small.py                       # tiny + mlp, every rule, both dtypes (~3 min)
    python benchmarks/bench_small.py --cases tiny          # the 2-element case only (~20 s)
    python benchmarks/bench_small.py --cases mlp --rules adam --dtypes float32

Cases: ``tiny`` -- one 2-element float64 array (a 2-D trajectory step), SGD and
Adam; ``mlp`` -- the book's 784-100-100-100-100-10 network (10 arrays, 109,386
elements), every registered rule (``--rules``), float32 and float64.

Contenders, each a full public call with a new gradient dict every step:

* ``npoptim default`` -- ``Rule()`` as a user writes it (``backend="auto"``,
  every check on), after ``fused.warm_up()`` loaded the kernels (a long run gets
  there by itself: see ``docs/performance.md``);
* ``  parallel``       -- ``backend="numba"`` with the serial path switched off
  (``SERIAL_MAX_ELEMENTS = 0``): the one parallel region per step it replaces;
* ``  unchecked``      -- the default with ``on_nonfinite="propagate"`` (no finite check);
* ``npoptim numpy``    -- ``backend="numpy"``, the reference;
* ``teaching code``    -- the book's loop (§6.1: ``params[key] -= lr * grads[key]`` and its
  Adam class; the MLP case's other rules as ``bench_update.Naive``);
* ``torch fused`` / ``torch fused Adam`` -- ``torch.optim.<Rule>(fused=True)``
  where torch has it, and its fused Adam on the same arrays (the issue's yardstick);
* ``copy floor``       -- ``np.copyto`` moving the rule's bytes (half read, half
  written: Adam float32 reads w, g, m, v and writes w, m, v: 28 bytes per element).

Timing: contenders run in turns, a block of calls each per round (``--rounds``
rounds), and the table shows the median of the per-round means: a burst of load
from other jobs hits every contender alike, so the ratios hold on a busy machine;
absolute times do not.  Data stays in cache between calls (a training loop's
forward and backward passes touch the same arrays), unlike bench_update.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from npoptim import OPTIMIZERS
from npoptim.optimizers import fused

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_update import HYPER, PEERED, Naive, shapes, torch_step  # noqa: E402


class BookSGD:
    """"Deep Learning from Scratch" §6.1 (common/optimizer.py), the constructor typo fixed."""

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr

    def update(self, params: dict, grads: dict) -> None:
        for key in params.keys():
            params[key] -= self.lr * grads[key]


class BookAdam:
    """The book's Adam (common/optimizer.py), its second moment created."""

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999) -> None:
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        self.m: dict | None = None
        self.v: dict = {}

    def update(self, params: dict, grads: dict) -> None:
        if self.m is None:
            self.m = {key: np.zeros_like(val) for key, val in params.items()}
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2**self.iter) / (1.0 - self.beta1**self.iter)
        for key in params.keys():
            self.m[key] += (1 - self.beta1) * (grads[key] - self.m[key])
            self.v[key] += (1 - self.beta2) * (grads[key] ** 2 - self.v[key])
            params[key] -= lr_t * self.m[key] / (np.sqrt(self.v[key]) + 1e-7)


def stepper(update: Callable[[dict, dict], None], params: dict, gsets: list[dict]) -> Callable[[int], None]:
    """``run(n)``: n calls of ``update(params, grads)``, a new dict of the next gradient set each time."""
    g0, g1 = gsets

    def run(n: int) -> None:
        for i in range(n):
            update(params, dict(g1 if i & 1 else g0))

    return run


def race(runs: dict[str, Callable[[int], None]], block: int, rounds: int) -> tuple[dict[str, float], float]:
    """Median over rounds of each contender's mean seconds per call; and the median spread (max/min over
    rounds, of each contender: how noisy the machine was)."""
    for run in runs.values():
        run(block)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run(block)
            times[name].append((time.perf_counter() - t0) / block)
    spread = statistics.median(max(t) / min(t) for t in times.values())
    return {name: statistics.median(t) for name, t in times.items()}, spread


def floor_run(nbytes: int) -> Callable[[int], None]:
    a = np.ones(max(nbytes // 16, 1))
    b = np.empty_like(a)

    def run(n: int) -> None:
        for _ in range(n):
            np.copyto(b, a)

    return run


def contenders(rule: str, base: dict, gsets: list[dict], torch, case: str) -> dict[str, Callable[[int], None] | None]:
    cls = OPTIMIZERS[rule]
    hyper = {"lr": 1e-3 if rule == "adam" else 0.01, **HYPER.get(rule, {})}
    fresh = lambda: {k: a.copy() for k, a in base.items()}  # noqa: E731
    out: dict[str, Callable[[int], None] | None] = {"npoptim default": stepper(cls(**hyper).update, fresh(), gsets)}
    if case == "mlp":
        saved, fused.SERIAL_MAX_ELEMENTS = fused.SERIAL_MAX_ELEMENTS, 0
        parallel = cls(**hyper, backend="numba")
        parallel.update(fresh(), gsets[0])  # the plan is made now, without a serial path
        fused.SERIAL_MAX_ELEMENTS = saved
        out["  parallel"] = stepper(parallel.update, fresh(), gsets)
        out["  unchecked"] = stepper(cls(**hyper, on_nonfinite="propagate").update, fresh(), gsets)
    out["npoptim numpy"] = stepper(cls(**hyper, backend="numpy").update, fresh(), gsets)
    if case == "tiny":
        book = BookSGD(hyper["lr"]) if rule == "sgd" else BookAdam(hyper["lr"])
        out["teaching code"] = stepper(book.update, fresh(), gsets)
    elif rule in PEERED:
        out["teaching code"] = stepper(Naive(rule, hyper["lr"]).update, fresh(), gsets)
    else:
        out["teaching code"] = None
    if torch is not None and case == "mlp":
        for name, r in (("torch fused", rule), ("torch fused Adam", "adam")):
            step = torch_step(torch, r, "fused", base, gsets) if r in PEERED else None
            out[name] = None if step is None else (lambda n, s=step: [s() for _ in range(n)] and None)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="*", default=["tiny", "mlp"], choices=["tiny", "mlp"])
    ap.add_argument("--rules", nargs="*", default=list(OPTIMIZERS), choices=list(OPTIMIZERS), help="mlp case rules")
    ap.add_argument("--dtypes", nargs="*", default=["float32", "float64"], choices=["float32", "float64"])
    ap.add_argument("--rounds", type=int, default=15, help="rounds of turns (default 15)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every block size (default 1)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    args = ap.parse_args(argv)
    torch = None
    if not args.no_torch:
        try:
            import torch  # noqa: PLC0415  (benchmark peer only)
        except ImportError:
            torch = None
    if torch is not None and args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    t0 = time.perf_counter()
    fused.warm_up()
    print(f"# npoptim small-call benchmark: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    threads = f"torch threads {torch.get_num_threads()}" if torch is not None else "torch absent"
    print(f"fused.warm_up() {time.perf_counter() - t0:.1f} s; {threads}; median of {args.rounds} rounds of turns\n")
    rng = np.random.default_rng(0)
    header = ("case", "dtype", "rule", "implementation", "us/step", "x teaching", "x torch fused Adam", "x floor")
    rows: list[tuple[str, ...]] = []
    spreads: list[float] = []
    for case in args.cases:
        dtypes = ["float64"] if case == "tiny" else args.dtypes
        rules = ["sgd", "adam"] if case == "tiny" else args.rules
        for dtname in dtypes:
            dt = np.dtype(dtname)
            shp = [(2,)] if case == "tiny" else shapes("mlp")
            n_el = sum(int(np.prod(s)) for s in shp)
            base = {f"p{i}": rng.standard_normal(s).astype(dt) for i, s in enumerate(shp)}
            gsets = [{k: (0.1 * rng.standard_normal(a.shape)).astype(dt) for k, a in base.items()} for _ in range(2)]
            for rule in rules:
                runs = contenders(rule, base, gsets, torch, case)
                nslots = len(OPTIMIZERS[rule].slots)
                runs["copy floor"] = floor_run((3 + 2 * nslots) * n_el * dt.itemsize)
                present = {name: run for name, run in runs.items() if run is not None}
                block = max(1, int((400 if case == "tiny" else 10) * args.scale))
                times, spread = race(present, block, args.rounds)
                spreads.append(spread)
                teach, tadam, floor = times.get("teaching code"), times.get("torch fused Adam"), times["copy floor"]
                for name in runs:
                    t = times.get(name)
                    if t is None:
                        rows.append((case, dtname, rule, name, "n/a", "", "", ""))
                        continue
                    rows.append(
                        (
                            case,
                            dtname,
                            rule,
                            name,
                            f"{t * 1e6:.1f}",
                            f"{t / teach:.2f}" if teach else "",
                            f"{t / tadam:.2f}" if tadam else "",
                            f"{t / floor:.1f}",
                        )
                    )
                sys.stdout.flush()
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    print(f"\nnoise: median over cells of (slowest round / fastest round) = {statistics.median(spreads):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
