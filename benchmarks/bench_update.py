"""Time one optimizer step: npoptim's paths against naive NumPy, torch.optim and a roofline.

    python benchmarks/bench_update.py            # the book's six rules, every case (~4 min on 2 cores)
    python benchmarks/bench_update.py --quick    # float32, large + many only, shorter budget (~1 min)
    python benchmarks/bench_update.py --rules rprop asgd schedulefreesgd schedulefreeadamw   # issue 15's

For every rule asked for (``--rules``: any registered name; default the book's six),
every dtype (float32, float64) and every
case -- ``large`` (one array of 16,777,216 elements), ``many`` (2,000 arrays of
4,096) and ``mlp`` (the book's 784-100-100-100-100-10 network: 10 small
arrays) -- it times one step of:

* ``npoptim fast``   ``opt.update(params, grads)`` with ``backend="numba"``
  (validation, finite check and the fused kernel: the public call);
* ``  unchecked``    the same with ``on_nonfinite="propagate"``: no finite pass
  (the difference to the line above is what "raise changes nothing" costs);
* ``  kernel only``  the same step's compiled rule driver alone (the difference
  to the line above is what validation, the header check and Python cost);
* ``  finite pass``  the finite check alone (one read of every gradient; its GB/s
  are of that read);
* ``npoptim numpy``  ``backend="numpy"``: the NumPy reference rule on 64K pieces;
* ``naive numpy``    the teaching code's style: a Python loop over keys, one
  NumPy expression per line, new temporaries everywhere;
* ``torch foreach``  ``torch.optim.<Rule>(foreach=True)`` (Rprop, ASGD too; for the schedule-free
  rules ``schedulefree.SGDScheduleFree`` / ``AdamWScheduleFree(foreach=True)``, the paper's code);
* ``torch fused``    ``fused=True`` where torch has a fused CPU kernel (SGD with
  and without momentum/Nesterov, Adagrad, Adam; not RMSprop);
* ``optax``          ``optax.<rule>`` under ``jax.jit``, if installed;
* ``roofline``       the fused driver with the rule replaced by additions, on the
  same arrays: it reads and writes the same bytes as the rule (e.g. Adam: reads
  w, g, m, v, writes w, m, v) with no other math.

The close contenders (npoptim's compiled path, torch, optax, the roofline) are
timed in turns, one step of each per round, so a burst of load from other jobs
hits them alike; the slow NumPy paths are timed on their own.  Every timed
call starts with the caches flushed (64 MB read, untimed), so no step finds
the data of the step before it in cache.

Gradients are new dict objects every step (alternating between two sets of
arrays), as in training, so nothing can be cached on their identity.  Columns:
median ms per step, GB/s of the rule's own traffic, % of the roofline's speed,
and the time as a multiple of torch's fused step of the same rule and of
torch's fused Adam (the issue's yardstick).  Ratios are measured in the same
run, so they are meaningful on a busy machine; absolute times are not.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

import npoptim
from npoptim import OPTIMIZERS
from npoptim.optimizers import fused

HYPER = {"momentum": {"momentum": 0.9}, "nesterov": {"momentum": 0.9}}
#: The rules with a naive-NumPy and a torch peer below (the book's six); the default ``--rules``.
PEERED = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def shapes(case: str) -> list[tuple[int, ...]]:
    if case == "large":
        return [(1 << 24,)]
    if case == "many":
        return [(4096,)] * 2000
    sizes = [784, 100, 100, 100, 100, 10]
    out: list[tuple[int, ...]] = []
    for a, b in zip(sizes, sizes[1:], strict=False):
        out += [(a, b), (b,)]
    return out


#: Read between timed calls (not timed), so that no step finds another's data in the caches:
#: larger than this machine's L2 + L3 (2 x 2 MB + 35.8 MB).  Read, not written: written
#: lines would be dirty, and writing them back would be charged to the next (timed) step.
_SCRATCH = np.ones(1 << 24, np.float32)


def flush_caches() -> None:
    _SCRATCH.sum()


def timed(step: Callable[[], object]) -> float:
    """Seconds of one call, started with caches flushed."""
    flush_caches()
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def timeit(step: Callable[[], object], budget: float, min_reps: int = 3, max_reps: int = 50) -> float:
    """Median seconds per call after two warm-up calls."""
    step()
    step()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or (len(times) < max_reps and time.perf_counter() - start < budget):
        times.append(timed(step))
    return statistics.median(times)


def race(steps: dict[str, Callable[[], object]], budget: float, min_rounds: int = 5, max_rounds: int = 200) -> dict:
    """Median seconds per call of each step, timed in turns (one call of each per round).

    On a shared machine a burst of load then hits every contender alike, so
    their ratios hold even when absolute times drift.  Two warm-up calls each.
    """
    for step in steps.values():
        step()
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    start = time.perf_counter()
    rounds = 0
    while rounds < min_rounds or (rounds < max_rounds and time.perf_counter() - start < budget):
        for name, step in steps.items():
            times[name].append(timed(step))
        rounds += 1
    return {name: statistics.median(t) for name, t in times.items()}


def alternating(update: Callable[[dict, dict], None], params: dict, gsets: list[dict]) -> Callable[[], None]:
    """A step function calling ``update(params, grads)`` with a new dict of the next gradient set each time."""
    it = iter(range(10**12))

    def step() -> None:
        update(params, dict(gsets[next(it) % 2]))

    return step


# --- naive NumPy, the teaching code's style (a loop over keys, temporaries everywhere) ---------


class Naive:
    def __init__(self, rule: str, lr: float) -> None:
        self.rule, self.lr = rule, lr
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.t = 0

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        lr, t = self.lr, self.t
        for key in params:
            p, g = params[key], grads[key]
            s = self.state.setdefault(key, {"a": np.zeros_like(p), "b": np.zeros_like(p)})
            if self.rule == "sgd":
                params[key] -= lr * g
            elif self.rule == "momentum":
                s["a"] = 0.9 * s["a"] - lr * g
                params[key] += s["a"]
            elif self.rule == "nesterov":
                v_old = s["a"].copy()
                s["a"] = 0.9 * s["a"] - lr * g
                params[key] += 0.9 * 0.9 * v_old - (1 + 0.9) * lr * g
            elif self.rule == "adagrad":
                s["a"] += g * g
                params[key] -= lr * g / (np.sqrt(s["a"]) + 1e-7)
            elif self.rule == "rmsprop":
                s["a"] *= 0.99
                s["a"] += (1 - 0.99) * g * g
                params[key] -= lr * g / (np.sqrt(s["a"]) + 1e-7)
            elif self.rule == "adam":
                s["a"] += (1 - 0.9) * (g - s["a"])
                s["b"] += (1 - 0.999) * (g**2 - s["b"])
                m_hat = s["a"] / (1 - 0.9**t)
                v_hat = s["b"] / (1 - 0.999**t)
                params[key] -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)


# --- torch ---------------------------------------------------------------------------------------


def torch_optimizer(torch, rule: str, tensors, mode: str):
    kw = {mode: True}
    o = torch.optim
    if rule == "sgd":
        return o.SGD(tensors, lr=0.01, **kw)
    if rule == "momentum":
        return o.SGD(tensors, lr=0.01, momentum=0.9, **kw)
    if rule == "nesterov":
        return o.SGD(tensors, lr=0.01, momentum=0.9, nesterov=True, **kw)
    if rule == "adagrad":
        return o.Adagrad(tensors, lr=0.01, eps=1e-7, **kw)
    if rule == "rmsprop":
        return o.RMSprop(tensors, lr=0.01, alpha=0.99, eps=1e-7, **kw)
    if rule == "adam":
        return o.Adam(tensors, lr=1e-3, **kw)
    if rule == "rprop":
        return o.Rprop(tensors, lr=0.01, **kw)
    if rule == "asgd":
        return o.ASGD(tensors, lr=0.01, **kw)
    if rule in ("schedulefreesgd", "schedulefreeadamw") and mode == "foreach":  # the paper's code, on torch
        import schedulefree  # noqa: PLC0415  (benchmark peer only)

        cls = schedulefree.SGDScheduleFree if rule == "schedulefreesgd" else schedulefree.AdamWScheduleFree
        topt = cls(tensors, lr=0.01, foreach=True)
        topt.train()  # its parameters hold y while training, as ours
        return topt
    raise ValueError(f"no torch peer written for {rule!r} ({mode})")


def torch_step(torch, rule, mode, base, gsets):
    """A ``step()`` of torch's optimizer (``mode`` "foreach" or "fused"), None if torch lacks it."""
    tparams = [torch.from_numpy(a.copy()).requires_grad_() for a in base.values()]
    # copies: torch's foreach steps may change .grad in place (e.g. SGD with Nesterov adds the buffer to it)
    tgrads = [[torch.from_numpy(g[key].copy()) for key in base] for g in gsets]
    try:
        topt = torch_optimizer(torch, rule, tparams, mode)
    except (RuntimeError, ValueError, TypeError):
        return None
    it = iter(range(10**9))

    def step():
        for tp, tg in zip(tparams, tgrads[next(it) % 2], strict=True):
            tp.grad = tg
        with torch.no_grad():
            topt.step()

    try:
        step()
    except (RuntimeError, ValueError, TypeError):
        return None
    return step


