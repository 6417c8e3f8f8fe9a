"""Issue 6 beyond the parity grids: Lion, AMSGrad on Reddi et al.'s counterexample, clipping,
schedules inside the optimizers, and options that change the state slots.

The torch.optim parity of AdamW, Nadam, Adamax, Adadelta, RAdam and of the new
options of Adam, RMSprop and AdaGrad is in ``test_parity_torch.py`` (ORACLES).
Lion has no torch version: it is checked here against the paper's algorithm
written out independently, element by element in plain Python.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # imported before npoptim (and so before numba)

import npoptim  # noqa: E402
from npoptim import (  # noqa: E402
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    Lion,
    Momentum,
    NonFiniteGradientError,
    RMSprop,
    StateDictError,
    load_checkpoint,
    optimizer_from_state_dict,
    save_checkpoint,
)
from npoptim.optimizers import fused  # noqa: E402
from npoptim.schedules import Constant, CosineDecay, StepDecay, Warmup  # noqa: E402
from numerics import assert_within, gamma, unit_roundoff  # noqa: E402

BACKENDS = ["numpy"] + (["numba"] if fused.fast_path_possible() else [])


# --- Lion: the paper's Algorithm 2, written out independently ---------------------------


def lion_paper(w0: list[float], grads: list[list[float]], lr: float, b1: float, b2: float, wd: float) -> list[float]:
    """Chen et al. (2023), Algorithm 2, one coordinate at a time in plain Python floats.

    ``wd`` is applied the npoptim way (L2: ``g + wd * w`` before the update), not
    the paper's decoupled ``w - lr * wd * w``; with ``wd = 0`` the two agree.
    """
    w, m = list(w0), [0.0] * len(w0)
    for g_t in grads:
        for i in range(len(w)):
            g = g_t[i] + wd * w[i]
            c = b1 * m[i] + (1 - b1) * g
            sign = (c > 0) - (c < 0)
            w[i] = w[i] - lr * sign
            m[i] = b2 * m[i] + (1 - b2) * g
    return w


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("lr", "b1", "b2", "wd"), [(1e-4, 0.9, 0.99, 0.0), (0.03, 0.5, 0.9, 0.0), (0.01, 0.9, 0.99, 0.1)]
)
def test_lion_matches_the_papers_algorithm(backend, dtype, lr, b1, b2, wd):
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal(9)
    grads = [rng.standard_normal(9) * 10.0 ** rng.integers(-3, 2) for _ in range(60)]
    for g in grads[::7]:
        g[0] = 0.0  # c = 0 on the first step: sign 0, no move
    params = {"w": w0.astype(dtype)}
    opt = Lion(lr=lr, beta1=b1, beta2=b2, weight_decay=wd, backend=backend)
    for g in grads:
        opt.update(params, {"w": g.astype(dtype)})
        assert opt.last_update_backend == backend
    exact = [g.astype(dtype).astype(float).tolist() for g in grads]  # the values the optimizer saw
    expected = lion_paper(w0.astype(dtype).astype(float).tolist(), exact, lr, b1, b2, wd)
    if dtype == np.float64:  # bit-exact: Python floats and float64 arrays, the same + * - in the same order
        np.testing.assert_array_equal(params["w"], expected)
        return
    # float32: each step rounds w - lr*sign once (u |w|) and lr itself is rounded (u lr); |w| <= |w0| + n lr
    # on the path; the reference is float64 (its own error negligible).  A flipped sign would be 2 lr off.
    n, u = len(grads), unit_roundoff(dtype)
    bound = n * u * (np.abs(w0.astype(dtype)) + (n + 1) * lr)
    assert_within(params["w"], expected, bound, f"Lion float32, lr={lr}")


def test_lion_moves_every_coordinate_by_exactly_lr():
    """|w_t - w_{t-1}| is lr or 0, whatever the gradient's scale (the update is a sign)."""
    rng = np.random.default_rng(4)
    params = {"w": np.zeros(6)}
    opt = Lion(lr=0.125)  # a power of two: steps are exact
    for _ in range(20):
        before = params["w"].copy()
        opt.update(params, {"w": rng.standard_normal(6) * np.array([1e-8, 1e-3, 1.0, 1e3, 1e8, 0.0])})
        assert set(np.abs(params["w"] - before)) <= {0.0, 0.125}
    assert params["w"][5] == 0.0  # a zero gradient forever: m = 0, c = 0, no move


