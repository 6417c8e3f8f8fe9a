"""The step benchmark (benchmarks/bench_update.py) runs and reports what it says, on a tiny budget.

No timing is asserted (speed targets live in the benchmark's output, as
ratios); this checks the plumbing that reaches into the compiled path's plan
-- the kernel-only, finite-pass and roofline steps -- so a change there
cannot silently break the benchmark, and that its derived columns are the
ratios of its own timings.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from npoptim.optimizers import fused

pytestmark = pytest.mark.skipif(not fused.fast_path_possible(), reason="numba is not installed")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_update.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_update", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_reports_every_contender_and_consistent_ratios(bench, capsys, markdown_rows):
    rules = ["sgd", "adam", "lion"]  # no torch peer for Lion: its torch columns must say so
    assert bench.main(["--rules", *rules, "--cases", "mlp", "--dtypes", "float32", "--budget", "0.01"]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line.startswith("| dtype")]
    detail = markdown_rows(out, next(h for h in headers if "implementation" in h))
    impls = {(r[2], r[3].strip()) for r in detail}
    for rule in rules:
        for impl in ("npoptim numba", "unchecked", "kernel only", "finite pass", "npoptim numpy", "roofline"):
            assert (rule, impl) in impls, (rule, impl)
    summary = {r[2]: r for r in markdown_rows(out, next(h for h in headers if "unchecked % roofline" in h))}
    assert sorted(summary) == sorted(rules)
    for r in summary.values():
        fast, unchecked, kernel, roofline = (float(r[i]) for i in (3, 4, 5, 10))
        assert min(fast, unchecked, kernel, roofline) > 0
        # the derived columns are the ratios of the timings in the same row; the times are printed
        # to 0.01 ms and the percentages to 1 %, so each must lie in the range those roundings allow
        assert _within(float(r[11].rstrip("%")), lambda a, b: 100 * a / b, roofline, fast)
        assert _within(float(r[13].rstrip("%")), lambda a, b: 100 * (a / b - 1), fast, unchecked)
    assert summary["lion"][9] == "n/a"  # torch fused: torch has none for Lion
    # ... and for Adam there is one, where torch is installed (a peer, not a dependency)
    assert (summary["adam"][9] != "n/a") == (importlib.util.find_spec("torch") is not None)


def test_benchmark_has_a_row_for_issue_15s_element_wise_rules(bench, capsys, markdown_rows):
    """Rprop, ASGD and the schedule-free rules: compiled, NumPy and their torch-side peers (torch.optim's
    foreach Rprop/ASGD, the schedulefree package's foreach classes) where those are installed."""
    rules = ["rprop", "asgd", "schedulefreesgd", "schedulefreeadamw"]
    assert bench.main(["--rules", *rules, "--cases", "mlp", "--dtypes", "float32", "--budget", "0.01"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("| dtype") and "implementation" in line)
    times = {(r[2], r[3].strip()): r[4] for r in markdown_rows(out, header)}
    for rule in rules:
        for impl in ("npoptim numba", "npoptim numpy", "kernel only", "roofline"):
            assert float(times[(rule, impl)]) > 0, (rule, impl)
    peers = {"rprop": "torch", "asgd": "torch", "schedulefreesgd": "schedulefree", "schedulefreeadamw": "schedulefree"}
    for rule, module in peers.items():
        installed = importlib.util.find_spec("torch") is not None and importlib.util.find_spec(module) is not None
        assert (times[(rule, "torch foreach")] != "n/a") == installed, rule


def _within(printed: float, ratio, a: float, b: float) -> bool:
    """``printed`` (rounded to 1) is ``ratio(a, b)`` for some a, b within 0.005 of the printed ones."""
    values = [ratio(x, y) for x in (a - 0.005, a + 0.005) for y in (b - 0.005, b + 0.005)]
    return min(values) - 0.5 <= printed <= max(values) + 0.5


def test_small_call_benchmark_reports_every_contender_and_its_ratios(capsys, markdown_rows):
    """benchmarks/bench_small.py on a tiny budget: a row per contender (no teaching code for Lion), and the
    'x teaching' column is the ratio of the printed times (to the rounding of those times)."""
    spec = importlib.util.spec_from_file_location("bench_small", BENCH.parent / "bench_small.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ["--cases", "tiny", "mlp", "--rules", "adam", "lion", "--dtypes", "float32", "--rounds", "2"]
    assert module.main([*argv, "--scale", "0.1", "--no-torch"]) == 0
    rows = markdown_rows(capsys.readouterr().out, "| case")
    impls = {(r[0], r[2], r[3]) for r in rows}
    for case, rule in (("tiny", "sgd"), ("tiny", "adam"), ("mlp", "adam"), ("mlp", "lion")):
        for impl in ("npoptim default", "npoptim numpy", "teaching code", "copy floor"):
            assert (case, rule, impl) in impls, (case, rule, impl)
    for r in rows:
        if r[5] and r[4] != "n/a":  # x teaching = time / the teaching code's time in the same cell
            teach = next(float(q[4]) for q in rows if q[:3] == r[:3] and q[3] == "teaching code")
            t = float(r[4])  # times printed to 0.1 us, ratios to 0.01
            lo, hi = (t - 0.05) / (teach + 0.05), (t + 0.05) / max(teach - 0.05, 1e-9)
            assert lo - 0.005 <= float(r[5]) <= hi + 0.005, r


def test_whole_tensor_benchmark_reports_every_contender_and_its_ratios(capsys, markdown_rows):
    """benchmarks/bench_tensor.py on a tiny budget: for each whole-tensor rule a NumPy row, a compiled row for
    LAMB/LARS/Prodigy only, the peer where installed ("n/a" otherwise), and 'x npoptim numpy' is the ratio of
    the printed times (to their rounding)."""
    spec = importlib.util.spec_from_file_location("bench_tensor", BENCH.parent / "bench_tensor.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--cases", "mlp", "--budget", "0.001", "--no-torch"]) == 0
    rows = markdown_rows(capsys.readouterr().out, "| dtype")
    impls = {(r[2], r[3]) for r in rows}
    for rule in ("lamb", "lars", "prodigy", "muon", "adafactor"):
        assert (rule, "npoptim numpy") in impls
        assert ((rule, "npoptim numba") in impls) == (rule in ("lamb", "lars", "prodigy")), rule
    has_optax = importlib.util.find_spec("optax") is not None
    for rule in ("lamb", "lars"):
        assert ((rule, "optax jit") in impls) == has_optax
    for rule in ("prodigy", "muon", "adafactor"):  # --no-torch: their peers are left out, and say so
        assert (rule, "peer") in impls
    for r in rows:
        if r[5] != "n/a":
            ref = float(next(q[5] for q in rows if q[:3] == r[:3] and q[3] == "npoptim numpy"))
            t = float(r[5])  # times printed to 0.001 ms, ratios to 0.01
            lo, hi = (t - 0.0005) / (ref + 0.0005), (t + 0.0005) / max(ref - 0.0005, 1e-9)
            assert lo - 0.005 <= float(r[6]) <= hi + 0.005, r
