"""Adafactor against ``torch.optim.Adafactor`` (torch 2.13), and its own guarantees (issue 15).

Tolerance of the parity test: test_parity_torch.py's (``N_STEPS`` ULP of each array's running scale),
because the rule's reductions are short: torch's ``norm(dim=-1).square_()`` and our ``sum(g*g)`` of at
most 7 terms differ by ``2 gamma_8`` relative (``sum_bound``), the RMS of w and of U (<= 35 terms) by
``gamma_36``, each entering a step that is ``rho_t <= lr`` times the parameter's scale, and a moment's own
error is damped by its average -- all below 1 ULP of the running scale per step.
"""

from __future__ import annotations

import numpy as np
import pytest

import npoptim
from npoptim import Adafactor
from npoptim.errors import StateDictError

N_STEPS = 100
SHAPES = {"tall": (6, 3), "wide": (3, 7), "square": (4, 4), "batched": (2, 3, 5), "vec": (5,), "s": ()}
GRID = (
    {"lr": 1e-2},
    {"lr": 0.05, "beta2_decay": -0.5, "eps2": 1e-2, "d": 2.0, "weight_decay": 0.1},
    {"lr": 0.003, "eps1": 1e-12, "beta2_decay": -1.0},
    {"lr": 1.0, "eps1": 1e-3, "beta2_decay": 0.0},  # rho_t = 1/sqrt(t), constant beta2_hat = 0 (t^0 = 1)
)


class _Checker:
    def __init__(self, rtol):
        self.rtol, self.scale = rtol, {}

    def __call__(self, label, actual, expected):
        assert actual.shape == expected.shape and actual.dtype == expected.dtype, label
        self.scale[label] = max(self.scale.get(label, 0.0), float(np.max(np.abs(expected), initial=0.0)))
        np.testing.assert_allclose(actual, expected, rtol=0, atol=self.rtol * self.scale[label], err_msg=label)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("hi", range(len(GRID)))
def test_parity_with_torch(dtype, hi):
    torch = pytest.importorskip("torch", reason="torch.optim.Adafactor is the oracle")
    h = {"beta2_decay": -0.8, "eps1": None, "eps2": 1e-3, "d": 1.0, "weight_decay": 0.0, **GRID[hi]}
    rng = np.random.default_rng(100 + hi)
    ours = {k: np.asarray(rng.standard_normal(s), dtype=dtype) for k, s in SHAPES.items()}
    tdt = {np.float64: torch.float64, np.float32: torch.float32}[dtype]
    theirs = {k: torch.tensor(v.copy(), dtype=tdt) for k, v in ours.items()}
    opt = Adafactor(**h)
    topt = torch.optim.Adafactor(
        list(theirs.values()), lr=h["lr"], beta2_decay=h["beta2_decay"], eps=(h["eps1"], h["eps2"]), d=h["d"],
        weight_decay=h["weight_decay"],
    )
    check = _Checker(N_STEPS * float(np.finfo(dtype).eps))
    for step in range(1, N_STEPS + 1):
        grads = {k: np.asarray(rng.standard_normal(s), dtype=dtype) for k, s in SHAPES.items()}
        opt.update(ours, grads)
        for k, tp in theirs.items():
            tp.grad = torch.tensor(grads[k].copy(), dtype=tdt)
        topt.step()
        for k, tp in theirs.items():
            check(f"params[{k!r}]", ours[k], tp.detach().numpy())
            ts = topt.state[tp]
            for slot in ("row_var", "col_var", "variance"):
                if slot in ts:
                    check(f"state[{k!r}][{slot!r}] step {step}", opt.state[k][slot], ts[slot].numpy())
                assert (slot in ts) == (slot in opt.state[k])
    assert all(opt.state[k]["step"] == N_STEPS for k in SHAPES)


def test_factored_state_is_sublinear_and_batched_over_leading_dimensions():
    opt = Adafactor()
    params = {"W": np.ones((4, 2, 30, 20)), "b": np.ones(20), "s": np.ones(())}
    opt.update(params, {k: np.ones_like(v) for k, v in params.items()})
    shapes = {k: {s: a.shape for s, a in e.items() if s != "step"} for k, e in opt.state.items()}
    assert shapes == {"W": {"row_var": (4, 2, 30, 1), "col_var": (4, 2, 1, 20)}, "b": {"variance": (20,)},
                      "s": {"variance": ()}}


