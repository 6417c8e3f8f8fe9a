"""The small-call fast path (serial kernel + steady-state lane) notices everything that can change between calls.

``fused/small.py`` lets a call that looks like the last validated one skip the
Python validation: the lane confirms the dict lengths and the state object,
and the serial kernel confirms every array header against the plan.  Each test
here brings an optimizer into that steady state (``plan.lane`` set), changes
ONE thing between calls -- a key, an array, its shape, size, dtype, flags,
memory, a gradient's dtype or layout, a ``None`` gradient, a hyperparameter,
a ``load_state_dict`` -- and asserts the same outcome as the NumPy reference
given the same calls: the same bits in every parameter and state array, or
the same exception with the same message, having changed nothing.

Bit equality is the claim because both paths do the same IEEE operations in
the same order (see test_fused.py's docstring); the reference is itself
checked against torch.optim in test_parity_torch.py.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from npoptim import OPTIMIZERS
from npoptim.optimizers import fused
from npoptim.schedules import StepDecay

pytestmark = pytest.mark.skipif(not fused.fast_path_possible(), reason="numba is not installed")

RULES = ["sgd", "momentum", "adam", "adagrad"]  # step-free scalars (sgd, momentum) and per-step ones


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    fused.warm_up()


def grads_for(params, seed):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in params.items()}


def steady(rule, dtype=np.float64, **hyper):
    """A fast (numba) and a reference (numpy) optimizer after three identical-structure steps: the lane is set."""
    rng = np.random.default_rng(0)
    p0 = {"w": rng.standard_normal((3, 4)).astype(dtype), "b": rng.standard_normal(4).astype(dtype)}
    fast, ref = OPTIMIZERS[rule](backend="numba", **hyper), OPTIMIZERS[rule](backend="numpy", **hyper)
    pf, pr = {k: v.copy() for k, v in p0.items()}, {k: v.copy() for k, v in p0.items()}
    for s in range(3):
        g = grads_for(pf, s)
        fast.update(pf, g)
        ref.update(pr, g)
    assert fast.last_update_backend == "numba" and fast._fused_plan.lane is not None
    return fast, pf, ref, pr


def both(fast, pf, ref, pr, gf, gr=None):
    """The same call on both; the same exception (type and message) or none; then the same bits."""
    errors = []
    for opt, p, g in ((fast, pf, gf), (ref, pr, gf if gr is None else gr)):
        try:
            opt.update(p, g)
            errors.append(None)
        except (TypeError, ValueError) as exc:
            errors.append((type(exc), str(exc)))
    assert errors[0] == errors[1]
    assert_same(fast, pf, ref, pr)
    return errors[0]


def assert_same(fast, pf, ref, pr):
    assert pf.keys() == pr.keys()
    for k in pf:
        assert pf[k].dtype == pr[k].dtype and pf[k].shape == pr[k].shape, k
        assert np.array_equal(pf[k], pr[k]), k
    sf, sr = fast.state_dict(), ref.state_dict()
    assert (sf["step_count"], sf["skipped_steps"]) == (sr["step_count"], sr["skipped_steps"])
    assert sf["state"].keys() == sr["state"].keys()
    for k, entry in sf["state"].items():
        assert entry["step"] == sr["state"][k]["step"], k
        for slot in fast.slots:
            assert np.array_equal(entry[slot], sr["state"][k][slot]), (k, slot)


def then_steady_again(fast, pf, ref, pr, seed=10):
    """Two more ordinary calls after the change: still the same bits (the path re-planned correctly)."""
    for s in range(2):
        assert both(fast, pf, ref, pr, grads_for(pf, seed + s)) is None


@pytest.mark.parametrize("rule", RULES)
def test_key_added_gets_fresh_state(rule):
    fast, pf, ref, pr = steady(rule)
    pf["new"], pr["new"] = np.ones(5), np.ones(5)
    assert both(fast, pf, ref, pr, grads_for(pf, 5)) is None
    assert fast.state["new"]["step"] == 1
    then_steady_again(fast, pf, ref, pr)


@pytest.mark.parametrize("rule", RULES)
def test_key_removed(rule):
    fast, pf, ref, pr = steady(rule)
    del pf["b"], pr["b"]
    assert both(fast, pf, ref, pr, grads_for(pf, 5)) is None
    then_steady_again(fast, pf, ref, pr)


def test_grads_with_a_missing_or_extra_key_raise_the_reference_error():
    fast, pf, ref, pr = steady("adam")
    g = grads_for(pf, 5)
    del g["b"]
    assert "same keys" in both(fast, pf, ref, pr, g)[1]
    g = {**grads_for(pf, 5), "c": np.ones(2)}
    g.pop("w")
    assert "same keys" in both(fast, pf, ref, pr, g)[1]
    then_steady_again(fast, pf, ref, pr)


@pytest.mark.parametrize("rule", RULES)
def test_array_swapped_for_another(rule):
    fast, pf, ref, pr = steady(rule)
    other = np.full((3, 4), 0.5)
    pf["w"], pr["w"] = other.copy(), other.copy()
    assert both(fast, pf, ref, pr, grads_for(pf, 5)) is None
    then_steady_again(fast, pf, ref, pr)


def test_array_reshaped_in_place():
    fast, pf, ref, pr = steady("adam")
    pf["w"].shape = pr["w"].shape = (4, 3)  # same memory, another shape: its state no longer fits
    _, message = both(fast, pf, ref, pr, grads_for(pf, 5))
    assert "params['w']" in message and "state was made for" in message


def test_array_resized_in_place():
    fast, pf, ref, pr = steady("momentum")
    pf["b"].resize(6, refcheck=False)
    pr["b"].resize(6, refcheck=False)
    _, message = both(fast, pf, ref, pr, grads_for(pf, 5))
    assert "params['b']" in message and "[6]" in message


def test_array_retyped_in_place():
    fast, pf, ref, pr = steady("adam")
    pf["b"].dtype = pr["b"].dtype = np.float32  # a float64 array viewed as twice as many float32
    _, message = both(fast, pf, ref, pr, grads_for(pf, 5))
    assert "params['b'] is float32[8]" in message


def test_array_made_read_only():
    fast, pf, ref, pr = steady("adam")
    pf["w"].flags.writeable = pr["w"].flags.writeable = False
    _, message = both(fast, pf, ref, pr, grads_for(pf, 5))
    assert "params['w'] is not writeable" in message
    pf["w"].flags.writeable = pr["w"].flags.writeable = True
    then_steady_again(fast, pf, ref, pr)


def test_arrays_made_to_share_memory():
    fast, pf, ref, pr = steady("sgd")
    pf["b"], pr["b"] = pf["w"][0], pr["w"][0]  # a view into another parameter
    _, message = both(fast, pf, ref, pr, grads_for(pf, 5))
    assert "shares memory with" in message


def test_gradient_sharing_memory_with_its_parameter():
    """The fast path refuses it (an in-place kernel would read what it wrote); the reference computes it."""
    fast, pf, ref, pr = steady("adam")
    assert both(fast, pf, ref, pr, {"w": pf["w"], "b": np.ones(4)}, {"w": pr["w"], "b": np.ones(4)}) is None
    assert fast.last_update_backend == "numpy"
    then_steady_again(fast, pf, ref, pr)


@pytest.mark.parametrize("rule", RULES)
def test_gradient_of_another_dtype(rule):
    fast, pf, ref, pr = steady(rule)
    assert both(fast, pf, ref, pr, {k: v.astype(np.float32) for k, v in grads_for(pf, 5).items()}) is None
    then_steady_again(fast, pf, ref, pr)


def test_gradient_of_another_layout():
    fast, pf, ref, pr = steady("adam")
    g = grads_for(pf, 5)
    g["w"] = np.asfortranarray(g["w"])
    assert both(fast, pf, ref, pr, g) is None
    g = {"w": np.ones((3, 8))[:, ::2], "b": np.ones(4)}  # a strided view
    assert both(fast, pf, ref, pr, g) is None
    then_steady_again(fast, pf, ref, pr)


def test_gradient_of_another_shape_raises_the_reference_error():
    fast, pf, ref, pr = steady("adam")
    g = {"w": np.ones((4, 3)), "b": np.ones(4)}
    assert "grads['w'] has shape (4, 3)" in both(fast, pf, ref, pr, g)[1]
    assert "must be a np.ndarray" in both(fast, pf, ref, pr, {"w": [1.0] * 12, "b": np.ones(4)})[1]


@pytest.mark.parametrize("rule", RULES)
def test_none_gradients(rule):
    fast, pf, ref, pr = steady(rule)
    g = grads_for(pf, 5)
    g["b"] = None
    assert both(fast, pf, ref, pr, g) is None
    assert fast.state["b"]["step"] == 3 and fast.state["w"]["step"] == 4
    then_steady_again(fast, pf, ref, pr)


def test_non_finite_gradient_raises_or_skips_having_changed_nothing():
    fast, pf, ref, pr = steady("adam")
    g = grads_for(pf, 5)
    g["b"][2] = np.nan
    assert "non-finite gradient" in both(fast, pf, ref, pr, g)[1]
    fast.on_nonfinite = ref.on_nonfinite = "skip"
    assert both(fast, pf, ref, pr, g) is None
    assert fast.skipped_steps == 1
    then_steady_again(fast, pf, ref, pr)


@pytest.mark.parametrize("rule", RULES)
def test_hyperparameter_changed_between_calls(rule):
    fast, pf, ref, pr = steady(rule)
    fast.lr = ref.lr = 0.37
    assert both(fast, pf, ref, pr, grads_for(pf, 5)) is None
    fast.weight_decay = ref.weight_decay = 0.1
    assert both(fast, pf, ref, pr, grads_for(pf, 6)) is None
    then_steady_again(fast, pf, ref, pr)


def test_schedule_learning_rate_on_the_lane():
    fast, pf, ref, pr = steady("momentum", lr=StepDecay(lr=0.1, step_size=2, gamma=0.5))
    for s in range(5):
        assert both(fast, pf, ref, pr, grads_for(pf, 20 + s)) is None
        assert fast.current_lr == ref.current_lr
    assert fast._fused_plan.lane is not None


@pytest.mark.parametrize("rule", RULES)
def test_load_state_dict_between_calls(rule):
    fast, pf, ref, pr = steady(rule)
    other, po, _, _ = steady(rule)
    other.update(po, grads_for(po, 7))
    sd = other.state_dict()
    fast.load_state_dict(sd)
    ref.load_state_dict(sd)
    assert both(fast, pf, ref, pr, grads_for(pf, 5)) is None
    then_steady_again(fast, pf, ref, pr)


def test_state_dict_format_is_the_same_from_the_lane():
    fast, pf, ref, pr = steady("adam")
    sf, sr = fast.state_dict(), ref.state_dict()
    assert sf.keys() == sr.keys() and sf["hyperparameters"] == sr["hyperparameters"]
    assert all(sf["state"][k].keys() == sr["state"][k].keys() for k in sr["state"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_auto_backend_small_calls_same_bits(dtype):
    """The default backend on a tiny problem (the kernels are loaded by warm_up): the serial path, same bits."""
    fast, pf, ref, pr = steady("adam", dtype)
    auto = OPTIMIZERS["adam"]()
    pa = {"w": pr["w"].copy(), "b": pr["b"].copy()}
    auto.load_state_dict(ref.state_dict())
    for s in range(4):
        g = grads_for(pa, 30 + s)
        auto.update(pa, g)
        ref.update(pr, g)
        assert auto.last_update_backend == "numba"
    assert_same(auto, pa, ref, pr)


def test_steady_state_steps_allocate_nothing():
    """Zero net allocations per step after warm-up: tracemalloc sees the same traced size after 200 more
    steps as after the first 50 (a per-step leak of even one small object would add >= 200 x 16 bytes),
    while the same loop with one list append per step is seen growing (the measurement can fail)."""
    fast, pf, _, _ = steady("adam")
    g = grads_for(pf, 5)
    g["w"] *= 1e-3
    g["b"] *= 1e-3

    def traced(n, leak=None):
        for _ in range(50):
            fast.update(pf, g)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(n):
            fast.update(pf, g)
            if leak is not None:
                leak.append(object())
        return tracemalloc.get_traced_memory()[0] - before

    tracemalloc.start()
    try:
        growth = traced(200)
        leaked = traced(200, leak=[])
    finally:
        tracemalloc.stop()
    assert fast.last_update_backend == "numba" and fast._fused_plan.lane is not None
    assert growth <= 0, growth
    assert leaked >= 200 * 16, leaked


def test_auto_loads_the_serial_kernel_only_after_enough_numpy_steps_in_a_fresh_process():
    """A short script on a tiny problem never imports numba; once the process has spent
    AUTO_LOAD_AFTER_SECONDS in NumPy-path steps (set here directly, not waited for), the next small
    call starts the background load and the steps switch to the serial kernel, with the same bits."""
    code = """