def optax_step(optax, rule, base, gsets):
    """A jitted optax step of the book's rule ``rule`` (see :func:`jitted_optax_step`)."""
    lr = 1e-3 if rule == "adam" else 0.01
    tx = {
        "sgd": lambda: optax.sgd(lr),
        "momentum": lambda: optax.sgd(lr, momentum=0.9),
        "nesterov": lambda: optax.sgd(lr, momentum=0.9, nesterov=True),
        "adagrad": lambda: optax.adagrad(lr, eps=1e-7),
        "rmsprop": lambda: optax.rmsprop(lr, decay=0.99, eps=1e-7),
        "adam": lambda: optax.adam(lr),
    }[rule]()
    return jitted_optax_step(tx, base, gsets)


def jitted_optax_step(tx, base, gsets):
    """A step (update + apply_updates) of the optax transformation ``tx`` under ``jax.jit``, alternating
    between the two gradient sets, results blocked on; float64 arrays turn jax's x64 mode on."""
    import jax
    import optax

    if next(iter(base.values())).dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    params = [jax.numpy.asarray(a) for a in base.values()]
    grads = [[jax.numpy.asarray(g[key]) for key in base] for g in gsets]
    state = [params, tx.init(params)]

    @jax.jit
    def jstep(p, s, g):
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s

    it = iter(range(10**9))

    def step():
        p, s = jstep(state[0], state[1], grads[next(it) % 2])
        jax.block_until_ready(p)
        state[0], state[1] = p, s

    return step


