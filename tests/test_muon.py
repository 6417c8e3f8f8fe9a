"""Muon against ``torch.optim.Muon`` (torch 2.13), and its own guarantees.

torch runs Newton--Schulz (NS) in bfloat16; ours runs it in the parameter's dtype.  So the parity test
replaces torch's ``_zeropower_via_newtonschulz`` by the same iteration in float64 and compares step by
step: before each step torch's parameter and momentum buffer are set to ours, so each comparison sees
one step's rounding, not a trajectory's.  The tolerance of a step is derived in :func:`ns_error_bound`
(a running error analysis of the iteration, Higham 2002 §3.5 for the products); a loose check against
stock torch (bfloat16) follows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch.optim.Muon is the oracle")
_muon = pytest.importorskip("torch.optim._muon", reason="torch.optim.Muon is the oracle")

import npoptim  # noqa: E402
from npoptim import AdamW, Muon, Partition  # noqa: E402
from npoptim.optimizers.matrix import newton_schulz  # noqa: E402
from numerics import assert_within, gamma  # noqa: E402

N_STEPS = 100
SHAPES = {"tall": (6, 3), "wide": (3, 7), "square": (5, 5)}
GRID = (
    {},  # torch's defaults but lr
    {"nesterov": False, "adjust_lr": "match_rms_adamw", "weight_decay": 0.0, "momentum": 0.9},
    {"ns_steps": 3, "ns_coefficients": (2.0, -1.5, 0.5), "eps": 1e-5, "adjust_lr": "original", "weight_decay": 0.3},
)


def _ns_float64(grad, ns_coefficients, ns_steps, eps):
    """torch's ``_zeropower_via_newtonschulz`` with float64 in place of bfloat16 (same operations otherwise)."""
    a, b, c = ns_coefficients
    x = grad.double()
    if grad.size(0) > grad.size(1):
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if grad.size(0) > grad.size(1) else x


