"""LAMB and LARS against ``optax.lamb`` / ``optax.lars`` (optax 0.2.8, jax with x64), and their guarantees.

Tolerance: test_parity_torch.py's, ``N_STEPS`` ULP of each array's running scale.  Besides the element-wise
roundings, each step has two norms of at most 35 terms (``jnp.linalg.norm`` and ``np.linalg.norm`` add in
their own orders: ``2 gamma_36`` relative, ``sum_bound``) in a trust ratio that scales a step of at most
``lr * ||w||`` -- ``lr <= 0.01`` for LAMB, and ``lr * trust_coefficient <= 0.01`` for LARS, so the norms'
share is below 0.01 x 72u x ||w|| <= 1 ULP of the running scale per step.  optax's bias corrections
``1 - b**count`` are computed in the parameter's dtype (ours in float64): a few ULP in float32, relative to
a step below ``lr`` times the scale.
"""

from __future__ import annotations

import numpy as np
import pytest

import npoptim
from npoptim import LAMB, LARS
from npoptim.optimizers.trust import trust_ratio

jax = pytest.importorskip("jax", reason="optax (on jax) is the oracle")
optax = pytest.importorskip("optax", reason="optax is the oracle")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

N_STEPS = 100
SHAPES = {"s": (), "vec": (7,), "mat": (4, 5), "cube": (2, 3, 4), "zero": (3,)}
LAMB_GRID = (
    {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-6, "weight_decay": 0.0},
    {"lr": 0.01, "beta1": 0.5, "beta2": 0.99, "eps": 1e-3, "weight_decay": 0.1},
    {"lr": 0.005, "beta1": 0.0, "beta2": 0.9, "eps": 1e-8, "weight_decay": 0.01},
)
LARS_GRID = (
    {"lr": 1.0, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0, "trust_coefficient": 1e-3, "eps": 0.0},
    {"lr": 0.5, "momentum": 0.5, "nesterov": True, "weight_decay": 0.1, "trust_coefficient": 0.02, "eps": 1e-3},
    {"lr": 2.0, "momentum": 0.0, "nesterov": False, "weight_decay": 0.01, "trust_coefficient": 5e-3, "eps": 1e-6},
)


def _optax(name, h):
    if name == "lamb":
        return optax.lamb(h["lr"], b1=h["beta1"], b2=h["beta2"], eps=h["eps"], weight_decay=h["weight_decay"])
    return optax.lars(h["lr"], weight_decay=h["weight_decay"], trust_coefficient=h["trust_coefficient"],
                      eps=h["eps"], momentum=h["momentum"], nesterov=h["nesterov"])


CASES = [("lamb", i) for i in range(len(LAMB_GRID))] + [("lars", i) for i in range(len(LARS_GRID))]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name, i", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_parity_with_optax(name, i, dtype):
    h = (LAMB_GRID if name == "lamb" else LARS_GRID)[i]
    rng = np.random.default_rng(200 + i)
    ours = {k: np.asarray(rng.standard_normal(s), dtype=dtype) for k, s in SHAPES.items()}
    ours["zero"][...] = 0  # ||w|| = 0: the trust ratio is 1
    theirs = {k: jnp.asarray(v.copy()) for k, v in ours.items()}
    opt = (LAMB if name == "lamb" else LARS)(**h)
    tx = _optax(name, h)
    state = tx.init(theirs)
    rtol = N_STEPS * float(np.finfo(dtype).eps)
    scale = dict.fromkeys(SHAPES, 0.0)
    for step in range(1, N_STEPS + 1):
        grads = {k: np.asarray(rng.standard_normal(s), dtype=dtype) for k, s in SHAPES.items()}
        opt.update(ours, grads)
        updates, state = tx.update({k: jnp.asarray(g) for k, g in grads.items()}, state, theirs)
        theirs = optax.apply_updates(theirs, updates)
        for k in SHAPES:
            want = np.asarray(theirs[k])
            assert want.dtype == ours[k].dtype
            scale[k] = max(scale[k], float(np.max(np.abs(want), initial=0.0)))
            np.testing.assert_allclose(ours[k], want, rtol=0, atol=rtol * scale[k], err_msg=f"{name} {k} step {step}")
    if name == "lamb":  # the moments, where optax exposes them (ScaleByAdamState: mu, nu)
        adam = state[0]
        for k in SHAPES:
            np.testing.assert_allclose(opt.state[k]["m"], np.asarray(adam.mu[k]), rtol=0,
                                       atol=rtol * max(1.0, float(np.abs(adam.mu[k]).max())))
            np.testing.assert_allclose(opt.state[k]["v"], np.asarray(adam.nu[k]), rtol=0,
                                       atol=rtol * max(1.0, float(np.abs(adam.nu[k]).max())))


def test_trust_ratio_is_per_parameter():
    """Two parameters with the same gradient direction but different norms move by steps proportional to
    their own norms (that is the point of the layer-wise ratio)."""
    params = {"a": np.array([3.0, 4.0]), "b": np.array([30.0, 40.0])}
    before = {k: v.copy() for k, v in params.items()}
    LAMB(lr=0.1, eps=0.0).update(params, {"a": np.array([1.0, 1.0]), "b": np.array([1.0, 1.0])})
    sa, sb = before["a"] - params["a"], before["b"] - params["b"]
    np.testing.assert_allclose(sb, 10 * sa, rtol=1e-14)
    assert trust_ratio(np.ones(3), np.zeros(3)) == 1.0


@pytest.mark.parametrize("cls", [LAMB, LARS])
def test_resume_atomicity_and_none_gradients(cls, tmp_path):
    rng = np.random.default_rng(9)
    p0 = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4).astype(np.float32)}
    grads = [{k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in p0.items()} for _ in range(8)]
    grads[5]["b"] = None
    straight, ps = cls(weight_decay=0.1), {k: v.copy() for k, v in p0.items()}
    first, pf = cls(weight_decay=0.1), {k: v.copy() for k, v in p0.items()}
    for j, g in enumerate(grads):
        straight.update(ps, g)
        if j < 4:
            first.update(pf, g)
    npoptim.save_checkpoint(tmp_path / "t.npz", pf, first)
    ck = npoptim.load_checkpoint(tmp_path / "t.npz")
    resumed, pr = npoptim.optimizer_from_state_dict(ck.optimizer_state), ck.params
    for g in grads[4:]:
        resumed.update(pr, g)
    for k in p0:
        assert np.array_equal(pr[k], ps[k]) and pr[k].dtype == ps[k].dtype
        for slot in cls.slots:
            assert np.array_equal(resumed.state[k][slot], straight.state[k][slot])
    assert straight.state["b"]["step"] == 7 and straight.state["W"]["step"] == 8
    keep = {k: v.copy() for k, v in ps.items()}
    bad = {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in ps.items()}
    bad["b"][1] = np.nan
    with pytest.raises(npoptim.NonFiniteGradientError, match="'b'"):
        straight.update(ps, bad)
    assert all(np.array_equal(ps[k], keep[k]) for k in ps)