def kernel_only_step(k, opt, gsets: list[dict], what: str = "rule") -> Callable[[], None]:
    """One compiled pass over ``opt``'s plan alone, on the same alternating gradient arrays.

    ``what``: "rule" -- the rule's driver; "roofline" -- the same driver with the rule
    replaced by additions (``kernels.roofline_step``: reads w, g and the state slots, writes
    w and the slots, no other math): the same arrays, the same bytes, the benchmark's 100 %;
    "finite" -- the finite check alone (reads every gradient once, writes nothing).
    """
    plan = opt._fused_plan
    driver = {"rule": k.DRIVERS[opt._fused_kernel], "roofline": k.roofline_step, "finite": None}[what]
    row = (len(opt.slots),) if what == "roofline" else (0.0, *opt._fused_scalars(3))
    C = np.array([row], plan.groups[0].dtype)
    rows0 = np.zeros(len(plan.keys), np.int64)
    gptrs = [np.array([g[key].__array_interface__["data"][0] for key in plan.keys], np.int64) for g in gsets]
    turn = iter(range(10**12))

    def step() -> None:
        gptr = gptrs[next(turn) % 2]
        for gr in plan.groups:
            gr.gptr[:] = gptr[gr.idx]
            if driver is None:
                assert k.finite(gr.gptr, gr.active, gr.keyinfo, gr.seg, gr.chunks, gr.exponent)
            else:
                driver(gr.gptr, gr.active, gr.keyinfo, gr.seg, gr.chunks, *gr.S, C, rows0[gr.idx])

    return step


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="float32, large + many, shorter timing budget")
    ap.add_argument("--rules", nargs="*", default=[r for r in OPTIMIZERS if r in PEERED], choices=list(OPTIMIZERS))
    ap.add_argument("--dtypes", nargs="*", default=["float32", "float64"], choices=["float32", "float64"])
    ap.add_argument("--cases", nargs="*", default=["large", "many", "mlp"], choices=["large", "many", "mlp"])
    ap.add_argument("--budget", type=float, default=0.4, help="seconds of timing per cell (default 0.4)")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.dtypes, args.cases, args.budget = ["float32"], [c for c in args.cases if c != "mlp"] or ["large"], 0.2

    k = fused.load_kernels()
    torch = None
    if not args.no_torch:
        try:
            import torch  # noqa: PLC0415  (benchmark peer only)
        except ImportError:
            torch = None
    try:
        import jax  # noqa: F401
        import optax
    except ImportError:
        optax = None

    import numba

    load = os.getloadavg()
    print(f"# npoptim {npoptim.__version__} step benchmark")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
        f"torch {torch.__version__ if torch else 'absent'}, optax {optax.__version__ if optax else 'not installed'}"
    )
    if torch is not None:
        print(f"torch threads {torch.get_num_threads()}, numba threads {numba.get_num_threads()}")
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    rows: list[tuple[str, ...]] = []
    summary: list[tuple] = []
    rng = np.random.default_rng(0)
    for dtname in args.dtypes:
        dt = np.dtype(dtname)
        for case in args.cases:
            shp = shapes(case)
            n_el = sum(int(np.prod(s)) for s in shp)
            base = {f"p{i}": rng.standard_normal(s).astype(dt) for i, s in enumerate(shp)}
            gsets = [
                {key: (0.1 * rng.standard_normal(a.shape)).astype(dt) for key, a in base.items()} for _ in range(2)
            ]
            torch_adam = torch_step(torch, "adam", "fused", base, gsets) if torch else None
            for rule in args.rules:
                cls = OPTIMIZERS[rule]
                r, w = 2 + len(cls.slots), 1 + len(cls.slots)
                nbytes = (r + w) * n_el * dt.itemsize
                hyper = {"lr": 1e-3 if rule == "adam" else 0.01, **HYPER.get(rule, {})}
                # the close contenders run in turns (race); the slow NumPy paths are timed on their own
                opt = cls(**hyper, backend="numba")
                unchecked = cls(**hyper, backend="numba", on_nonfinite="propagate")
                contenders: dict[str, Callable[[], object] | None] = {
                    "npoptim numba": alternating(opt.update, {key: a.copy() for key, a in base.items()}, gsets),
                    "  unchecked": alternating(unchecked.update, {key: a.copy() for key, a in base.items()}, gsets),
                }
                contenders["npoptim numba"]()  # makes the plan the kernel-only step uses
                contenders["  kernel only"] = kernel_only_step(k, opt, gsets)
                contenders["  finite pass"] = kernel_only_step(k, opt, gsets, what="finite")
                if torch is not None:
                    for mode in ("foreach", "fused"):
                        contenders[f"torch {mode}"] = torch_step(torch, rule, mode, base, gsets)
                    contenders["torch fused Adam"] = torch_adam
                if optax is not None:
                    try:
                        contenders["optax (jit)"] = optax_step(optax, rule, base, gsets)
                    except Exception as exc:  # a peer's failure must not end the run
                        print(f"  optax {rule}: {exc!r:.100}", file=sys.stderr)
                        contenders["optax (jit)"] = None
                contenders["roofline"] = kernel_only_step(k, opt, gsets, what="roofline")
                present = {name: step for name, step in contenders.items() if step is not None}
                raced: dict[str, float | None] = dict.fromkeys(contenders)
                raced.update(race(present, args.budget * len(present)))
                assert opt.last_update_backend == unchecked.last_update_backend == "numba"
                t_roof, torch_adam_fused = raced.pop("roofline"), raced.pop("torch fused Adam", None)
                assert t_roof is not None
                numpy_params = {key: a.copy() for key, a in base.items()}
                numpy_opt = cls(**hyper, backend="numpy")
                results: dict[str, float | None] = {
                    **{name: raced[name] for name in ("npoptim numba", "  unchecked", "  kernel only", "  finite pass")},  # noqa: E501
                    "npoptim numpy": timeit(alternating(numpy_opt.update, numpy_params, gsets), args.budget),
                    "naive numpy": None,
                }
                if rule in PEERED:
                    naive = Naive(rule, hyper["lr"])
                    naive_params = {key: a.copy() for key, a in base.items()}
                    results["naive numpy"] = timeit(alternating(naive.update, naive_params, gsets), args.budget, 3, 10)
                results.update({name: t for name, t in raced.items() if name not in results})
                del opt, unchecked, contenders, present, numpy_params, numpy_opt
                summary.append((dtname, case, rule, dict(results), t_roof, torch_adam_fused))
                ref = results.get("torch fused")
                for impl, t in results.items():
                    if t is None:
                        rows.append((dtname, case, rule, impl, "n/a", "", "", "", ""))
                        continue
                    if impl == "  finite pass":  # its own traffic: one read of every gradient
                        gbps = f"{n_el * dt.itemsize / t / 1e9:.1f}"
                        rows.append((dtname, case, rule, impl, f"{t * 1e3:.3f}", gbps, "", "", ""))
                        continue
                    rows.append(
                        (
                            dtname,
                            case,
                            rule,
                            impl,
                            f"{t * 1e3:.3f}",
                            f"{nbytes / t / 1e9:.1f}",
                            f"{100 * t_roof / t:.0f}%",
                            f"{t / ref:.2f}" if ref else "",
                            f"{t / torch_adam_fused:.2f}" if torch_adam_fused else "",
                        )
                    )
                rows.append(
                    (
                        dtname,
                        case,
                        rule,
                        "roofline",
                        f"{t_roof * 1e3:.3f}",
                        f"{nbytes / t_roof / 1e9:.1f}",
                        "100%",
                        "",
                        "",
                    )
                )
                print(f"  done {dtname} {case} {rule}", file=sys.stderr, flush=True)
    header = (
        "dtype",
        "case",
        "rule",
        "implementation",
        "ms/step",
        "GB/s",
        "% roofline",
        "x torch fused",
        "x torch fused Adam",
    )
    print()
    print_table(header, rows)
    print("\n'  finite pass': the finite check alone; its GB/s are of its own traffic (one read of g).")
    print("\nSummary: ms per step; 'fast' = npoptim update(), backend numba, default checks; 'unchecked' = the")
    print("same with on_nonfinite='propagate' (no finite pass); 'kernel' = the rule driver alone; 'finite check'")
    print("= fast/unchecked - 1; 'other checks' = unchecked/kernel - 1 (validation, header check, Python);")
    print("'% roofline' = roofline time / time; ratios to torch's fused step of the same rule and of Adam.\n")
    short = []
    for dtname, case, rule, res, t_roof, t_adam in summary:
        fast, kern, tf = res.get("npoptim numba"), res.get("  kernel only"), res.get("torch fused")
        unch = res.get("  unchecked")

        def ms(t):
            return f"{t * 1e3:.2f}" if t else "n/a"

        short.append(
            (
                dtname, case, rule, ms(fast), ms(unch), ms(kern), ms(res.get("npoptim numpy")),
                ms(res.get("naive numpy")), ms(res.get("torch foreach")), ms(tf), ms(t_roof),
                f"{100 * t_roof / fast:.0f}%", f"{100 * t_roof / unch:.0f}%", f"{100 * (fast / unch - 1):.0f}%",
                f"{100 * (unch / kern - 1):.0f}%", f"{fast / tf:.2f}" if tf else "n/a",
                f"{fast / t_adam:.2f}" if t_adam else "n/a", f"{unch / t_adam:.2f}" if t_adam else "n/a",
            )
        )  # fmt: skip
    print_table(
        (
            "dtype", "case", "rule", "fast", "unchecked", "kernel", "numpy path", "naive numpy", "torch foreach",
            "torch fused", "roofline", "fast % roofline", "unchecked % roofline", "finite check", "other checks",
            "fast / torch fused", "fast / torch fused Adam", "unchecked / torch fused Adam",
        ),
        short,
    )  # fmt: skip
    end = os.getloadavg()
    print(f"\nload average at end: {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}", end="")
    print(f"; numba threading layer: {numba.threading_layer()}")
    print("'x torch fused': time / torch's fused step of the same rule; 'x torch fused Adam': time / torch's")
    print("fused Adam on the same case and dtype; '% roofline': roofline time / time.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
