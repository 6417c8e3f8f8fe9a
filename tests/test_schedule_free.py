"""Schedule-free SGD / AdamW against ``schedulefree``'s reference classes (1.4.1), and the train/eval API.

Tolerance: test_parity_torch.py's, ``N_STEPS`` ULP of each array's running scale: the same element-wise
operations as the reference (torch kernels, ``addcdiv``/``add(alpha=)`` where we multiply then add), and
the per-call scalars (c_k, the warm-up, lr_max) are the same Python floats on both sides.
"""

from __future__ import annotations

import numpy as np
import pytest

import npoptim
from npoptim import ScheduleFreeAdamW, ScheduleFreeSGD

torch = pytest.importorskip("torch", reason="schedulefree runs on torch")
schedulefree = pytest.importorskip("schedulefree", reason="schedulefree's reference classes are the oracle")

N_STEPS = 100
SHAPES = {"s": (), "vec": (7,), "mat": (4, 5), "cube": (2, 3, 4)}
SGD_GRID = (
    {"lr": 1.0, "momentum": 0.9, "weight_decay": 0.0, "warmup_steps": 0, "r": 0.0, "weight_lr_power": 2.0},
    {"lr": 0.3, "momentum": 0.5, "weight_decay": 0.05, "warmup_steps": 10, "r": 1.0, "weight_lr_power": 1.0},
)
ADAMW_GRID = (
    {"lr": 0.0025, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "warmup_steps": 0, "r": 0.0,
     "weight_lr_power": 2.0},
    {"lr": 0.02, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.1, "warmup_steps": 20, "r": 0.5,
     "weight_lr_power": 0.0},
)


def _reference(name, tp, h):
    if name == "sgd":
        ref = schedulefree.SGDScheduleFreeReference(
            tp, lr=h["lr"], momentum=h["momentum"], weight_decay=h["weight_decay"], warmup_steps=h["warmup_steps"],
            r=h["r"], weight_lr_power=h["weight_lr_power"])
    else:
        ref = schedulefree.AdamWScheduleFreeReference(
            tp, lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"], weight_decay=h["weight_decay"],
            warmup_steps=h["warmup_steps"], r=h["r"], weight_lr_power=h["weight_lr_power"])
    ref.train()
    return ref


CASES = [("sgd", i) for i in range(len(SGD_GRID))] + [("adamw", i) for i in range(len(ADAMW_GRID))]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name, i", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_parity_with_the_reference(name, i, dtype, capsys):
    h = (SGD_GRID if name == "sgd" else ADAMW_GRID)[i]
    rng = np.random.default_rng(400 + i)
    ours = {k: np.asarray(rng.standard_normal(s), dtype=dtype) for k, s in SHAPES.items()}
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    theirs = {k: torch.tensor(v.copy(), dtype=tdt) for k, v in ours.items()}
    opt = (ScheduleFreeSGD if name == "sgd" else ScheduleFreeAdamW)(**h)
    ref = _reference(name, list(theirs.values()), h)
    rtol = N_STEPS * float(np.finfo(dtype).eps)
    scale: dict[str, float] = {}

    def check(label, a, b):
        scale[label] = max(scale.get(label, 0.0), float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale[label], err_msg=label)

    for step in range(1, N_STEPS + 1):
        grads = {k: np.asarray(rng.standard_normal(s), dtype=dtype) for k, s in SHAPES.items()}
        if step <= 7:
            grads["cube"] = None  # a key that joins late averages with the call's weights, as the reference
        opt.update(ours, grads)
        for k, tp in theirs.items():
            tp.grad = None if grads[k] is None else torch.tensor(grads[k].copy(), dtype=tdt)
        ref.step()
        for k, tp in theirs.items():
            check(f"y {k}", ours[k], tp.detach().numpy())
            if k in opt.state:
                ts = ref.state[tp]
                check(f"z {k}", opt.state[k]["z"], ts["z"].numpy())
                check(f"x {k}", opt.state[k]["x"], ts["x"].numpy())
                if name == "adamw":
                    check(f"v {k}", opt.state[k]["v"], ts["exp_avg_sq"].numpy())
    ref.eval()
    opt.eval(ours)
    for k, tp in theirs.items():  # eval mode: both hold x
        check(f"x-eval {k}", ours[k], tp.detach().numpy())
    capsys.readouterr()  # the reference prints "Switching to ... mode"


