"""The compiled fast path (``backend="numba"``) against the NumPy reference (``backend="numpy"``).

The reference is each rule's ``_rule`` in NumPy, itself checked against
torch.optim in test_parity_torch.py.  The fast path repeats the same IEEE
operations in the same order and dtype (no fast-math, no FMA contraction), so
the claim tested here is the strongest one: the same bits, in float32 as well
as float64, for every rule of the registry, over several steps -- including
many arrays crossing the kernel's chunk boundaries, keys appearing late,
``None`` gradients (so keys carry different step counts), weight decay, state
dicts moved between the two paths, and calls the fast path hands back to the
reference.  It also checks the safety guarantees with the fast path on: a
call that raises (or is skipped) changes nothing.

Why bit equality is a fair claim on any CPU: both paths run only correctly
rounded IEEE ``+ - * /``, ``sqrt``, ``max`` and ``sign`` on the same operands
in the same order (vectorising such a loop changes no result); the kernels are
compiled with fast-math off, so LLVM neither reassociates nor contracts
``a*b + c`` into an FMA (``test_kernels_have_no_fma_and_no_fast_math_flags``
checks the machine code compiled here); they contain no floating-point
reduction (the finite check ORs exponent bits).  The only reduction
(``clip_norm``'s global norm, a BLAS dot) and the only transcendentals (the
bias corrections ``b**t``, ``math.sqrt``, Nadam's ``0.96**(t psi)``) are
computed in Python before the paths split (``Optimizer.update``) or in
``_fused_scalars``, the same function on the same inputs for both paths.
"""

from __future__ import annotations

import copy as copy_module
import os
import pickle
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from machine_code import signatures_without_fma
from npoptim import OPTIMIZERS, NonFiniteGradientError
from npoptim.optimizers import base, fused

pytestmark = pytest.mark.skipif(not fused.fast_path_possible(), reason="numba is not installed")

RULES = sorted(r for r in OPTIMIZERS if OPTIMIZERS[r]._fused_kernel is not None)  # NumPy-only rules have none
DTYPES = [np.float32, np.float64]
# non-default hyperparameters, so no constant is accidentally right
HYPER = {
    "sgd": {"lr": 0.05},
    "momentum": {"lr": 0.03, "momentum": 0.8},
    "nesterov": {"lr": 0.03, "momentum": 0.7},
    "adagrad": {"lr": 0.1, "eps": 1e-6},
    "rmsprop": {"lr": 0.02, "decay_rate": 0.9, "eps": 1e-6},
    "adam": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-7},
    "adamw": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-7},
    "nadam": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-7, "momentum_decay": 0.01},
    "adamax": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-7},
    "adadelta": {"lr": 0.5, "decay_rate": 0.8, "eps": 1e-5},
    "radam": {"lr": 0.01, "beta1": 0.8, "beta2": 0.9, "eps": 1e-7},  # rectified from step 6 (rho_inf = 19)
    "lion": {"lr": 0.01, "beta1": 0.8, "beta2": 0.95},
    # issue 15: step sizes that hit both clip bounds within the 6 steps; averaging from step 3 on (t0 = 1)
    "rprop": {"lr": 0.05, "etas": (0.4, 1.7), "step_sizes": (0.02, 0.12)},
    "asgd": {"lr": 0.05, "lambd": 0.3, "alpha": 0.6, "t0": 1.0},
    "schedulefreesgd": {"lr": 0.1, "momentum": 0.8, "warmup_steps": 3, "r": 0.5, "weight_lr_power": 1.5},
    "schedulefreeadamw": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-7, "warmup_steps": 3, "r": 0.5},
}
#: Configurations that change a rule's slots or kernel branches, checked like the defaults.
VARIANTS = {
    "adam-amsgrad": ("adam", {"amsgrad": True}),
    "adamw-amsgrad": ("adamw", {"amsgrad": True}),
    "rmsprop-centered": ("rmsprop", {"centered": True}),
    "rmsprop-momentum": ("rmsprop", {"momentum": 0.8}),
    "rmsprop-centered-momentum": ("rmsprop", {"centered": True, "momentum": 0.7}),
    "adagrad-options": ("adagrad", {"initial_accumulator_value": 0.3, "lr_decay": 0.05}),
    "adam-clipped": ("adam", {"clip_norm": 5.0, "clip_value": 1.5}),
}
# 0-d, empty, tiny, and arrays larger than one kernel chunk (fused.BLOCK = 65,536 elements)
SHAPES = [(), (0,), (1,), (3, 4), (7,), (fused.BLOCK + 3,), (2, 3, 5), (300, 500), (17,)] + [(4, 8)] * 20


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    fused.warm_up()  # compile (cold cache) or load every kernel once, synchronously