import sys, time, numpy as np, npoptim
from npoptim.optimizers import fused
p, q = {"x": np.array([1.0, -2.0])}, {"x": np.array([1.0, -2.0])}
auto, ref = npoptim.Adam(lr=0.1), npoptim.Adam(lr=0.1, backend="numpy")
def step(i):
    g = {"x": np.array([np.sin(i), np.cos(i)])}
    auto.update(p, g)
    ref.update(q, g)
for i in range(200):
    step(i)
before = ("numba" in sys.modules, auto.last_update_backend)
fused._reference_seconds = fused.AUTO_LOAD_AFTER_SECONDS
deadline, i = time.monotonic() + 120, 200
while auto.last_update_backend != "numba" and time.monotonic() < deadline:
    step(i)
    i += 1
    time.sleep(0.001)
for j in range(5):
    step(i + j)
print(before[0], before[1], auto.last_update_backend, np.array_equal(p["x"], q["x"]), auto._fused_plan.lane is not None)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=180)
    assert out.stdout.split() == ["False", "numpy", "numba", "True", "True"]


def _edit_state(opt, edit):
    """One direct edit of ``opt.state`` (a plain dict a user can reach)."""
    if edit == "clear":
        opt.state.clear()
    elif edit == "delete one entry":
        del opt.state["b"]
    elif edit == "replace an entry":
        opt.state["w"] = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in opt.state["w"].items()}
    elif edit == "replace a slot array":
        opt.state["w"][opt.slots[0]] = np.full_like(opt.state["w"][opt.slots[0]], 0.25)
    elif edit == "rewrite a step count":
        opt.state["w"]["step"] = 1