def test_lion_against_optax_if_installed():
    optax = pytest.importorskip("optax", reason="optax is not installed (the paper's algorithm is checked above)")
    jnp = pytest.importorskip("jax.numpy")
    rng = np.random.default_rng(5)
    w0, grads = rng.standard_normal(5), [rng.standard_normal(5) for _ in range(30)]
    tx = optax.lion(learning_rate=0.01, b1=0.9, b2=0.99, weight_decay=0.0)
    w, state = jnp.asarray(w0), None
    state = tx.init(w)
    for g in grads:
        upd, state = tx.update(jnp.asarray(g), state, w)
        w = optax.apply_updates(w, upd)
    params = {"w": w0.copy()}
    opt = Lion(lr=0.01, beta1=0.9, beta2=0.99)
    for g in grads:
        opt.update(params, {"w": g})
    # JAX computes in float32 by default: 30 steps of one rounding of w (2u32 at most per step, both roundings)
    np.testing.assert_allclose(params["w"], np.asarray(w), rtol=len(grads) * float(np.finfo(np.float32).eps))


# --- AMSGrad: Reddi, Kale & Kumar (2018), section 3 -------------------------------------------


def reddi_run(amsgrad: bool, c: float, steps: int, lr: float) -> np.ndarray:
    """Online problem f_t(x) = C x if t mod 3 == 1 else -x, x projected onto [-1, 1] after each step.

    The average loss is (C - 2) x / 3, minimised at x = -1 for C > 2.  Reddi et al.'s
    Theorem 1 setting: beta1 = 0, beta2 = 1 / (1 + C^2).  Returns x after every step.
    """
    params = {"x": np.array([0.0])}
    opt = Adam(lr=lr, beta1=0.0, beta2=1.0 / (1.0 + c * c), eps=1e-8, amsgrad=amsgrad)
    xs = np.empty(steps)
    for t in range(1, steps + 1):
        opt.update(params, {"x": np.array([c if t % 3 == 1 else -1.0])})
        np.clip(params["x"], -1.0, 1.0, out=params["x"])
        xs[t - 1] = params["x"][0]
    return xs


@pytest.mark.parametrize("c", [3.0, 10.0])
def test_reddi_counterexample_adam_drifts_amsgrad_converges(c):
    steps = 3000
    adam, ams = reddi_run(False, c, steps, lr=0.01), reddi_run(True, c, steps, lr=0.01)
    # Adam: the rare large gradient C is forgotten (v decays within two steps), the frequent -1s win
    assert adam[-300:].min() > 0.95, adam[-300:].min()
    # AMSGrad: v_max keeps C^2, so the C step outweighs the two -1 steps: to the optimum
    assert ams[-300:].max() < -0.95, ams[-300:].max()
    # average regret per step, against x* = -1 (f_t(x) - f_t(-1) summed over whole cycles)
    grads = np.array([c if t % 3 == 1 else -1.0 for t in range(1, steps + 1)])
    regret_adam = float(np.mean(grads * (np.concatenate([[0.0], adam[:-1]]) + 1.0)))
    regret_ams = float(np.mean(grads * (np.concatenate([[0.0], ams[:-1]]) + 1.0)))
    assert regret_adam > 0.5 * (c - 2) / 3 * 2 and regret_ams < 0.1 * (c - 2) / 3 * 2


def test_amsgrad_v_max_is_the_running_maximum():
    rng = np.random.default_rng(6)
    params, opt = {"w": rng.standard_normal(8)}, Adam(lr=0.01, amsgrad=True)
    prev = np.zeros(8)
    for t in range(30):
        opt.update(params, {"w": rng.standard_normal(8) * (10.0 if t == 3 else 1.0)})
        s = opt.state["w"]
        assert np.all(s["v_max"] >= prev) and np.all(s["v_max"] >= s["v"])
        assert np.any(s["v_max"] == s["v"]) or t > 3
        prev = s["v_max"].copy()