def test_first_step_closed_form():
    """t = 1: beta2_hat = 1 - 1 = 0, so R, C are this step's means, V = outer(R, C)/mean(R) = g^2 for a
    rank-one g^2; U = g/|g| = sign(g), RMS(U) = 1 (no clipping); step = max(eps2, RMS(w)) * min(lr, 1)."""
    a, b = np.array([1.0, 2.0, 4.0]), np.array([0.5, 3.0])
    g = np.outer(a, b)  # rank one, so g^2 = outer(a^2, b^2) factors exactly
    w = np.random.default_rng(0).standard_normal((3, 2))
    params = {"W": w.copy()}
    Adafactor(lr=0.01).update(params, {"W": g})
    rms = np.sqrt(np.mean(w * w))
    np.testing.assert_allclose(params["W"], w - 0.01 * rms * np.sign(g), rtol=1e-14, atol=1e-15)


def test_resume_is_bit_identical_through_a_checkpoint(tmp_path):
    rng = np.random.default_rng(1)
    p0 = {"W": rng.standard_normal((3, 4)), "T": rng.standard_normal((2, 3, 2)).astype(np.float32),
          "b": rng.standard_normal(4), "h": rng.standard_normal(3).astype(np.float16)}
    grads = [{k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in p0.items()} for _ in range(8)]
    grads[5]["b"] = None
    straight, ps = Adafactor(weight_decay=0.1), {k: v.copy() for k, v in p0.items()}
    first, pf = Adafactor(weight_decay=0.1), {k: v.copy() for k, v in p0.items()}
    for i, g in enumerate(grads):
        straight.update(ps, g)
        if i < 4:
            first.update(pf, g)
    npoptim.save_checkpoint(tmp_path / "a.npz", pf, first)
    ck = npoptim.load_checkpoint(tmp_path / "a.npz")
    resumed, pr = npoptim.optimizer_from_state_dict(ck.optimizer_state), ck.params
    for g in grads[4:]:
        resumed.update(pr, g)
    for k in p0:
        assert np.array_equal(pr[k], ps[k]) and pr[k].dtype == ps[k].dtype, k
        for slot, a in straight.state[k].items():
            assert np.array_equal(resumed.state[k][slot], a), (k, slot)


def test_bad_state_dict_and_stale_state_are_refused_and_change_nothing():
    rng = np.random.default_rng(2)
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    opt = Adafactor()
    opt.update(params, {k: rng.standard_normal(v.shape) for k, v in params.items()})
    sd = opt.state_dict()
    keep = {k: {s: np.copy(a) for s, a in e.items()} for k, e in opt.state.items()}
    for bad, what in [
        ({"W": {**sd["state"]["W"], "variance": np.zeros(3)}}, "expected step"),
        ({"W": {"step": 1, "row_var": np.zeros((3, 1)), "col_var": np.zeros((4, 1))}}, "not the factors"),
        ({"W": {"step": 1, "row_var": np.zeros((3, 1)), "col_var": np.zeros((1, 4), int)}}, "real floating"),
        ({"W": {"step": -1, "row_var": np.zeros((3, 1)), "col_var": np.zeros((1, 4))}}, "non-negative"),
    ]:
        with pytest.raises(StateDictError, match=what):
            opt.load_state_dict({**sd, "state": {**sd["state"], **bad}})
    assert all(np.array_equal(opt.state[k][s], a) for k, e in keep.items() for s, a in e.items())
    before = params["b"].copy()
    with pytest.raises(ValueError, match=r"params\['W'\].*state\['row_var'\]"):  # W changed shape under its state
        opt.update({"b": params["b"], "W": np.ones((4, 3))}, {"b": np.ones(4), "W": np.ones((4, 3))})
    assert np.array_equal(params["b"], before) and opt.state["b"]["step"] == 1


def test_hyperparameters_are_checked():
    for kw, err in [({"beta2_decay": 0.1}, ValueError), ({"d": 0.5}, ValueError), ({"eps1": -1.0}, ValueError),
                    ({"eps2": float("nan")}, ValueError), ({"eps1": "x"}, TypeError)]:
        with pytest.raises(err, match=next(iter(kw))):
            Adafactor(**kw)
    with pytest.raises(TypeError, match=r"params\['z'\] is complex"):
        Adafactor().update({"z": np.ones(2, complex)}, {"z": np.ones(2, complex)})