def make(rule: str, backend: str, **extra) -> base.Optimizer:
    return OPTIMIZERS[rule](backend=backend, **{**HYPER[rule], **extra})


def params_for(rng, dtype, shapes=SHAPES):
    return {f"k{i}": rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes)}


def copy(d):
    return {k: (None if v is None else v.copy()) for k, v in d.items()}


def assert_same(opt_a, pa, opt_b, pb, equal_nan=False):
    """Bit-identical parameters and state dicts (np.array_equal; with ``equal_nan`` a NaN equals a NaN)."""
    assert pa.keys() == pb.keys()
    for k in pa:
        assert pa[k].dtype == pb[k].dtype
        assert np.array_equal(pa[k], pb[k], equal_nan=equal_nan), k
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    assert sa["step_count"] == sb["step_count"] and sa["skipped_steps"] == sb["skipped_steps"]
    assert sa["state"].keys() == sb["state"].keys()
    for k, entry in sa["state"].items():
        assert entry["step"] == sb["state"][k]["step"], k
        for slot in opt_a.slots:
            assert entry[slot].dtype == sb["state"][k][slot].dtype
            assert np.array_equal(entry[slot], sb["state"][k][slot], equal_nan=equal_nan), (k, slot)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", RULES + list(VARIANTS))
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_same_bits_as_reference(rule, dtype, weight_decay):
    rng = np.random.default_rng(1)
    p0 = params_for(rng, dtype)
    rule, extra = VARIANTS.get(rule, (rule, {}))
    fast = make(rule, "numba", weight_decay=weight_decay, **extra)
    ref = make(rule, "numpy", weight_decay=weight_decay, **extra)
    pf, pr = copy(p0), copy(p0)
    late = rng.standard_normal((5, 6)).astype(dtype)
    for step in range(6):
        if step == 2:  # a key appears: fresh state for it only
            pf["late"], pr["late"] = late.copy(), late.copy()
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in pf.items()}
        if step in (1, 3):  # no gradient: key, state and its step count untouched
            grads["k3"] = None
            grads["k8"] = None
        fast.update(pf, grads)
        ref.update(pr, grads)
        assert fast.last_update_backend == "numba" and ref.last_update_backend == "numpy"
        assert_same(fast, pf, ref, pr)
    # keys now carry different step counts (bias corrections per key)
    assert {fast.state[k]["step"] for k in fast.state} == {6, 4}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule", RULES + list(VARIANTS))