# --- AdamW --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_adamw_without_decay_is_adam_and_decay_is_decoupled(backend):
    rng = np.random.default_rng(7)
    p0 = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4).astype(np.float32)}
    grads = [{k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in p0.items()} for _ in range(10)]
    runs = {}
    for label, opt in {
        "adamw0": AdamW(lr=0.01, weight_decay=0.0, backend=backend),
        "adam": Adam(lr=0.01, backend=backend),
        "adamw": AdamW(lr=0.01, weight_decay=0.3, backend=backend),
        "adam_l2": Adam(lr=0.01, weight_decay=0.3, backend=backend),
    }.items():
        p = {k: v.copy() for k, v in p0.items()}
        for g in grads:
            opt.update(p, g)
        runs[label] = (p, opt)
    for k in p0:
        # bit-exact: with weight_decay 0 AdamW's decoupled factor is 1 - lr * 0 = 1 (a multiply by 1), the rest
        # the same operations
        assert np.array_equal(runs["adamw0"][0][k], runs["adam"][0][k])
        # decoupled decay never enters the moments: AdamW's m equals plain Adam's
        assert np.array_equal(runs["adamw"][1].state[k]["m"], runs["adam"][1].state[k]["m"])
        assert not np.allclose(runs["adamw"][0][k], runs["adam_l2"][0][k])


# --- structural options: fixed at construction, reconfigured by load_state_dict -----------------


def test_options_that_add_slots():
    assert Adam().slots == ("m", "v") and Adam(amsgrad=True).slots == ("m", "v", "v_max")
    assert RMSprop().slots == ("h",)
    assert RMSprop(centered=True, momentum=0.9).slots == ("h", "gbar", "v")
    assert RMSprop(momentum=0.5).slots == ("h", "v")


def test_structural_options_cannot_change_after_construction():
    opt = Adam(amsgrad=False)
    with pytest.raises(ValueError, match=r"amsgrad=True.*construct Adam\(amsgrad=True\)"):
        opt.amsgrad = True
    assert opt.amsgrad is False and opt.slots == ("m", "v")
    opt.amsgrad = False  # unchanged: fine
    rms = RMSprop(momentum=0.0)
    with pytest.raises(ValueError, match=r"momentum=0.5"):
        rms.momentum = 0.5
    with pytest.raises(ValueError, match="centered"):
        rms.centered = True
    rms = RMSprop(momentum=0.9)
    rms.momentum = 0.5  # same slots: a hyperparameter change like any other
    with pytest.raises(ValueError, match="momentum=0.0"):
        rms.momentum = 0.0
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="amsgrad"):
            Adam(amsgrad=bad)
        with pytest.raises(TypeError, match="centered"):
            RMSprop(centered=bad)


def test_load_state_dict_brings_its_own_configuration():
    rng = np.random.default_rng(8)
    params = {"w": rng.standard_normal(5)}
    src = RMSprop(lr=0.01, centered=True, momentum=0.9)
    for _ in range(3):
        src.update(params, {"w": rng.standard_normal(5)})
    opt = optimizer_from_state_dict(src.state_dict())  # built with defaults (no slots for gbar, v), then loaded
    assert opt.slots == ("h", "gbar", "v") and opt.centered and opt.momentum == 0.9
    sd = src.state_dict()
    del sd["state"]["w"]["gbar"]
    with pytest.raises(StateDictError, match="gbar"):
        RMSprop().load_state_dict(sd)


# --- AdaGrad options ------------------------------------------------------------------------------


def test_adagrad_initial_accumulator_and_lr_decay_first_steps():
    """h_0 = a: the first step is lr g / (sqrt(a + g^2) + eps); lr_decay k: step t uses lr / (1 + (t-1) k)."""
    params = {"w": np.array([0.0])}
    opt = AdaGrad(lr=0.5, eps=0.0, initial_accumulator_value=16.0, lr_decay=1.0)
    opt.update(params, {"w": np.array([3.0])})  # sqrt(16 + 9) = 5
    assert params["w"][0] == -0.5 * 3.0 / 5.0  # exact: sqrt(25) = 5, the same two correctly rounded ops
    opt.update(params, {"w": np.array([0.0])})  # h = 25
    opt.update(params, {"w": np.array([-12.0])})  # t = 3: lr / 3, sqrt(25 + 144) = 13
    # bit-exact: lr / (1 + 2 * 1) * g / (sqrt(169) + 0) is the expected expression's operations, sign aside
    assert params["w"][0] == -0.3 + (0.5 / 3.0) * 12.0 / 13.0