def ns_error_bound(u: np.ndarray, steps: int, coefficients, dtype) -> float:
    """A bound on ``||NS_computed(u) - NS_exact(u)||_F`` for NS computed in ``dtype``, to first order.

    Running error analysis in exact-ish float64 along the path: a product of an (r x k) and a (k x s)
    matrix errs by at most gamma_k ||A||_F ||B||_F (Higham eq. 3.13), a sum of two terms by gamma_1 of their
    norms; the iteration map X -> aX + (bXX^T + c(XX^T)^2)X acts on each singular value as
    p(s) = as + bs^3 + cs^5, and its derivative (the Frechet derivative of a function of the singular values
    is bounded by the divided differences of p, so by max |p'|) is at most L = max_{|s| <= sigma} |p'(s)|,
    which carries the error E_j of step j into L E_j.  The normalisation starts it at gamma_{n+2}
    (a norm of n squares, a division); a 2 gamma_3 relative difference in u itself (the two libraries
    round the Nesterov mix differently) enters the same way.
    """
    a, b, c = coefficients
    x = np.asarray(u, dtype=np.float64)
    if x.shape[0] > x.shape[1]:
        x = x.T
    x = x / max(float(np.linalg.norm(x)), 1e-300)
    rows, cols = x.shape

    def g(n: int) -> float:
        return gamma(n, dtype)

    err = g(x.size + 2) + 2 * g(3)
    for _ in range(steps):
        nx = float(np.linalg.norm(x))
        gram = x @ x.T
        ng = float(np.linalg.norm(gram))
        e_gram = g(cols) * nx * nx
        e_g2 = g(rows) * ng * ng + 2 * ng * e_gram
        bmat = b * gram + c * (gram @ gram)
        nb = float(np.linalg.norm(bmat))
        e_b = abs(b) * e_gram + abs(c) * e_g2 + g(2) * (abs(b) * ng + abs(c) * ng * ng)
        local = g(rows) * nb * nx + e_b * nx + g(2) * (abs(a) * nx + nb * nx)
        sigma = float(np.linalg.norm(x, 2)) + err
        s = np.linspace(0.0, sigma, 2001)
        lip = float(np.max(np.abs(a + 3 * b * s**2 + 5 * c * s**4)))
        err = lip * err + local
        x = a * x + bmat @ x
    return err


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("hi", range(len(GRID)))
def test_parity_with_torch_newton_schulz_in_float64(monkeypatch, dtype, hi):
    monkeypatch.setattr(_muon, "_zeropower_via_newtonschulz", _ns_float64)
    h = {"lr": 0.02, **GRID[hi]}
    opt = Muon(**h)
    th = {"momentum": 0.95, "nesterov": True, "weight_decay": 0.1, "ns_steps": 5, "eps": 1e-7, **h}
    rng = np.random.default_rng(15 + hi)
    ours = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    theirs = {k: torch.tensor(v.copy(), dtype=tdt) for k, v in ours.items()}
    topt = torch.optim.Muon(
        list(theirs.values()),
        lr=th["lr"],
        weight_decay=th["weight_decay"],
        momentum=th["momentum"],
        nesterov=th["nesterov"],
        ns_coefficients=th.get("ns_coefficients", (3.4445, -4.7750, 2.0315)),
        eps=th["eps"],
        ns_steps=th["ns_steps"],
        adjust_lr_fn=th.get("adjust_lr"),
    )
    mu, coeffs = th["momentum"], opt.ns_coefficients
    for step in range(1, N_STEPS + 1):
        grads = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
        before = {k: (ours[k].copy(), opt.state[k]["momentum_buffer"].copy() if k in opt.state else None) for k in ours}
        with torch.no_grad():  # the same starting point for both: one step's differences only
            for k, tp in theirs.items():
                tp.copy_(torch.from_numpy(before[k][0]))
                if before[k][1] is not None:
                    topt.state[tp]["momentum_buffer"].copy_(torch.from_numpy(before[k][1]))
                tp.grad = torch.from_numpy(grads[k].copy())
        opt.update(ours, grads)
        topt.step()
        for k, tp in theirs.items():
            w0, b0 = before[k]
            b0 = np.zeros_like(w0) if b0 is None else b0
            g = grads[k].astype(np.float64)
            # the buffer: mu b + (1-mu) g vs torch's lerp b + (1-mu)(g - b): 3 roundings each of terms <= |b|+|g|
            buf_scale = np.abs(b0) + np.abs(g)
            assert_within(opt.state[k]["momentum_buffer"], topt.state[tp]["momentum_buffer"].numpy(),
                          2 * gamma(4, dtype) * buf_scale, f"buffer {k} step {step}")
            # the parameter: NS errors of both sides (ours in dtype, torch's in float64) times lr r, plus the
            # roundings of (1 - lr wd) w - lr r O (3 each side) on terms <= |w| + lr r |O|
            bnew = opt.state[k]["momentum_buffer"].astype(np.float64)
            u = (1 - mu) * g + mu * bnew if th["nesterov"] else bnew
            step_lr = th["lr"] * opt.lr_ratio(w0.shape)
            steps = th["ns_steps"]
            e_ns = ns_error_bound(u, steps, coeffs, dtype) + ns_error_bound(u, steps, coeffs, np.float64)
            o = newton_schulz(u, th["ns_steps"], coeffs, th["eps"])
            bound = step_lr * e_ns + 2 * gamma(4, dtype) * (np.abs(w0) + step_lr * np.abs(o))
            assert_within(ours[k], tp.numpy(), bound, f"params {k} step {step} {h} {np.dtype(dtype)}")
    assert all(opt.state[k]["step"] == N_STEPS for k in SHAPES)


def test_loose_agreement_with_stock_torch_bfloat16():
    """Stock torch (NS in bfloat16, 8 significant bits) on the same path: the one-step updates point the same
    way and have the same size to within bfloat16's reach.  Loose on purpose: it only catches a wrong
    direction or scale (a missed lr ratio changes the size by >= 22% here, a missed Nesterov term the direction)."""
    rng = np.random.default_rng(3)
    for shape in SHAPES.values():
        w = {"W": rng.standard_normal(shape).astype(np.float32)}
        tp = torch.tensor(w["W"].copy())
        opt, topt = Muon(lr=0.02), torch.optim.Muon([tp], lr=0.02)
        for _ in range(N_STEPS):
            g = rng.standard_normal(shape).astype(np.float32)
            w0 = w["W"].copy()
            with torch.no_grad():
                tp.copy_(torch.from_numpy(w0))
                if "W" in opt.state:
                    topt.state[tp]["momentum_buffer"].copy_(torch.from_numpy(opt.state["W"]["momentum_buffer"]))
            tp.grad = torch.from_numpy(g.copy())
            opt.update(w, {"W": g})
            topt.step()
            ours, theirs = (w["W"] - w0).ravel(), (tp.detach().numpy() - w0).ravel()
            cos = float(ours @ theirs / (np.linalg.norm(ours) * np.linalg.norm(theirs)))
            ratio = float(np.linalg.norm(ours) / np.linalg.norm(theirs))
            assert cos > 0.95 and 0.9 < ratio < 1.1, (shape, cos, ratio)