def test_propagate_policy_same_values_as_reference(rule, dtype):
    """``on_nonfinite="propagate"``: no finite pass; NaN/inf reach the rules, and both paths agree.

    The gradients carry NaN, +inf and -inf in some elements of several arrays
    (one in the last chunk of the large array), at different steps, so each rule's
    arithmetic meets non-finite inputs in its gradient and, later, in its state
    and parameters (maxima, signs, square roots, divisions).  The reference path
    also must not warn about that arithmetic: it was asked for.
    """
    rng = np.random.default_rng(6)
    p0 = params_for(rng, dtype)
    rule, extra = VARIANTS.get(rule, (rule, {}))
    fast = make(rule, "numba", on_nonfinite="propagate", **extra)
    ref = make(rule, "numpy", on_nonfinite="propagate", **extra)
    pf, pr = copy(p0), copy(p0)
    poison = {1: [("k3", (0, 1), np.nan), ("k5", (-1,), np.inf)], 2: [("k7", (4, 2), -np.inf)], 3: [("k0", (), np.nan)]}
    for step in range(5):
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in pf.items()}
        for key, where, value in poison.get(step, []):
            grads[key][where] = value
        fast.update(pf, grads)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ref.update(pr, grads)
        assert fast.last_update_backend == "numba" and ref.last_update_backend == "numpy"
        assert_same(fast, pf, ref, pr, equal_nan=True)
        if step == 1:  # the NaN really went in (into the parameter, or only the state where a step is
            # bounded), element by element: the other elements of the poisoned array stay finite
            k3 = [pf["k3"]] + [fast.state["k3"][slot] for slot in fast.slots]
            assert not all(np.isfinite(a[0, 1]) for a in k3) and all(np.isfinite(a[0, 0]) for a in k3)
    assert fast.skipped_steps == 0 and fast.step_count == 5
    k3 = [pf["k3"]] + [fast.state["k3"][slot] for slot in fast.slots]
    # ... and stays, except in Rprop: sign(NaN g') = 0 stores the next (finite) gradient, as torch's Rprop
    assert all(np.isfinite(a[0, 1]) for a in k3) == (rule == "rprop")


def test_only_keys_with_gradients_get_state():
    rng = np.random.default_rng(2)
    p = params_for(rng, np.float64, [(3,), (4,)])
    opt = make("adam", "numba")
    opt.update(p, {"k0": np.ones(3), "k1": None})
    assert list(opt.state) == ["k0"] and opt.state["k0"]["step"] == 1
    opt.update(p, {"k0": np.ones(3), "k1": np.ones(4)})
    assert opt.state["k0"]["step"] == 2 and opt.state["k1"]["step"] == 1
    assert opt.step_count == 2


def test_all_none_gradients_change_nothing():
    # the reference counts a call with no gradient at all as not a step
    rng = np.random.default_rng(3)
    p = params_for(rng, np.float32, [(3,), (4,)])
    fast, ref = make("adam", "numba"), make("adam", "numpy")
    pf, pr = copy(p), copy(p)
    for opt, pp in ((fast, pf), (ref, pr)):
        opt.update(pp, {"k0": np.ones(3, np.float32), "k1": np.ones(4, np.float32)})
        opt.update(pp, {"k0": None, "k1": None})
    assert_same(fast, pf, ref, pr)


@pytest.mark.parametrize("rule", RULES)
def test_nan_in_last_array_changes_nothing(rule):
    rng = np.random.default_rng(4)
    p = params_for(rng, np.float32)
    opt = make(rule, "numba")
    opt.update(p, {k: np.ones_like(v) for k, v in p.items()})
    before_p, before_s = copy(p), opt.state_dict()
    grads = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in p.items()}
    last = list(grads)[-1]
    grads[last][-1, -1] = np.nan
    with pytest.raises(NonFiniteGradientError) as info:
        opt.update(p, grads)
    assert info.value.keys == [last] and info.value.step == 2 and repr(last) in str(info.value)
    after_s = opt.state_dict()
    assert after_s["step_count"] == 1 and after_s["skipped_steps"] == 0
    for k in p:
        assert np.array_equal(p[k], before_p[k])
        assert after_s["state"][k]["step"] == before_s["state"][k]["step"]
        for slot in opt.slots:
            assert np.array_equal(after_s["state"][k][slot], before_s["state"][k][slot])


def test_skip_policy_matches_reference():
    rng = np.random.default_rng(5)
    p0 = params_for(rng, np.float64)
    fast, ref = make("adam", "numba", on_nonfinite="skip"), make("adam", "numpy", on_nonfinite="skip")
    pf, pr = copy(p0), copy(p0)
    for step in range(4):
        grads = {k: rng.standard_normal(v.shape) for k, v in p0.items()}
        if step == 2:
            grads["k5"][7] = np.inf
        fast.update(pf, grads)
        ref.update(pr, grads)
    assert fast.skipped_steps == 1 and fast.step_count == 3
    assert fast.last_update_backend == "numba"  # back on the fast path after the skipped step
    assert_same(fast, pf, ref, pr)


