"""The compiled element loops of LAMB, LARS and Prodigy (``fused/tensor.py``) against their NumPy code.

The reference is each rule's NumPy code (``backend="numpy"``), itself checked against optax and
prodigyopt in test_trust.py and test_prodigy.py.  The compiled path runs the same IEEE operations in the
same order and dtype for the element-wise parts and calls the very same NumPy reductions (the norms,
Prodigy's dot product and l1 norm) on the same arrays, so the claim tested is bit equality: parameters,
every state slot, step counts and Prodigy's d, d_max and d_numerator, over 25 steps, float32 and
float64, for every option that changes a branch of a loop.  It is fair on any CPU for the reasons given
in test_fused.py (correctly rounded + - * / sqrt only, no fast-math, no FMA:
``test_tensor_kernels_have_no_fma_and_no_fast_math_flags`` checks the machine code compiled here).
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from machine_code import signatures_without_fma
from npoptim import LAMB, LARS, NonFiniteGradientError, Prodigy
from npoptim.optimizers import fused

needs_numba = pytest.mark.skipif(not fused.fast_path_possible(), reason="numba is not installed")

DTYPES = [np.float32, np.float64]
CLASSES = {"lamb": LAMB, "lars": LARS, "prodigy": Prodigy}
#: Every option that selects a branch of a loop or changes a scalar (non-default values throughout).
GRID = {
    "lamb": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
    "lamb-wd": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.05},
    "lamb-b1=0-eps=0": {"lr": 0.005, "beta1": 0.0, "beta2": 0.9, "eps": 0.0, "weight_decay": 0.01},
    "lamb-clipped": {"lr": 0.01, "weight_decay": 0.01, "clip_norm": 3.0, "clip_value": 0.5},
    "lars": {"lr": 0.5, "momentum": 0.8, "trust_coefficient": 0.02},
    "lars-wd-nesterov": {"lr": 0.5, "momentum": 0.7, "nesterov": True, "weight_decay": 0.1,
                         "trust_coefficient": 0.02, "eps": 1e-3},
    "lars-mu=0-eps=0": {"lr": 2.0, "momentum": 0.0, "weight_decay": 0.01, "trust_coefficient": 5e-3, "eps": 0.0},
    "prodigy": {},
    "prodigy-decoupled": {"lr": 0.5, "beta1": 0.8, "beta2": 0.99, "beta3": 0.9, "eps": 1e-6, "weight_decay": 0.1,
                          "d0": 1e-4, "d_coef": 0.5, "growth_rate": 1.05, "use_bias_correction": True},
    "prodigy-l2-b1=0-safeguard": {"beta1": 0.0, "weight_decay": 0.05, "decouple": False,
                                  "safeguard_warmup": True, "d0": 1e-3},
    "prodigy-eps=0-nesterovless": {"eps": 0.0, "weight_decay": 0.02, "use_bias_correction": True, "d0": 1e-2},
    "prodigy-clipped": {"clip_norm": 2.0, "safeguard_warmup": True, "d0": 1e-3},
}
# 0-d, empty, size 1, small, and one array larger than base.CHUNK / fused.BLOCK (65,536 elements)
SHAPES = [(), (0,), (1,), (3, 4), (7,), (2, 3, 5), (1 << 16) + 3, (40, 30)]


@pytest.fixture(scope="module")
def _compiled():
    fused.warm_up()  # every kernel, these loops included (compiled on a cold cache, else loaded)


def make(case: str, backend: str, **extra):
    name = case.split("-")[0]
    return CLASSES[name](backend=backend, **{**GRID[case], **extra})


def params_for(rng, dtype, shapes=SHAPES):
    return {f"k{i}": np.asarray(rng.standard_normal(s), dtype=dtype) for i, s in enumerate(shapes)}


def copy(d):
    return {k: (None if v is None else v.copy()) for k, v in d.items()}


def same_float(a: float, b: float, equal_nan: bool = False) -> bool:
    return a == b or (equal_nan and math.isnan(a) and math.isnan(b))


def assert_same(a, pa, b, pb, equal_nan=False):
    """Bit-identical parameters, state (every slot, step counts) and, for Prodigy, d, d_max, d_numerator."""
    assert pa.keys() == pb.keys()
    for k in pa:
        assert pa[k].dtype == pb[k].dtype
        assert np.array_equal(pa[k], pb[k], equal_nan=equal_nan), k
    assert (a.step_count, a.skipped_steps) == (b.step_count, b.skipped_steps)
    assert a.state.keys() == b.state.keys()
    for k, entry in a.state.items():
        assert entry["step"] == b.state[k]["step"], k
        for slot in a.slots:
            assert entry[slot].dtype == b.state[k][slot].dtype
            assert np.array_equal(entry[slot], b.state[k][slot], equal_nan=equal_nan), (k, slot)
    if isinstance(a, Prodigy):
        for name in ("d", "d_max", "d_numerator"):
            assert same_float(getattr(a, name), getattr(b, name), equal_nan), name


@needs_numba
@pytest.mark.usefixtures("_compiled")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", list(GRID))
def test_same_bits_as_numpy(case, dtype):
    rng = np.random.default_rng(7)
    p0 = params_for(rng, dtype)
    fast, ref = make(case, "numba"), make(case, "numpy")
    pf, pr = copy(p0), copy(p0)
    late = np.asarray(rng.standard_normal((5, 6)), dtype=dtype)
    for step in range(25):
        if step == 5:  # a key appearing late (its own step count from then on)
            pf["late"], pr["late"] = late.copy(), late.copy()
        g = {k: np.asarray(rng.standard_normal(v.shape), dtype=dtype) for k, v in pf.items()}
        if step % 4 == 1:  # no gradient for some keys: they and their state stay as they are
            g["k3"] = g["k6"] = None
        fast.update(pf, g)
        ref.update(pr, g)
        assert (fast.last_update_backend, ref.last_update_backend) == ("numba", "numpy")
    assert_same(fast, pf, ref, pr)
    assert any(not np.array_equal(pf[k], p0[k]) for k in p0 if p0[k].size)  # the steps moved something


@needs_numba
@pytest.mark.usefixtures("_compiled")
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", ["lamb-wd", "lars-wd-nesterov", "prodigy-decoupled", "prodigy-l2-b1=0-safeguard"])
def test_propagate_policy_same_values_as_numpy(case, dtype):
    """NaN and inf flow through both paths alike (Prodigy: into d as well)."""
    rng = np.random.default_rng(8)
    p0 = params_for(rng, dtype, [(6,), (3, 3), (1 << 16) + 1])
    fast, ref = make(case, "numba", on_nonfinite="propagate"), make(case, "numpy", on_nonfinite="propagate")
    pf, pr = copy(p0), copy(p0)
    for step in range(20):
        g = {k: np.asarray(rng.standard_normal(v.shape), dtype=dtype) for k, v in p0.items()}
        if step == 8:
            g["k0"][2], g["k2"][-1] = np.nan, np.inf
        fast.update(pf, g)
        ref.update(pr, g)
    assert fast.last_update_backend == "numba"
    assert np.isnan(pf["k0"]).any()
    assert_same(fast, pf, ref, pr, equal_nan=True)


@needs_numba
@pytest.mark.usefixtures("_compiled")
@pytest.mark.parametrize("case", ["lamb-wd", "lars-wd-nesterov", "prodigy-decoupled"])
def test_raise_and_skip_change_nothing(case):
    rng = np.random.default_rng(9)
    p0 = params_for(rng, np.float32, [(5,), (1 << 16) + 5])
    opt, ref = make(case, "numba"), make(case, "numpy")
    pf, pr = copy(p0), copy(p0)
    g = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in p0.items()}
    opt.update(pf, g)
    ref.update(pr, g)
    before, state = copy(pf), opt.state_dict()
    bad = {k: v.copy() for k, v in g.items()}
    bad["k1"][-1] = np.nan  # the last array: everything before it would have been written already
    with pytest.raises(NonFiniteGradientError):
        opt.update(pf, bad)
    for k in pf:
        assert np.array_equal(pf[k], before[k])
    after = opt.state_dict()
    assert after["step_count"] == state["step_count"] == 1
    for k in state["state"]:
        for slot in opt.slots:
            assert np.array_equal(after["state"][k][slot], state["state"][k][slot])
    skipper = make(case, "numba", on_nonfinite="skip")
    skipper.load_state_dict(state)
    skipper.on_nonfinite = "skip"  # (the state dict carries the policy "raise")
    skipper.update(pf, bad)
    assert skipper.skipped_steps == 1 and all(np.array_equal(pf[k], before[k]) for k in pf)
    opt.update(pf, g)  # and the next step is the reference's next step
    ref.update(pr, g)
    assert_same(opt, pf, ref, pr)


@needs_numba
@pytest.mark.usefixtures("_compiled")
@pytest.mark.parametrize("case", ["lamb-wd", "lars-wd-nesterov", "prodigy-decoupled"])
def test_state_dict_round_trip_between_backends(case):
    rng = np.random.default_rng(10)
    p0 = params_for(rng, np.float64, [(4, 3), (1 << 16) + 2])
    grads = [{k: rng.standard_normal(v.shape) for k, v in p0.items()} for _ in range(12)]
    ref, pr = make(case, "numpy"), copy(p0)
    for g in grads:
        ref.update(pr, g)
    a, pa = make(case, "numba"), copy(p0)
    for g in grads[:4]:
        a.update(pa, g)
    b = make(case, "numpy")  # numba -> numpy
    b.load_state_dict(a.state_dict())
    for g in grads[4:8]:
        b.update(pa, g)
    c = make(case, "numba")  # numpy -> numba
    c.load_state_dict(b.state_dict())
    for g in grads[8:]:
        c.update(pa, g)
    assert c.last_update_backend == "numba"
    assert_same(c, pa, ref, pr)


@needs_numba
@pytest.mark.usefixtures("_compiled")
@pytest.mark.parametrize("case", ["lamb-wd", "lars-wd-nesterov", "prodigy-decoupled"])
def test_parameters_the_loops_decline_run_the_numpy_code(case):
    """float16, complex (LAMB/LARS), non-contiguous parameters and read-only or aliasing gradients take the
    NumPy code; beside them a plain float32 parameter still takes the loops; every value is the reference's."""
    rng = np.random.default_rng(11)
    name = case.split("-")[0]
    values = {"half": rng.standard_normal(9).astype(np.float16), "strided": rng.standard_normal((6, 4)),
              "plain": rng.standard_normal(10).astype(np.float32)}
    if name != "prodigy":  # Prodigy refuses complex parameters
        values["complex"] = (rng.standard_normal(4) + 1j * rng.standard_normal(4)).astype(np.complex64)

    def fresh():
        p = copy(values)
        p["strided"] = np.zeros((6, 8))[:, ::2]  # a non-contiguous view
        p["strided"][...] = values["strided"]
        return p

    for readonly, path in ((False, "numba"), (True, "numpy")):
        fast, ref = make(case, "numba"), make(case, "numpy")
        pf, pr = fresh(), fresh()
        for _ in range(6):
            g = {k: np.asarray(rng.standard_normal(v.shape) + (1j * rng.standard_normal(v.shape) if v.dtype.kind == "c"
                                                               else 0)).astype(v.dtype) for k, v in pf.items()}
            g["plain"].flags.writeable = not readonly  # read-only: e.g. np.asarray of a jax array
            fast.update(pf, g)
            ref.update(pr, g)
            assert fast.last_update_backend == path  # "numba": the plain key took the loops
        assert_same(fast, pf, ref, pr)
    fast, ref = make(case, "numba"), make(case, "numpy")
    pf, pr = {"w": values["plain"].copy()}, {"w": values["plain"].copy()}
    for _ in range(3):
        fast.update(pf, {"w": pf["w"]})  # the gradient IS the parameter: declined (the loops might read a
        ref.update(pr, {"w": pr["w"]})  # value they wrote), the NumPy code runs
        assert fast.last_update_backend == "numpy"
    assert_same(fast, pf, ref, pr)


