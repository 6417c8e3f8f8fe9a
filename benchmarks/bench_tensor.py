"""Time one step of the whole-tensor rules: LAMB, LARS, Prodigy, Muon, Adafactor (issue 15).

    python benchmarks/bench_tensor.py                 # both cases, float32 (12 min here: see below)
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_tensor.py --budget 0.2   # one BLAS/torch thread, shorter

On a machine shared with other jobs, multi-threaded BLAS steps are erratic (threads wait for cores);
``OPENBLAS_NUM_THREADS=1`` makes NumPy's BLAS single-threaded and this script then sets torch to as many
threads (jax/XLA keeps its own pool).  Most of the run is torch.optim.Muon on the 1024 x 1024 matrices
(its Newton-Schulz runs in bfloat16: ~100 s a step on a CPU without fast bfloat16 products); ``--no-torch``
or ``--rules`` shortens it.

Cases: ``mlp`` -- the book's 784-100-100-100-100-10 network (5 weight matrices, 5 bias vectors,
~110K elements) and ``matrices`` -- four 1024 x 1024 matrices (4.2M elements).  Muon updates 2-D
arrays only, so its rows use the case's matrices alone.  Contenders, each one step per call:

* ``npoptim numba``  ``backend="numba"``: the compiled element loops around NumPy's reductions
  (LAMB, LARS, Prodigy; ``fused/parts.py``);
* ``npoptim numpy``  ``backend="numpy"``: the NumPy reference (for Muon and Adafactor the only path:
  their matrix products and factored moments run on NumPy's BLAS, there is no compiled kernel);
* ``optax jit``      ``optax.lamb`` / ``optax.lars`` under ``jax.jit`` (if installed);
* ``prodigyopt``     ``prodigyopt.Prodigy`` on torch tensors (if installed);
* ``torch.optim``    ``torch.optim.Muon`` / ``torch.optim.Adafactor`` (if this torch has them).

Every contender of a cell is timed in turns (one step of each per round), so a burst of load from other
jobs hits them alike; gradients alternate between two sets of arrays, in a new dict each step.  Columns:
median ms per step, and the time as a multiple of ``npoptim numpy``'s in the same cell.  Ratios are
measured in the same run, so they mean something on a busy machine; absolute times do not.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from npoptim.optimizers import fused
from npoptim.optimizers.registry import TENSOR_OPTIMIZERS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_update import jitted_optax_step, print_table  # noqa: E402  (as bench_small.py does)

RULES = ("lamb", "lars", "prodigy", "muon", "adafactor")
COMPILED = ("lamb", "lars", "prodigy")  # the rules with compiled element loops
HYPER = {"lamb": {"lr": 1e-3, "weight_decay": 0.01}, "lars": {"lr": 0.1, "weight_decay": 1e-4},
         "prodigy": {"lr": 1.0, "weight_decay": 0.01}, "muon": {"lr": 1e-3}, "adafactor": {"lr": 1e-2}}


def shapes(case: str, rule: str) -> list[tuple[int, ...]]:
    if case == "matrices":
        return [(1024, 1024)] * 4
    sizes = [784, 100, 100, 100, 100, 10]
    out: list[tuple[int, ...]] = []
    for a, b in zip(sizes, sizes[1:], strict=False):
        out += [(a, b)] + ([] if rule == "muon" else [(b,)])
    return out


def race(steps: dict[str, Callable[[], object]], budget: float, min_rounds: int = 3, max_rounds: int = 200) -> dict:
    """Median seconds per call of each step, in turns (one call of each per round), after two warm-up calls."""
    for step in steps.values():
        step()
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    start, rounds = time.perf_counter(), 0
    while rounds < min_rounds or (rounds < max_rounds and time.perf_counter() - start < budget * len(steps)):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
        rounds += 1
    return {name: statistics.median(t) for name, t in times.items()}


def npoptim_step(rule: str, backend: str, base: dict, gsets: list[dict]) -> Callable[[], None]:
    opt = TENSOR_OPTIMIZERS[rule](backend=backend, **HYPER[rule])
    params = {k: v.copy() for k, v in base.items()}
    turn = iter(range(10**12))

    def step() -> None:
        opt.update(params, dict(gsets[next(turn) % 2]))
        assert opt.last_update_backend == ("numba" if backend == "numba" else "numpy")

    return step


def optax_step(rule: str, base: dict, gsets: list[dict]) -> Callable[[], None]:
    import optax

    h = HYPER[rule]
    make = optax.lamb if rule == "lamb" else optax.lars
    return jitted_optax_step(make(h["lr"], weight_decay=h["weight_decay"]), base, gsets)


def torch_step(rule: str, base: dict, gsets: list[dict]) -> Callable[[], None]:
    import torch

    if "OPENBLAS_NUM_THREADS" in os.environ:  # the same number of threads as NumPy's BLAS
        torch.set_num_threads(int(os.environ["OPENBLAS_NUM_THREADS"]))
    tensors = [torch.tensor(a) for a in base.values()]
    grads = [[torch.tensor(g[k]) for k in base] for g in gsets]
    h = HYPER[rule]
    if rule == "prodigy":
        import prodigyopt

        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Using decoupled weight decay"
            opt = prodigyopt.Prodigy(tensors, lr=h["lr"], weight_decay=h["weight_decay"])
    else:
        opt = {"muon": torch.optim.Muon, "adafactor": torch.optim.Adafactor}[rule](tensors, lr=h["lr"])
    turn = iter(range(10**12))

    def step() -> None:
        gs = grads[next(turn) % 2]
        for t, g in zip(tensors, gs, strict=True):
            t.grad = g
        with torch.no_grad():
            opt.step()

    return step


def peer(rule: str, no_torch: bool) -> str | None:
    """The peer contender's name for ``rule`` if it is installed, else None."""
    if rule in ("lamb", "lars"):
        return "optax jit" if importlib.util.find_spec("optax") else None
    if no_torch or not importlib.util.find_spec("torch"):
        return None
    if rule == "prodigy":
        return "prodigyopt" if importlib.util.find_spec("prodigyopt") else None
    import torch

    return "torch.optim" if hasattr(torch.optim, {"muon": "Muon", "adafactor": "Adafactor"}[rule]) else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", nargs="*", default=list(RULES), choices=list(RULES))
    ap.add_argument("--cases", nargs="*", default=["mlp", "matrices"], choices=["mlp", "matrices"])
    ap.add_argument("--dtypes", nargs="*", default=["float32"], choices=["float32", "float64"])
    ap.add_argument("--budget", type=float, default=0.5, help="seconds of timing per contender and cell")
    ap.add_argument("--no-torch", action="store_true", help="leave out the torch-based peers")
    args = ap.parse_args(argv)
    if any(r in COMPILED for r in args.rules) and not fused.fast_path_possible():
        print("numba is not installed: no 'npoptim numba' rows", file=sys.stderr)
    elif any(r in COMPILED for r in args.rules):
        fused.warm_up()  # load (or compile) the loops before timing
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"# whole-tensor rules, one step: {platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"OPENBLAS_NUM_THREADS={threads}")
    rows = []
    rng = np.random.default_rng(0)
    for dtype in args.dtypes:
        for case in args.cases:
            for rule in args.rules:
                base = {f"p{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes(case, rule))}
                gsets = [{k: rng.standard_normal(v.shape).astype(dtype) for k, v in base.items()} for _ in range(2)]
                steps = {"npoptim numpy": npoptim_step(rule, "numpy", base, gsets)}
                if rule in COMPILED and fused.fast_path_possible():
                    steps["npoptim numba"] = npoptim_step(rule, "numba", base, gsets)
                name = peer(rule, args.no_torch)
                if name == "optax jit":
                    steps[name] = optax_step(rule, base, gsets)
                elif name is not None:
                    steps[name] = torch_step(rule, base, gsets)
                times = race(steps, args.budget)
                ref = times["npoptim numpy"]
                n = sum(v.size for v in base.values())
                for impl, t in times.items():
                    rows.append((dtype, case, rule, impl, f"{n:,}", f"{1e3 * t:.3f}", f"{t / ref:.2f}"))
                if name is None:
                    rows.append((dtype, case, rule, "peer", f"{n:,}", "n/a", "n/a"))
    print_table(("dtype", "case", "rule", "implementation", "elements", "ms/step", "x npoptim numpy"), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