@pytest.mark.parametrize("rule", ["adam", "momentum", "sgd"])
def test_state_dict_round_trip_between_paths(rule):
    rng = np.random.default_rng(6)
    p0 = params_for(rng, np.float32)
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in p0.items()} for _ in range(6)]
    # fast 3 steps -> reference 3 steps, and reference 3 -> fast 3; and 6 uninterrupted of each
    a1, pa = make(rule, "numba"), copy(p0)
    b1, pb = make(rule, "numpy"), copy(p0)
    for g in grads[:3]:
        a1.update(pa, g)
        b1.update(pb, g)
    a2, b2 = make(rule, "numpy"), make(rule, "numba")
    a2.load_state_dict(a1.state_dict())
    b2.load_state_dict(b1.state_dict())
    for g in grads[3:]:
        a2.update(pa, g)
        b2.update(pb, g)
    assert b2.last_update_backend == "numba"
    whole, pw = make(rule, "numba"), copy(p0)
    for g in grads:
        whole.update(pw, g)
    assert_same(a2, pa, whole, pw)
    assert_same(b2, pb, whole, pw)


def test_load_state_dict_into_a_running_fast_optimizer():
    rng = np.random.default_rng(7)
    p0 = params_for(rng, np.float64, [(10,), (fast_n := fused.BLOCK * 2 + 1,)])
    g = {k: rng.standard_normal(v.shape) for k, v in p0.items()}
    opt, p = make("rmsprop", "numba"), copy(p0)
    opt.update(p, g)
    saved, saved_p = opt.state_dict(), copy(p)
    opt.update(p, g)
    opt.load_state_dict(saved)  # replaces the state the fast path's buffers hold
    p = saved_p
    opt.update(p, g)
    ref, pr = make("rmsprop", "numpy"), copy(p0)
    ref.update(pr, g)
    ref.update(pr, g)
    assert opt.last_update_backend == "numba" and p["k1"].size == fast_n
    assert_same(opt, p, ref, pr)


def test_hyperparameter_changes_between_steps_are_used():
    rng = np.random.default_rng(8)
    p0 = params_for(rng, np.float32, [(100,), (3, 3)])
    fast, ref = make("nesterov", "numba"), make("nesterov", "numpy")
    pf, pr = copy(p0), copy(p0)
    for lr in (0.1, 0.05, 0.01):
        fast.lr = ref.lr = lr
        fast.momentum = ref.momentum = lr * 5
        g = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in p0.items()}
        fast.update(pf, g)
        ref.update(pr, g)
    assert_same(fast, pf, ref, pr)


def test_new_param_arrays_each_step_keep_their_state():
    # frameworks that rebuild their parameter dict (or arrays) every step
    rng = np.random.default_rng(9)
    p0 = params_for(rng, np.float64, [(50,), (4, 5)])
    fast, ref = make("adam", "numba"), make("adam", "numpy")
    pf, pr = copy(p0), copy(p0)
    for _ in range(3):
        g = {k: rng.standard_normal(v.shape) for k, v in p0.items()}
        pf = copy(pf)  # new arrays, same keys
        fast.update(pf, g)
        ref.update(pr, g)
    assert fast.last_update_backend == "numba"
    assert_same(fast, pf, ref, pr)


def _unusual_cases():
    """Calls the fast path hands to the reference: (name, make) with make(seed) -> (params, grads-or-None)."""

    def f32(rng):
        return params_for(rng, np.float32, [(6, 4), (5,)])

    def strided(rng):
        return rng.standard_normal((6, 8)).astype(np.float32)[:, ::2]

    def complex_(rng):
        return {"z": rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))}

    yield "float16", lambda rng: (params_for(rng, np.float16, [(6, 4), (5,)]), None)
    yield "complex", lambda rng: (complex_(rng), None)
    yield "non-contiguous param", lambda rng: ({"a": strided(rng), "b": f32(rng)["k1"]}, None)
    yield "float64 grad", lambda rng: (f32(rng), {"k0": rng.standard_normal((6, 4)), "k1": rng.standard_normal(5)})
    yield "non-contiguous grad", lambda rng: (f32(rng), {"k0": strided(rng), "k1": np.ones(5, np.float32)})
    yield "grad is the param", lambda rng: (params_for(rng, np.float64, [(7,)]), "self")