# --- gradient clipping ------------------------------------------------------------------------------


def _torch_params_with_grads(grads: dict[str, np.ndarray]) -> list:
    """torch's clip functions act on ``p.grad`` of parameters."""
    out = []
    for g in grads.values():
        t = torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True)
        t.grad = torch.tensor(g.copy())
        out.append(t)
    return out


def _clipped_by_us(grads: dict[str, np.ndarray], backend: str, **clip) -> tuple[dict[str, np.ndarray], SGD]:
    """SGD(lr=1) from w = 0 moves to exactly -g: read the clipped gradient off the parameters."""
    params = {k: np.zeros_like(g) for k, g in grads.items()}
    opt = SGD(lr=1.0, backend=backend, **clip)
    opt.update(params, grads)
    assert opt.last_update_backend == backend
    return {k: -p for k, p in params.items()}, opt


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0])
def test_clip_norm_matches_torch_clip_grad_norm(backend, dtype, scale):
    rng = np.random.default_rng(9)
    grads = {
        "a": (scale * rng.standard_normal((4, 5))).astype(dtype),
        "b": (scale * rng.standard_normal(7)).astype(dtype),
    }
    kept = {k: g.copy() for k, g in grads.items()}
    max_norm = 5.0
    ours, opt = _clipped_by_us(grads, backend, clip_norm=max_norm)
    tp = _torch_params_with_grads(grads)
    total = torch.nn.utils.clip_grad_norm_(tp, max_norm)
    tg = [t.grad for t in tp]
    # torch computes each tensor's norm in its dtype (a reduction of n <= 20 squares, any order: gamma(n + 1)
    # relative before the root) and the norm of the norms (gamma(3)); ours is a float64 dot (gamma(n), float64).
    # The clipped gradient adds the factor's roundings: max_norm / (N + 1e-6) (2 on each side), the cast of
    # ours to the dtype, and the product on each side.
    n = max(g.size for g in grads.values())
    rtol = gamma(n + 4, dtype) + gamma(n + 4)
    assert math.isclose(opt.last_grad_norm, float(total), rel_tol=rtol)
    for (k, g), t in zip(ours.items(), tg, strict=True):
        np.testing.assert_allclose(g, t.numpy(), rtol=rtol + gamma(6, dtype), atol=0)
        assert np.array_equal(grads[k], kept[k])  # the caller's gradients are never written
    norm_after = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in ours.values()))
    if opt.last_grad_norm <= max_norm:  # small: untouched, bit for bit
        assert all(np.array_equal(ours[k], grads[k]) for k in grads)
    else:  # large: capped at max_norm (up to torch's 1e-6 guard)
        # ours: the factor cast to the dtype and one product per element (2u of the dtype), the float64 norm
        # of the result (gamma(n + 2), float64) and the expected expression (3 roundings)
        after_tol = gamma(2, dtype) + gamma(n + 6)
        assert math.isclose(norm_after, max_norm * opt.last_grad_norm / (opt.last_grad_norm + 1e-6), rel_tol=after_tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clip_value_matches_torch_clip_grad_value(backend):
    rng = np.random.default_rng(10)
    grads = {"a": 3.0 * rng.standard_normal((6, 3)), "b": np.array([0.5, -0.25, 2.0, -2.0, 1.0, -1.0])}
    ours, opt = _clipped_by_us(grads, backend, clip_value=1.0)
    tp = _torch_params_with_grads(grads)
    torch.nn.utils.clip_grad_value_(tp, 1.0)
    tg = [t.grad for t in tp]
    for g, t in zip(ours.values(), tg, strict=True):
        assert np.array_equal(g, t.numpy())  # bit-exact: clamping selects values, no arithmetic
    assert np.array_equal(ours["b"], [0.5, -0.25, 1.0, -1.0, 1.0, -1.0])  # small entries untouched
    expected_norm = math.sqrt(sum(float(np.sum(t.numpy() ** 2)) for t in tg))
    # the norm after value clipping: two orders of the same 24 positive squares (our BLAS dot, np.sum's
    # pairwise sum): 2 gamma(24) relative, halved by the root, plus the roots' roundings
    assert math.isclose(opt.last_grad_norm, expected_norm, rel_tol=gamma(25))


def test_clip_value_then_clip_norm():
    grads = {"w": np.array([30.0, -40.0, 0.3])}
    ours, opt = _clipped_by_us(grads, "numpy", clip_value=4.0, clip_norm=1.0)
    v = np.array([4.0, -4.0, 0.3])
    # two orders of a 3-term sum of squares (dot vs nrm2): gamma(3) relative each, halved by the root: gamma(4)
    assert math.isclose(opt.last_grad_norm, float(np.linalg.norm(v)), rel_tol=gamma(4))
    # the norm's gamma(4), then 3 roundings on each side (+ 1e-6, the division, the product)
    np.testing.assert_allclose(ours["w"], v * (1.0 / (np.linalg.norm(v) + 1e-6)), rtol=gamma(10))


def test_clipping_is_complex_aware():
    g = np.array([3.0 - 4.0j, 0.5 + 0.1j])
    ours, opt = _clipped_by_us({"z": g}, "numpy", clip_value=1.0)
    assert np.array_equal(ours["z"], [1.0 - 1.0j, 0.5 + 0.1j])
    ours, opt = _clipped_by_us({"z": g}, "numpy", clip_norm=1.0)
    # |3-4j|^2 + |0.5+0.1j|^2: 4 squares and 3 sums vs 25 + 0.26 (2 roundings), halved by the roots: gamma(4)
    assert math.isclose(opt.last_grad_norm, math.sqrt(25 + 0.26), rel_tol=gamma(4))


@pytest.mark.parametrize("backend", BACKENDS)
def test_clipping_and_the_finite_check(backend):
    """clip_value turns +-inf into +-c (a finite step); NaN stays NaN; clip_norm of an inf is refused."""
    params = {"a": np.zeros(3), "b": np.zeros(2)}
    opt = SGD(lr=1.0, clip_value=2.0, backend=backend)
    opt.update(params, {"a": np.array([np.inf, -np.inf, 1.0]), "b": np.ones(2)})
    assert np.array_equal(params["a"], [-2.0, 2.0, -1.0])
    for clip in ({"clip_value": 2.0}, {"clip_norm": 1.0}):
        for bad in (np.nan, np.inf):
            if bad == np.inf and "clip_value" in clip:
                continue
            opt = SGD(lr=1.0, backend=backend, **clip)
            p = {"a": np.zeros(3), "b": np.zeros(2)}
            opt.update(p, {"a": np.ones(3), "b": np.ones(2)})
            norm, before = opt.last_grad_norm, {k: v.copy() for k, v in p.items()}
            with pytest.raises(NonFiniteGradientError) as info:
                opt.update(p, {"a": np.ones(3), "b": np.array([bad, 1.0])})
            assert info.value.keys == ["b"]  # a non-finite norm scales nothing: only the culprit is named
            assert opt.last_grad_norm == norm and all(np.array_equal(p[k], before[k]) for k in p)
            skip = SGD(lr=1.0, backend=backend, on_nonfinite="skip", **clip)
            skip.update(p, {"a": np.ones(3), "b": np.array([bad, 1.0])})
            assert skip.skipped_steps == 1 and not math.isfinite(skip.last_grad_norm)
            assert all(np.array_equal(p[k], before[k]) for k in p)


def test_clip_norm_inf_only_reports_and_no_clipping_reports_none():
    rng = np.random.default_rng(11)
    g = {"w": 100 * rng.standard_normal(10)}
    ours, opt = _clipped_by_us(g, "numpy", clip_norm=math.inf)
    # a factor of inf scales nothing: bit-exact; the norm: two orders of 10 squares, gamma(10) halved, + root
    assert np.array_equal(ours["w"], g["w"]) and math.isclose(
        opt.last_grad_norm, np.linalg.norm(g["w"]), rel_tol=gamma(11)
    )
    _, plain = _clipped_by_us(g, "numpy")
    assert plain.last_grad_norm is None


def test_huge_gradients_do_not_overflow_the_norm():
    g = {"w": np.array([1e200, -1e200, 3e199])}
    ours, opt = _clipped_by_us(g, "numpy", clip_norm=1.0)
    # scaled by the largest magnitude: 3 divisions, 3 squares + 2 sums, the root and the product (~7 roundings,
    # halved where under the root) vs 2 on the expected side
    assert math.isclose(opt.last_grad_norm, 1e200 * math.sqrt(2.09), rel_tol=gamma(8))
    # g * (1 / (N + 1e-6)): the factor (2), the products (1), np.linalg.norm's sum (gamma(3)) and root
    assert math.isclose(float(np.linalg.norm(ours["w"])), 1.0, rel_tol=gamma(8))


@pytest.mark.parametrize("name", ["clip_norm", "clip_value"])
@pytest.mark.parametrize(("value", "error"), [(0.0, ValueError), (-1.0, ValueError), (math.nan, ValueError),
                                               ("1", TypeError), (True, TypeError), ([1.0], TypeError)])  # fmt: skip
def test_clip_arguments_are_validated(name, value, error):
    with pytest.raises(error, match=name):
        Adam(**{name: value})
    opt = Adam(**{name: 1.0})
    with pytest.raises(error, match=name):
        setattr(opt, name, value)
    assert getattr(opt, name) == 1.0
    opt.__setattr__(name, None)  # off again
    assert getattr(opt, name) is None


# --- schedules inside the optimizers --------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(npoptim.OPTIMIZERS))
def test_constant_schedule_is_the_plain_rate(name, backend):
    rng = np.random.default_rng(12)
    p0 = {"w": rng.standard_normal((3, 3)), "b": rng.standard_normal(3).astype(np.float32)}
    a, b = (
        npoptim.OPTIMIZERS[name](lr=0.01, backend=backend),
        npoptim.OPTIMIZERS[name](lr=Constant(lr=0.01), backend=backend),
    )
    pa, pb = {k: v.copy() for k, v in p0.items()}, {k: v.copy() for k, v in p0.items()}
    for _ in range(4):
        g = {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in p0.items()}
        a.update(pa, g)
        b.update(pb, g)
    compiled = npoptim.OPTIMIZERS[name]._fused_kernel is not None  # rules without a kernel run the reference
    assert b.last_update_backend == (backend if compiled else "numpy")
    assert all(np.array_equal(pa[k], pb[k]) for k in p0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sgd_with_a_schedule_uses_its_value_at_the_step_count(backend):
    sched = StepDecay(lr=1.0, step_size=2, gamma=0.5)
    params, opt = {"w": np.zeros(2)}, SGD(lr=sched, backend=backend)
    moves = []
    for _ in range(6):
        before = params["w"][0]
        opt.update(params, {"w": np.ones(2)})
        moves.append(before - params["w"][0])
        assert opt.current_lr == sched(opt.step_count - 1)
    assert moves == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert opt.lr is sched and opt.hyperparameters["lr"] is sched


def test_skipped_steps_do_not_advance_the_schedule():
    sched = StepDecay(lr=1.0, step_size=1, gamma=0.5)
    params, opt = {"w": np.zeros(1)}, SGD(lr=sched, on_nonfinite="skip")
    opt.update(params, {"w": np.ones(1)})
    opt.update(params, {"w": np.array([np.nan])})
    opt.update(params, {"w": np.ones(1)})
    assert params["w"][0] == -1.5 and opt.skipped_steps == 1  # exact: 1 + 0.5, dyadic


def test_adam_with_a_schedule_matches_torch_adam_with_its_scheduler():
    rng = np.random.default_rng(13)
    w0 = rng.standard_normal(6)
    sched = Warmup(steps=5, schedule=StepDecay(lr=0.05, step_size=7, gamma=0.3))
    params, opt = {"w": w0.copy()}, Adam(lr=sched, beta1=0.8, beta2=0.99, amsgrad=True)
    tw = torch.tensor(w0.copy(), requires_grad=True)
    topt = torch.optim.Adam([tw], lr=0.05, betas=(0.8, 0.99), amsgrad=True)
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, lambda k: sched(k) / 0.05)
    scale = 0.0
    for step in range(1, 31):
        g = rng.standard_normal(6)
        opt.update(params, {"w": g})
        tw.grad = torch.tensor(g.copy())
        topt.step()
        tsched.step()
        # as test_parity_torch: 1 ULP of the running scale per step (torch's SIMD kernels vs ours); LambdaLR's
        # rate 0.05 * (sched(k) / 0.05) is 2 roundings off sched(k), a 2u relative error in a step lr times
        # smaller than the scale
        scale = max(scale, float(np.abs(tw.detach().numpy()).max()))
        bound = step * float(np.finfo(np.float64).eps) * scale
        assert_within(params["w"], tw.detach().numpy(), bound, f"Adam + schedule vs torch at step {step}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_momentum_with_a_step_change_differs_from_torch_as_derived(backend):
    """docs/schedules.md: after eta -> eta' at step k, ours minus torch's displacement is
    -(eta - eta') mu^(n+1) b_{k-1} at step k + n (b = torch's momentum buffer)."""
    mu, eta, eta2, k = 0.9, 0.1, 0.02, 6  # the rate of update k + 1 (t = k) changes
    sched = StepDecay(lr=eta, step_size=k, gamma=eta2 / eta)
    rng = np.random.default_rng(14)
    w0 = rng.standard_normal(4)
    params, opt = {"w": w0.copy()}, Momentum(lr=sched, momentum=mu, backend=backend)
    tw = torch.tensor(w0.copy(), requires_grad=True)
    topt = torch.optim.SGD([tw], lr=eta, momentum=mu)
    tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=k, gamma=eta2 / eta)
    b_before_change = None
    # displacements read as w_after - w_before: each side rounds w (<= u |w| twice) and the velocity differs
    # by the two conventions' roundings (v: 3, eta b: 3 per step, damped by mu: 6u |v| / (1 - mu)); eta's
    # change mid-run is torch's StepLR product eta * (eta2/eta): 2 more roundings of the rate
    w_scale = np.abs(w0).max() + 2 * k * eta * 4.0 / (1 - mu)  # |g| < 4 for these 48 normal draws
    v_scale = eta * 4.0 / (1 - mu)
    bound = 2 * gamma(2) * w_scale + 2 * gamma(8) / (1 - mu) * v_scale
    for t in range(2 * k):  # StepDecay changes the rate again at t = 2k
        g = rng.standard_normal(4)
        assert np.abs(g).max() < 4.0  # the bound's assumption on this seed's draws
        ours_before, torch_before = params["w"].copy(), tw.detach().numpy().copy()
        opt.update(params, {"w": g})
        tw.grad = torch.tensor(g.copy())
        topt.step()
        tsched.step()
        d_ours, d_torch = params["w"] - ours_before, tw.detach().numpy() - torch_before
        if t < k:
            assert_within(d_ours, d_torch, bound, f"displacement at step {t}")
            b_before_change = topt.state[tw]["momentum_buffer"].numpy().copy()
        else:
            n = t - k
            predicted = -(eta - eta2) * mu ** (n + 1) * b_before_change
            # and the prediction's own roundings (mu**(n+1): pow + 4 products)
            assert_within(d_ours - d_torch, predicted, bound + gamma(6) * np.abs(predicted), f"difference at {t}")
            assert np.max(np.abs(predicted)) > 1e-4  # a real difference, not rounding


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("via", ["state_dict", "checkpoint"])
def test_resume_with_a_schedule_and_clipping_is_bit_identical(backend, via, tmp_path):
    sched = Warmup(steps=3, start_lr=0.001, schedule=CosineDecay(lr=0.05, decay_steps=10, min_lr=0.002))
    rng = np.random.default_rng(15)
    p0 = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3).astype(np.float32)}
    stream = [{k: 3 * rng.standard_normal(v.shape).astype(v.dtype) for k, v in p0.items()} for _ in range(16)]
    stream[4]["W"][0, 0] = np.nan  # skipped: the schedule does not advance

    def make():
        return AdamW(lr=sched, weight_decay=0.1, clip_norm=2.0, on_nonfinite="skip", backend=backend)

    straight, ps = make(), {k: v.copy() for k, v in p0.items()}
    for g in stream:
        straight.update(ps, g)
    first, pf = make(), {k: v.copy() for k, v in p0.items()}
    for g in stream[:8]:
        first.update(pf, g)
    if via == "state_dict":
        sd = first.state_dict()
        assert sd["hyperparameters"]["lr"] == sched.to_dict() and sd["version"] == 2
        resumed = AdamW(backend=backend)
        resumed.load_state_dict(sd)
    else:
        save_checkpoint(tmp_path / "c.npz", pf, first)
        ck = load_checkpoint(tmp_path / "c.npz")
        pf, resumed = ck.params, optimizer_from_state_dict(ck.optimizer_state)
        resumed.backend = backend
    assert resumed.lr == sched and resumed.lr is not sched
    for g in stream[8:]:
        resumed.update(pf, g)
    assert resumed.skipped_steps == straight.skipped_steps == 1
    for k in p0:  # bit-exact: the same operations on the same values, interrupted by an exact round trip
        assert np.array_equal(pf[k], ps[k])
        for slot in resumed.slots:
            assert np.array_equal(resumed.state[k][slot], straight.state[k][slot])
    assert resumed.current_lr == straight.current_lr == sched(14)
    assert resumed.last_grad_norm == straight.last_grad_norm