STATE_EDITS = ["clear", "delete one entry", "replace an entry", "replace a slot array", "rewrite a step count"]


@pytest.mark.parametrize("serial", [True, False], ids=["lane", "parallel-plan"])
@pytest.mark.parametrize(("rule", "edit"), [(r, e) for r in RULES for e in STATE_EDITS
                                            if OPTIMIZERS[r]().slots or e != "replace a slot array"])
def test_direct_edits_of_opt_state_are_seen(rule, edit, serial, monkeypatch):
    """What the reference path reads from ``opt.state`` on the next call, the compiled paths read too."""
    if not serial:
        monkeypatch.setattr(fused, "SERIAL_MAX_ELEMENTS", 0)  # the general (parallel) plan, no lane
    fast, pf, ref, pr = steady(rule) if serial else _steady_parallel(rule)
    _edit_state(fast, edit)
    _edit_state(ref, edit)
    assert both(fast, pf, ref, pr, grads_for(pf, 5)) is None
    then_steady_again(fast, pf, ref, pr)


def _steady_parallel(rule):
    rng = np.random.default_rng(0)
    p0 = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    fast, ref = OPTIMIZERS[rule](backend="numba"), OPTIMIZERS[rule](backend="numpy")
    pf, pr = {k: v.copy() for k, v in p0.items()}, {k: v.copy() for k, v in p0.items()}
    for s in range(3):
        g = grads_for(pf, s)
        fast.update(pf, g)
        ref.update(pr, g)
    assert fast.last_update_backend == "numba" and not fast._fused_plan.serial
    return fast, pf, ref, pr