@pytest.mark.parametrize("rule", ["adam", "rmsprop"])
def test_unusual_calls_take_the_reference_path_with_the_same_result(rule):
    for name, case in _unusual_cases():
        fast, ref = make(rule, "numba"), make(rule, "numpy")
        pf, _ = case(np.random.default_rng(10))
        pr, _ = case(np.random.default_rng(10))  # the same values, built the same way (views stay views)
        for step in range(2):
            for opt, p in ((fast, pf), (ref, pr)):
                _, g = case(np.random.default_rng(20 + step))
                if g is None:
                    g = {k: np.full(v.shape, 0.5, v.dtype) for k, v in p.items()}
                elif g == "self":
                    g = dict(p)
                opt.update(p, g)
            assert fast.last_update_backend == "numpy", name
        assert_same(fast, pf, ref, pr)


def test_fast_path_resumes_after_an_unusual_call():
    rng = np.random.default_rng(11)
    p0 = params_for(rng, np.float32, [(9,), (4, 4)])
    fast, ref = make("adam", "numba"), make("adam", "numpy")
    pf, pr = copy(p0), copy(p0)
    paths = []
    for step in range(4):
        g = {k: rng.standard_normal(v.shape) for k, v in p0.items()}  # float64 grads: reference path
        if step != 1:
            g = {k: v.astype(np.float32) for k, v in g.items()}
        fast.update(pf, g)
        ref.update(pr, g)
        paths.append(fast.last_update_backend)
    assert paths == ["numba", "numpy", "numba", "numba"]
    assert_same(fast, pf, ref, pr)


def errors_of(opt, params, grads):
    with pytest.raises(Exception) as info:
        opt.update(params, grads)
    return type(info.value), str(info.value)


def test_errors_after_the_plan_exists_are_the_reference_errors():
    """Once the fast path knows a structure, a bad call still raises exactly what the reference raises."""
    rng = np.random.default_rng(12)
    p0 = params_for(rng, np.float64, [(4,), (2, 3)])
    good = {k: np.ones_like(v) for k, v in p0.items()}
    bad_calls = [
        lambda p: (p, {"k0": good["k0"]}),  # missing key
        lambda p: (p, {**good, "extra": np.ones(2)}),  # extra key
        lambda p: (p, {**good, "k1": np.ones((3, 2))}),  # shape
        lambda p: (p, {**good, "k1": np.ones((2, 3), np.int64)}),  # integer grad
        lambda p: (p, {**good, "k1": [[1.0] * 3] * 2}),  # not an array
        lambda p: ({**p, "k0": p["k0"].astype(np.int32)}, good),  # integer param
    ]
    for make_call in bad_calls:
        fast, ref = make("adam", "numba"), make("adam", "numpy")
        pf, pr = copy(p0), copy(p0)
        fast.update(pf, good)
        ref.update(pr, good)
        before = copy(pf)
        assert errors_of(fast, *make_call(pf)) == errors_of(ref, *make_call(pr))
        assert all(np.array_equal(before[k], pf[k]) for k in pf)
        assert_same(fast, pf, ref, pr)


def test_param_changed_in_place_after_the_plan_is_caught():
    rng = np.random.default_rng(13)
    p0 = params_for(rng, np.float64, [(6,), (2, 3)])
    g = {k: np.ones_like(v) for k, v in p0.items()}
    # made read-only
    fast, ref = make("sgd", "numba"), make("sgd", "numpy")
    pf, pr = copy(p0), copy(p0)
    fast.update(pf, g)
    ref.update(pr, g)
    pf["k1"].flags.writeable = False
    pr["k1"].flags.writeable = False
    assert errors_of(fast, pf, g) == errors_of(ref, pr, g)
    # reshaped in place: the state no longer fits
    fast, ref = make("adam", "numba"), make("adam", "numpy")
    pf, pr = copy(p0), copy(p0)
    fast.update(pf, g)
    ref.update(pr, g)
    pf["k1"].shape = (3, 2)
    pr["k1"].shape = (3, 2)
    g2 = {"k0": g["k0"], "k1": np.ones((3, 2))}
    kind, message = errors_of(fast, pf, g2)
    assert (kind, message) == errors_of(ref, pr, g2) and "changed since its state was created" in message