@needs_numba
@pytest.mark.usefixtures("_compiled")
def test_auto_backend_uses_the_loops_for_large_calls_once_loaded():
    """"auto": a call of at least fused.AUTO_MIN_ELEMENTS elements takes the loops (loaded here by the module's
    warm_up); a smaller call stays on NumPy (it would not pay numba's start-up)."""
    from npoptim.optimizers.fused import parts

    assert all(parts._loaded.get(np.dtype(dt)) for dt in DTYPES)  # fused.warm_up loaded them
    rng = np.random.default_rng(12)
    for case in ("lamb-wd", "lars-wd-nesterov", "prodigy-decoupled"):
        for shapes, path in (([(fused.AUTO_MIN_ELEMENTS,), (3,)], "numba"), ([(100,), (3,)], "numpy")):
            p0 = params_for(rng, np.float32, shapes)
            auto, ref = make(case, "auto"), make(case, "numpy")
            pa, pr = copy(p0), copy(p0)
            for _ in range(3):
                g = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in p0.items()}
                auto.update(pa, g)
                ref.update(pr, g)
                assert auto.last_update_backend == path, (case, shapes)
            assert_same(auto, pa, ref, pr)


@needs_numba
def test_auto_backend_loads_the_loops_in_the_background_in_a_fresh_process():
    """``LAMB()`` starts on the NumPy path (no compile in the caller's thread), switches once loaded, and
    never changes a bit."""
    code = """
import time, numpy as np, npoptim
rng = np.random.default_rng(0)
for cls in (npoptim.LAMB, npoptim.LARS, npoptim.Prodigy):
    p = {"w": rng.standard_normal((512, 600)).astype(np.float32), "b": np.zeros(20, np.float32)}
    q = {k: v.copy() for k, v in p.items()}
    auto, ref = cls(), cls(backend="numpy")
    paths, deadline = [], time.monotonic() + 120
    while not paths or (paths[-1] != "numba" and time.monotonic() < deadline):
        g = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in p.items()}
        auto.update(p, g)
        ref.update(q, g)
        paths.append(auto.last_update_backend)
        time.sleep(0.001)
    same = all(np.array_equal(p[k], q[k]) for k in p) and auto.state_dict()["step_count"] == len(paths)
    print(paths[0], paths[-1], same)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    lines = [line.split() for line in out.stdout.splitlines()]
    assert lines[0] == ["numpy", "numba", "True"]  # the first class: nothing loaded yet
    assert all(line[1:] == ["numba", "True"] for line in lines) and len(lines) == 3, out.stdout


_WITHOUT_NUMBA = r"""
import importlib.abc, sys

