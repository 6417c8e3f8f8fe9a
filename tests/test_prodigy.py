"""Prodigy against ``prodigyopt.Prodigy`` (1.1.2), and its guarantees (issue 15).

Tolerance: the parity tests' ``N_STEPS`` ULP of each array's running scale, times 10, for the one
quantity here that no other rule has: d is a ratio of two sums over *all* parameters of the call (a dot
product and an l1 norm, 38 terms each here, in BLAS/torch order: ``2 gamma_38`` relative, 76 u), which
rescales every step; its own error compounds through d's growth (d multiplies the next numerator).  The
derived per-step share is below 10 ULP of the scale (76 u times a step below 0.15 of it); d itself is
compared with the same relative budget.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import npoptim
from npoptim import Prodigy

torch = pytest.importorskip("torch", reason="prodigyopt runs on torch")
prodigyopt = pytest.importorskip("prodigyopt", reason="prodigyopt.Prodigy is the oracle")

N_STEPS = 100
SHAPES = {"s": (), "vec": (7,), "mat": (4, 5), "cube": (2, 3, 4)}
GRID = (
    {},
    {"lr": 0.5, "beta1": 0.8, "beta2": 0.99, "beta3": 0.9, "eps": 1e-6, "weight_decay": 0.1, "d0": 1e-4,
     "d_coef": 0.5, "growth_rate": 1.05, "use_bias_correction": True},
    {"beta1": 0.0, "weight_decay": 0.05, "decouple": False, "safeguard_warmup": True, "d0": 1e-3},
)


def _reference(tp, h):
    return prodigyopt.Prodigy(
        tp, lr=h["lr"], betas=(h["beta1"], h["beta2"]), beta3=h["beta3"], eps=h["eps"],
        weight_decay=h["weight_decay"], decouple=h["decouple"], use_bias_correction=h["use_bias_correction"],
        safeguard_warmup=h["safeguard_warmup"], d0=h["d0"], d_coef=h["d_coef"], growth_rate=h["growth_rate"],
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("i", range(len(GRID)))
def test_parity_with_prodigyopt(i, dtype):
    h = {"lr": 1.0, "beta1": 0.9, "beta2": 0.999, "beta3": None, "eps": 1e-8, "weight_decay": 0.0,
         "decouple": True, "d0": 1e-6, "d_coef": 1.0, "growth_rate": math.inf, "use_bias_correction": False,
         "safeguard_warmup": False, **GRID[i]}
    rng = np.random.default_rng(500 + i)
    ours = {k: np.asarray(rng.standard_normal(s), dtype=dtype) for k, s in SHAPES.items()}
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    theirs = {k: torch.tensor(v.copy(), dtype=tdt) for k, v in ours.items()}
    opt, ref = Prodigy(**h), _reference(list(theirs.values()), h)
    rtol = 10 * N_STEPS * float(np.finfo(dtype).eps)
    scale: dict[str, float] = {}

    def check(label, a, b, step_size=0.0):
        # the running scale of the array, or of its step where the step is larger (a value crossing zero)
        scale[label] = max(scale.get(label, 0.0), float(np.abs(b).max()), step_size)
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale[label], err_msg=label)

    target = {k: rng.standard_normal(s) for k, s in SHAPES.items()}  # a quadratic, so d has a distance to find
    for step in range(1, N_STEPS + 1):
        grads = {k: np.asarray(ours[k] - target[k] + 0.1 * rng.standard_normal(SHAPES[k]), dtype=dtype)
                 for k in SHAPES}
        opt.update(ours, grads)
        before = {k: tp.detach().numpy().copy() for k, tp in theirs.items()}
        for k, tp in theirs.items():
            tp.grad = torch.tensor(grads[k].copy(), dtype=tdt)
        ref.step()
        group = ref.param_groups[0]
        np.testing.assert_allclose(opt.d, group["d"], rtol=rtol, err_msg=f"d at step {step}")
        for k, tp in theirs.items():
            want = tp.detach().numpy()
            check(f"w {k}", ours[k], want, float(np.abs(want - before[k]).max()))
            ts = ref.state[tp]
            check(f"v {k}", opt.state[k]["v"], ts["exp_avg_sq"].numpy())
            check(f"s {k}", opt.state[k]["s"], ts["s"].numpy().reshape(SHAPES[k]))
            if "exp_avg" in ts:
                check(f"m {k}", opt.state[k]["m"], ts["exp_avg"].numpy())
    assert opt.d > h["d0"]  # the estimate moved: the comparison above was not of a frozen d


def test_resume_is_bit_identical_and_bad_input_changes_nothing(tmp_path):
    rng = np.random.default_rng(1)
    p0 = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4).astype(np.float32)}
    grads = [{k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in p0.items()} for _ in range(8)]
    grads[5]["b"] = None
    straight, ps = Prodigy(weight_decay=0.1), {k: v.copy() for k, v in p0.items()}
    first, pf = Prodigy(weight_decay=0.1), {k: v.copy() for k, v in p0.items()}
    for j, g in enumerate(grads):
        straight.update(ps, g)
        if j < 4:
            first.update(pf, g)
    npoptim.save_checkpoint(tmp_path / "p.npz", pf, first)
    ck = npoptim.load_checkpoint(tmp_path / "p.npz")
    resumed, pr = npoptim.optimizer_from_state_dict(ck.optimizer_state), ck.params
    for g in grads[4:]:
        resumed.update(pr, g)
    for k in p0:
        assert np.array_equal(pr[k], ps[k]), k
        for slot in Prodigy.slots:
            assert np.array_equal(resumed.state[k][slot], straight.state[k][slot]), (k, slot)
    assert (resumed.d, resumed.d_max, resumed.d_numerator) == (straight.d, straight.d_max, straight.d_numerator)
    keep = ({k: v.copy() for k, v in ps.items()}, straight.d, straight.step_count)
    bad = {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in ps.items()}
    bad["W"][0, 0] = np.inf
    with pytest.raises(npoptim.NonFiniteGradientError, match="'W'"):
        straight.update(ps, bad)
    with pytest.raises(ValueError, match=r"grads\['b'\] has shape"):
        straight.update(ps, {"W": bad["W"] * 0, "b": np.ones(5)})
    assert all(np.array_equal(ps[k], keep[0][k]) for k in ps) and (straight.d, straight.step_count) == keep[1:]


def test_hyperparameters_are_checked():
    for kw, err in [({"d0": 0.0}, ValueError), ({"growth_rate": 0.5}, ValueError), ({"beta3": 1.0}, ValueError),
                    ({"decouple": 1}, TypeError), ({"d_coef": -1.0}, ValueError)]:
        with pytest.raises(err, match=next(iter(kw))):
            Prodigy(**kw)
    assert Prodigy(growth_rate=math.inf).growth_rate == math.inf