def test_numpy_backend_pieces_are_the_whole_array_rule(monkeypatch):
    """``backend="numpy"`` runs ``_rule`` on 64K pieces; the same bits as one call on the whole array."""
    rng = np.random.default_rng(14)
    p0 = {"w": rng.standard_normal(3 * base.CHUNK + 5).astype(np.float32), "b": rng.standard_normal(10)}
    for rule in RULES:
        pieces, whole = make(rule, "numpy"), make(rule, "numpy")
        pp, pw = copy(p0), copy(p0)
        for _ in range(3):
            g = {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in p0.items()}
            pieces.update(pp, g)
            monkeypatch.setattr(base, "CHUNK", 1 << 40)
            whole.update(pw, g)
            monkeypatch.undo()
        assert_same(pieces, pp, whole, pw)


def test_backend_is_validated_and_not_a_hyperparameter():
    with pytest.raises(ValueError, match="backend='gpu'"):
        OPTIMIZERS["adam"](backend="gpu")
    opt = OPTIMIZERS["adam"](backend="numpy")
    with pytest.raises(ValueError, match="backend='fast'"):
        opt.backend = "fast"
    assert opt.backend == "numpy"
    assert "backend" not in opt.hyperparameters and "backend" not in opt.state_dict()["hyperparameters"]
    opt.backend = "numba"
    p = {"w": np.ones(3)}
    opt.update(p, {"w": np.ones(3)})
    assert opt.last_update_backend == "numba"


def test_auto_backend_switches_to_the_compiled_path():
    rng = np.random.default_rng(15)
    p0 = params_for(rng, np.float32, [(fused.AUTO_MIN_ELEMENTS,), (3, 3)])
    auto, ref = OPTIMIZERS["momentum"](), OPTIMIZERS["momentum"](backend="numpy")
    pa, pr = copy(p0), copy(p0)
    deadline = time.monotonic() + 60
    while True:
        g = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in p0.items()}
        auto.update(pa, g)
        ref.update(pr, g)
        if auto.last_update_backend == "numba" or time.monotonic() > deadline:
            break
    assert auto.last_update_backend == "numba"
    assert_same(auto, pa, ref, pr)


def test_auto_backend_sends_small_problems_to_the_serial_kernel_once_loaded():
    """Below AUTO_MIN_ELEMENTS a parallel region costs more than NumPy's passes: "auto" takes the serial
    kernel (no thread wake-ups) once it is loaded (here by the module's warm_up), with the reference's bits;
    small calls of two dtypes (two groups, no serial plan) stay on NumPy."""
    rng = np.random.default_rng(18)
    p0 = params_for(rng, np.float64, [(fused.AUTO_MIN_ELEMENTS - 10,), (3, 3)])
    opt, ref = OPTIMIZERS["adam"](), OPTIMIZERS["adam"](backend="numpy")
    pr = copy(p0)
    for _ in range(3):
        g = {k: rng.standard_normal(v.shape) for k, v in p0.items()}
        opt.update(p0, g)
        ref.update(pr, g)
        assert opt.last_update_backend == "numba" and opt._fused_plan.serial
    assert opt._fused_plan.lane is not None  # the steady state: the next identical call takes the lane
    assert_same(opt, p0, ref, pr)
    mixed = {"a": np.zeros(5, np.float32), "b": np.zeros(5)}
    opt = OPTIMIZERS["adam"]()
    for _ in range(2):
        opt.update(mixed, {k: np.ones_like(v) for k, v in mixed.items()})
        assert opt.last_update_backend == "numpy"
    big = {"w": np.zeros(fused.AUTO_MIN_ELEMENTS)}
    forced = OPTIMIZERS["adam"](backend="numba")
    forced.update(big, {"w": np.ones_like(big["w"])})
    assert forced.last_update_backend == "numba"