class _NoNumba(importlib.abc.MetaPathFinder):  # as if numba were not installed (as tests/test_install.py)
    def find_spec(self, name, path=None, target=None):
        if name == "numba" or name.startswith("numba."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, _NoNumba())
import importlib.util
importlib.util.find_spec = (lambda f: lambda name, *a: None if name.split(".")[0] == "numba" else f(name, *a))(
    importlib.util.find_spec)

import numpy as np
import npoptim
from npoptim.optimizers import fused

n = 1 << 19  # above fused.AUTO_MIN_ELEMENTS: "auto" would take the loops if numba were there
for cls in (npoptim.LAMB, npoptim.LARS, npoptim.Prodigy):
    p, q = {"w": np.linspace(-1, 1, n)}, {"w": np.linspace(-1, 1, n)}
    auto, ref = cls(), cls(backend="numpy")
    for _ in range(3):
        g = {"w": np.sin(np.arange(n) * 0.1)}
        auto.update(p, g)
        ref.update(q, g)
        assert auto.last_update_backend == "numpy"
    assert np.array_equal(p["w"], q["w"]) and not np.array_equal(p["w"], np.linspace(-1, 1, n))
    try:
        cls(backend="numba")
    except ValueError as e:
        assert "not installed" in str(e), e
    else:
        raise AssertionError("backend='numba' without numba was accepted")
fused.warm_up  # exists; not called (it needs numba)
assert "numba" not in sys.modules
print("ok")
"""


def test_whole_tensor_rules_work_without_numba(tmp_path):
    out = subprocess.run([sys.executable, "-c", _WITHOUT_NUMBA], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["ok"]


@needs_numba
@pytest.mark.slow
def test_tensor_kernels_have_no_fma_and_no_fast_math_flags(tmp_path):
    """The bit-equality claim's premise on this CPU: compile every loop afresh (an empty cache directory, so
    the code can be inspected), float32 and float64, and find no fused multiply-add instruction in the
    machine code and no fast-math flag or FMA intrinsic in the LLVM IR."""
    setup = """
from npoptim.optimizers.fused import parts, tensor
parts.warm_up()
KERNELS = list(tensor.KERNELS.items())
"""
    assert signatures_without_fma(setup, tmp_path, min_asm=500, timeout=600) == 2 * 5  # 5 loops, 2 dtypes