def test_schedule_validation_and_bad_stored_schedules():
    with pytest.raises(TypeError, match="lr"):
        SGD(lr=lambda t: 0.1)  # a plain callable cannot be saved
    opt = SGD(lr=0.1)
    opt.lr = CosineDecay(lr=0.1, decay_steps=5)  # set after construction, validated like a number
    assert isinstance(opt.lr, CosineDecay)
    sd = opt.state_dict()
    sd["hyperparameters"]["lr"] = {"name": "cosine", "args": {"lr": 0.1}}  # missing decay_steps
    with pytest.raises(StateDictError, match="decay_steps"):
        SGD().load_state_dict(sd)
    sd["hyperparameters"]["lr"] = {"name": "nope", "args": {}}
    with pytest.raises(StateDictError, match="'nope'"):
        SGD().load_state_dict(sd)


def test_version_1_state_dicts_still_load():
    """Version 1 (before clipping and schedules) had no clip arguments: they load as off."""
    rng = np.random.default_rng(16)
    params, opt = {"w": rng.standard_normal(3)}, Adam(lr=0.01)
    opt.update(params, {"w": rng.standard_normal(3)})
    sd = opt.state_dict()
    del sd["hyperparameters"]["clip_norm"], sd["hyperparameters"]["clip_value"]
    sd["version"] = 1
    new = Adam(clip_norm=1.0)
    new.load_state_dict(sd)
    assert new.clip_norm is None and new.clip_value is None and new.state["w"]["step"] == 1
    sd["version"] = 2
    with pytest.raises(StateDictError, match="clip_norm"):
        Adam().load_state_dict(sd)


# --- the compiled path knows every configuration ---------------------------------------------------


@pytest.mark.skipif(not fused.fast_path_possible(), reason="numba is not installed")
def test_every_configuration_has_a_kernel_and_warm_up_loads_them_all():
    """Each option set of ``_fused_variants`` selects a kernel of ``DRIVERS``; together they use every
    rule kernel, and ``fused.warm_up()`` loads each for float32 and float64 (no compile mid-training)."""
    fused.warm_up()
    k = fused.load_kernels()
    used = set()
    for cls in npoptim.OPTIMIZERS.values():
        if cls._fused_kernel is None:  # NumPy-only rules (none in OPTIMIZERS today)
            continue
        for options in cls._fused_variants:
            opt = cls(**options)
            assert opt._fused_kernel in k.DRIVERS, (cls.__name__, options)
            used.add(opt._fused_kernel)
            assert all(fused._warm.get((opt._fused_kernel, np.dtype(dt))) for dt in (np.float32, np.float64))
    assert used == set(k.DRIVERS)