def test_numba_stays_off_openmp_so_torch_is_not_slowed():
    """numba's OpenMP layer beside torch's made torch ~90x slower; we pick tbb/workqueue instead."""
    import numba

    if "NUMBA_THREADING_LAYER" in os.environ:
        pytest.skip("the user chose numba's threading layer")
    opt, p = make("adam", "numba"), {"w": np.ones(fused.BLOCK * 3)}
    opt.update(p, {"w": np.ones_like(p["w"])})
    assert numba.threading_layer() in ("tbb", "workqueue")


def test_import_npoptim_does_not_import_numba():
    code = "import sys, numpy as np, npoptim; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_copied_optimizers_do_not_share_the_fast_paths_buffers():
    rng = np.random.default_rng(16)
    p0 = params_for(rng, np.float32, [(10,), (3, 4)])
    grads = [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in p0.items()} for _ in range(4)]
    opt, p = make("adam", "numba"), copy(p0)
    for g in grads[:2]:
        opt.update(p, g)
    p2, opt2 = copy_module.deepcopy((p, opt))  # e.g. a trainer object holding both
    p3, opt3 = pickle.loads(pickle.dumps((p, opt)))
    for g in grads[2:]:
        for o, pp in ((opt, p), (opt2, p2), (opt3, p3)):
            o.update(pp, g)
            assert o.last_update_backend == "numba"
    ref, pr = make("adam", "numpy"), copy(p0)
    for g in grads:
        ref.update(pr, g)
    for o, pp in ((opt, p), (opt2, p2), (opt3, p3)):
        assert_same(o, pp, ref, pr)


def test_gradients_with_equal_but_distinct_dtype_objects_stay_on_the_fast_path():
    # arrays that went through pickle (joblib, dask, multiprocessing) carry a new dtype object
    rng = np.random.default_rng(17)
    p0 = params_for(rng, np.float64, [(10,), (3, 4)])
    fast, ref = make("rmsprop", "numba"), make("rmsprop", "numpy")
    pf, pr = pickle.loads(pickle.dumps(p0)), copy(p0)
    for _ in range(3):
        g = pickle.loads(pickle.dumps({k: rng.standard_normal(v.shape) for k, v in p0.items()}))
        assert g["k0"].dtype is not np.dtype(np.float64)
        fast.update(pf, g)
        ref.update(pr, g)
        assert fast.last_update_backend == "numba"
    assert_same(fast, pf, ref, pr)


def test_default_backend_loads_the_kernels_in_the_background_in_a_fresh_process():
    """``Adam()`` starts on the NumPy path, switches once numba is loaded, and never changes a bit."""
    code = """
import time, numpy as np, npoptim
rng = np.random.default_rng(0)
p = {"w": rng.standard_normal((512, 512)).astype(np.float32), "b": np.zeros(20, np.float32)}
q = {k: v.copy() for k, v in p.items()}
auto, ref = npoptim.Adam(), npoptim.Adam(backend="numpy")
paths, deadline = [], time.monotonic() + 120
while not paths or (paths[-1] != "numba" and time.monotonic() < deadline):
    g = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in p.items()}
    auto.update(p, g)
    ref.update(q, g)
    paths.append(auto.last_update_backend)
    time.sleep(0.001)
same = all(np.array_equal(p[k], q[k]) for k in p)
print(paths[0], paths[-1], same)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=180)
    first, last, same = out.stdout.split()
    assert (first, last, same) == ("numpy", "numba", "True")


@pytest.mark.slow
def test_kernels_have_no_fma_and_no_fast_math_flags(tmp_path):
    """The bit-equality claim's premise, on this machine's CPU: compile the multiply-add-heaviest drivers
    afresh (an empty cache directory, so the code can be inspected), parallel and serial, and find no
    fused multiply-add instruction in their machine code and no fast-math flag or FMA intrinsic in their
    LLVM IR."""
    setup = """