# --- our own guarantees ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 3, 4)), np.zeros(())], ids=["1d", "3d", "0d"])
def test_not_a_matrix_is_refused_pointing_to_partition_and_nothing_changes(bad):
    rng = np.random.default_rng(0)
    params = {"W": rng.standard_normal((3, 4))}
    opt = Muon(lr=0.1)
    opt.update(params, {"W": rng.standard_normal((3, 4))})
    before, buf = params["W"].copy(), opt.state["W"]["momentum_buffer"].copy()
    with pytest.raises(ValueError, match=r"params\['x'\].*2-D.*Partition"):
        opt.update({**params, "x": bad.copy()}, {"W": rng.standard_normal((3, 4)), "x": np.ones_like(bad)})
    assert np.array_equal(params["W"], before) and np.array_equal(opt.state["W"]["momentum_buffer"], buf)
    assert opt.step_count == 1 and set(opt.state) == {"W"}


def test_complex_is_refused():
    with pytest.raises(TypeError, match=r"params\['z'\].*complex"):
        Muon().update({"z": np.ones((2, 2), complex)}, {"z": np.ones((2, 2), complex)})


@pytest.mark.parametrize(
    "arg, value, error",
    [("ns_steps", -1, ValueError), ("ns_steps", 100, ValueError), ("ns_steps", 2.5, ValueError),
     ("ns_steps", "5", TypeError), ("ns_coefficients", (1.0, 2.0), TypeError),
     ("ns_coefficients", (1.0, math.nan, 0.0), ValueError), ("adjust_lr", "rms", ValueError),
     ("nesterov", 1, TypeError), ("momentum", 1.0, ValueError), ("eps", -1e-9, ValueError)],
)
def test_bad_hyperparameters_are_named(arg, value, error):
    with pytest.raises(error, match=arg):
        Muon(**{arg: value})


def test_resume_is_bit_identical_through_a_checkpoint(tmp_path):
    rng = np.random.default_rng(4)
    grads = [{"W": rng.standard_normal((4, 3)), "V": rng.standard_normal((2, 5)).astype(np.float32)} for _ in range(8)]
    p0 = {"W": rng.standard_normal((4, 3)), "V": rng.standard_normal((2, 5)).astype(np.float32)}
    straight, ps = Muon(lr=0.05, nesterov=False), {k: v.copy() for k, v in p0.items()}
    first, pf = Muon(lr=0.05, nesterov=False), {k: v.copy() for k, v in p0.items()}
    for i, g in enumerate(grads):
        straight.update(ps, g)
        if i < 4:
            first.update(pf, g)
    npoptim.save_checkpoint(tmp_path / "m.npz", pf, first)
    ck = npoptim.load_checkpoint(tmp_path / "m.npz")
    resumed, pr = npoptim.optimizer_from_state_dict(ck.optimizer_state), ck.params
    for g in grads[4:]:
        resumed.update(pr, g)
    for k in p0:  # the same operations on the same values: the same bits
        assert np.array_equal(pr[k], ps[k]) and pr[k].dtype == ps[k].dtype
        assert np.array_equal(resumed.state[k]["momentum_buffer"], straight.state[k]["momentum_buffer"])
    assert resumed.hyperparameters == straight.hyperparameters


def test_none_gradient_leaves_key_and_state_untouched():
    rng = np.random.default_rng(5)
    params = {"A": rng.standard_normal((3, 3)), "B": rng.standard_normal((2, 4))}
    opt = Muon(lr=0.1)
    opt.update(params, {k: rng.standard_normal(v.shape) for k, v in params.items()})
    b, sb = params["B"].copy(), opt.state["B"]["momentum_buffer"].copy()
    opt.update(params, {"A": rng.standard_normal((3, 3)), "B": None})
    assert np.array_equal(params["B"], b) and np.array_equal(opt.state["B"]["momentum_buffer"], sb)
    assert opt.state["A"]["step"] == 2 and opt.state["B"]["step"] == 1


def test_documented_example_partition_muon_for_matrices_adamw_for_the_rest():
    """The book's network's keys: W1, W2 (matrices) to Muon, b1, b2 to AdamW -- each exactly as if alone."""
    rng = np.random.default_rng(6)
    params = {"W1": rng.standard_normal((4, 3)), "b1": np.zeros(3)}
    params |= {"W2": rng.standard_normal((3, 2)), "b2": np.zeros(2)}
    part = Partition({"W*": Muon(lr=0.02), "*": AdamW(lr=1e-3)})
    alone_m, alone_a = Muon(lr=0.02), AdamW(lr=1e-3)
    pm = {k: params[k].copy() for k in ("W1", "W2")}
    pa = {k: params[k].copy() for k in ("b1", "b2")}
    for _ in range(5):
        g = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        part.update(params, g)
        alone_m.update(pm, {k: g[k] for k in pm})
        alone_a.update(pa, {k: g[k] for k in pa})
    for k in params:
        assert np.array_equal(params[k], {**pm, **pa}[k])
    assert part.group_of("W1") == "W*" and part.group_of("b2") == "*"