BACKENDS = ["numpy", "numba"] if npoptim.optimizers.fused.fast_path_possible() else ["numpy"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls", [ScheduleFreeSGD, ScheduleFreeAdamW])
def test_train_eval_switch_is_explicit_idempotent_and_exact(cls, backend):
    """Also on the compiled path, whose planned steps skip the validating walk: eval mode still refuses."""
    rng = np.random.default_rng(1)
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    opt = cls(lr=0.01, backend=backend)
    for _ in range(5):
        opt.update(params, {k: rng.standard_normal(v.shape) for k, v in params.items()})
    assert opt.last_update_backend == backend
    y = {k: v.copy() for k, v in params.items()}
    opt.eval(params)
    assert not opt.train_mode and all(np.array_equal(params[k], opt.state[k]["x"]) for k in params)
    opt.eval(params)  # idempotent
    assert all(np.array_equal(params[k], opt.state[k]["x"]) for k in params)
    before = opt.state_dict()
    with pytest.raises(ValueError, match=r"eval mode.*opt\.train\(params\)"):
        opt.update(params, {k: np.ones_like(v) for k, v in params.items()})
    assert all(np.array_equal(params[k], opt.state[k]["x"]) for k in params) and opt.step_count == 5
    assert all(np.array_equal(opt.state[k][s], before["state"][k][s]) for k in params for s in opt.slots)
    opt.train(params)
    opt.train(params)
    assert opt.train_mode and all(np.array_equal(params[k], y[k]) for k in params)  # the same bits
    with opt.evaluating(params):
        assert all(np.array_equal(params[k], opt.state[k]["x"]) for k in params)
    assert all(np.array_equal(params[k], y[k]) for k in params)
    with pytest.raises(npoptim.KeyMismatchError, match="'b'"):
        opt.eval({"W": params["W"]})
    assert opt.train_mode and np.array_equal(params["W"], y["W"])  # a refused switch writes nothing


@pytest.mark.skipif(len(BACKENDS) < 2, reason="numba is not installed")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("cls", [ScheduleFreeSGD, ScheduleFreeAdamW])
def test_compiled_steps_around_evaluations_are_the_references_bits(cls, dtype):
    """Training with evaluations in between (eval, train, go on: the compiled plan survives the switch,
    which writes the parameters in place) gives the same bits on both backends."""
    rng = np.random.default_rng(3)
    p0 = {"W": rng.standard_normal((30, 40)).astype(dtype), "b": rng.standard_normal(40).astype(dtype)}
    runs = {}
    for backend in BACKENDS:
        opt = cls(lr=0.05, weight_decay=0.01, warmup_steps=2, backend=backend)
        params = {k: v.copy() for k, v in p0.items()}
        g_rng, seen = np.random.default_rng(4), []
        for step in range(12):
            opt.update(params, {k: g_rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()})
            assert opt.last_update_backend == backend
            if step % 4 == 3:
                with opt.evaluating(params):
                    seen.append({k: v.copy() for k, v in params.items()})
        runs[backend] = (params, opt, seen)
    (pa, oa, sa), (pb, ob, sb) = runs.values()
    assert all(np.array_equal(pa[k], pb[k]) for k in p0)
    assert all(np.array_equal(oa.state[k][s], ob.state[k][s]) for k in p0 for s in oa.slots)
    assert all(np.array_equal(x[k], y[k]) for x, y in zip(sa, sb, strict=True) for k in p0)
    assert (oa.lr_max, oa.weight_sum) == (ob.lr_max, ob.weight_sum)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_checkpoint_in_either_mode_resumes_exactly(mode, tmp_path):
    rng = np.random.default_rng(2)
    p0 = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4).astype(np.float32)}
    grads = [{k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in p0.items()} for _ in range(9)]
    straight, ps = ScheduleFreeAdamW(lr=0.01, warmup_steps=3), {k: v.copy() for k, v in p0.items()}
    first, pf = ScheduleFreeAdamW(lr=0.01, warmup_steps=3), {k: v.copy() for k, v in p0.items()}
    for j, g in enumerate(grads):
        straight.update(ps, g)
        if j < 4:
            first.update(pf, g)
    if mode == "eval":
        first.eval(pf)
    npoptim.save_checkpoint(tmp_path / "sf.npz", pf, first)
    ck = npoptim.load_checkpoint(tmp_path / "sf.npz")
    resumed, pr = npoptim.optimizer_from_state_dict(ck.optimizer_state), ck.params
    saved_in_train = mode == "train"
    assert resumed.train_mode == saved_in_train and ck.optimizer_state["schedule_free"]["train_mode"] is saved_in_train
    resumed.train(pr)
    for g in grads[4:]:
        resumed.update(pr, g)
    for k in p0:
        assert np.array_equal(pr[k], ps[k]), k
        for slot in ("z", "x", "v"):
            assert np.array_equal(resumed.state[k][slot], straight.state[k][slot]), (k, slot)
    assert (resumed.lr_max, resumed.weight_sum) == (straight.lr_max, straight.weight_sum)


def test_refused_update_does_not_advance_the_averaging_weights():
    opt = ScheduleFreeSGD(lr=0.5)
    params = {"w": np.ones(2)}
    opt.update(params, {"w": np.ones(2)})
    before = (opt.weight_sum, opt.lr_max)
    with pytest.raises(npoptim.NonFiniteGradientError):
        opt.update(params, {"w": np.array([1.0, np.nan])})
    opt.update(params, dict.fromkeys(params))  # all None: no step either
    assert (opt.weight_sum, opt.lr_max) == before and opt.step_count == 1
    with pytest.raises(npoptim.StateDictError, match="schedule_free"):
        opt.load_state_dict({k: v for k, v in opt.state_dict().items() if k != "schedule_free"})