import numpy as np
from npoptim import OPTIMIZERS
from npoptim.optimizers import fused
from npoptim.optimizers.fused import kernels, serial
cases = [("adam", {}), ("nadam", {}), ("adadelta", {}), ("rmsprop", {"centered": True, "momentum": 0.5}),
         ("schedulefreeadamw", {"weight_decay": 0.1})]  # fused/rprop_asgd_sf.py's multiply-add-heaviest
for dtype in (np.float32, np.float64):
    for rule, extra in cases:
        for size in (fused.SERIAL_MAX_ELEMENTS + 1, 5):  # the parallel driver, the serial kernel
            p = {"w": np.ones(size, dtype)}
            opt = OPTIMIZERS[rule](backend="numba", **extra)
            opt.update(p, {"w": np.ones_like(p["w"])})
            assert opt.last_update_backend == "numba"
KERNELS = [(name, fn) for name in ("adam", "nadam", "adadelta", "rmsprop_centered_momentum", "schedulefree_adamw")
           for fn in (kernels.DRIVERS[name], serial.SERIAL[name])]
"""
    assert signatures_without_fma(setup, tmp_path, min_asm=1000, timeout=300) == 20


#: Issue 15's kernels at the edges of their hyperparameters: zero and degenerate step-size bounds,
#: averaging from the first step, mu_t that rounds to 1 in float32 only (t0 = 1 - 1e-8: mu_3 =
#: 1/(1 + 1e-8), so the kernel must decide "copy" on the Python float, as the rule), no interpolation
#: (momentum/beta1 0) or nearly all of it (0.99), no second-moment memory, eps = 0 with decay.
EDGES = [
    ("rprop", {"lr": 0.0, "step_sizes": (0.0, 1.0)}),
    ("rprop", {"lr": 1e-3, "etas": (0.1, 3.0), "step_sizes": (1e-4, 1e-2)}),
    ("rprop", {"lr": 0.5, "step_sizes": (0.5, 0.5)}),
    ("asgd", {"t0": 0.0}),
    ("asgd", {"t0": 2.5, "alpha": 0.0, "lambd": 0.0}),
    ("asgd", {"lambd": 1.0, "lr": 0.5, "t0": 1 - 1e-8}),
    ("schedulefreesgd", {"momentum": 0.0}),
    ("schedulefreesgd", {"momentum": 0.99, "weight_decay": 0.1}),
    ("schedulefreesgd", {"warmup_steps": 0, "weight_lr_power": 0.0, "r": 2.0}),
    ("schedulefreeadamw", {"beta1": 0.0}),
    ("schedulefreeadamw", {"eps": 0.0, "weight_decay": 0.5}),
    ("schedulefreeadamw", {"beta2": 0.0, "lr": 1.0}),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rule, extra", EDGES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(EDGES)])
@pytest.mark.parametrize("size", [5, fused.SERIAL_MAX_ELEMENTS + 7], ids=["serial", "parallel"])
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the eps = 0 case's 0/0
def test_issue_15_kernels_at_the_edges_of_their_hyperparameters(rule, extra, dtype, size):
    """The serial and the parallel kernel, same bits as the rule, where branches and roundings differ."""
    rng = np.random.default_rng(11)
    p0 = {"a": rng.standard_normal(size).astype(dtype), "b": rng.standard_normal((3, 4)).astype(dtype)}
    fast, ref = (OPTIMIZERS[rule](backend=b, **extra) for b in ("numba", "numpy"))
    if extra.get("t0") == 1 - 1e-8:  # the case is what it claims: float32(mu_3) == 1 although mu_3 < 1
        assert fast._scalars(3)[1] < 1 and np.float32(fast._scalars(3)[1]) == 1
    pf, pr = copy(p0), copy(p0)
    for step in range(7):
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in pf.items()}
        grads["a"][::3] = 0.0  # sign 0 (Rprop), no move (the others' direction 0)
        if step % 2:
            grads["b"] = -grads["b"] if step == 3 else grads["b"]  # sign flips (Rprop waits a step)
        fast.update(pf, grads)
        ref.update(pr, grads)
        assert fast.last_update_backend == "numba"
        assert_same(fast, pf, ref, pr, equal_nan=True)  # eps = 0 and g = 0: 0/0, NaN on both paths alike
