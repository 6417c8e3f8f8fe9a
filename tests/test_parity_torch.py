"""Parity of every registered npoptim rule with ``torch.optim`` (the oracle, torch 2.13).

For each name in :data:`npoptim.OPTIMIZERS` there is one entry in ``ORACLES``:
a function building the equivalent ``torch.optim`` optimizer from npoptim's
hyperparameters, the grid of hyperparameters to try, and the map from
npoptim's state slots to torch's state (with the conversion between the two
conventions).  A rule registered without an oracle makes ``test_parity`` fail.

Both optimizers get the same parameters and the same random gradients
(``np.random.default_rng`` with fixed seeds) for ``N_STEPS`` steps; parameters
are compared after every step and the state at the end.

Tolerances.  Relative to the scale of the path: an element of an array is
compared with ``atol = rtol * S``, where ``S`` is the largest ``|torch value|``
that array has had so far in the run, and ``rtol = N_STEPS * eps`` of the
dtype (1 ULP of ``S`` per step: 2.2e-14 for float64, 1.2e-5 for float32).
The two libraries evaluate the same formula in a different order (torch's Adam
uses ``lerp``, its momentum keeps ``b`` where we keep ``v = -lr*b``, weight
decay uses a fused ``add(alpha=)``, and its SIMD kernels, chosen by CPU, may
fuse multiply-adds where ours do not), so every step differs by about one
unit in the last place *of the magnitudes the array had*: each side rounds the
stored value (<= 1/2 ULP of S each), the update itself differs by a few ULP of
a term ``lr`` times smaller, and a moment's own error is damped by its beta.
Those per-step differences have independent signs: over N_STEPS they add like
a random walk (~sqrt(N_STEPS) ULP; measured at most 17 ULP in float32 and 11
in float64 over every rule, with OpenBLAS Haswell/SkylakeX kernels and
torch's default/AVX2/AVX-512 kernels), and N_STEPS ULP if the two roundings of
the stored value (1/2 ULP each) had the same sign at every step: the
tolerance, 6-10x the largest measured.  An element that
travels towards zero (a parameter crossing zero, a momentum buffer
cancelling) keeps that absolute error, so its own elementwise relative error
is unbounded although nothing is wrong.  A real discrepancy (a wrong
coefficient, a missed bias correction, eps inside the root) is many orders of
magnitude above ``rtol * S``.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # imported before npoptim (and so before numba)

from npoptim import OPTIMIZERS  # noqa: E402

N_STEPS = 100
#: name -> shape; a 0-d array, a 1-element array, a vector, a matrix, a 3-d array.
SHAPES: dict[str, tuple[int, ...]] = {"s": (), "one": (1,), "vec": (7,), "mat": (4, 5), "cube": (2, 3, 4)}
#: Gradient scale per array, so that magnitudes from 1e-3 to 10 occur in one run.
GRAD_SCALE: dict[str, float] = {"s": 1.0, "one": 1e-3, "vec": 10.0, "mat": 1.0, "cube": 0.1}
#: N_STEPS ULP of the running scale (module docstring): one per step, whatever the signs.
RTOL = {np.float64: N_STEPS * float(np.finfo(np.float64).eps), np.float32: N_STEPS * float(np.finfo(np.float32).eps)}
#: Both ways npoptim computes a step, the NumPy reference and the compiled (numba) path; each
#: test runs both side by side against one torch optimizer (the compiled path only if numba is
#: installed -- ``test_compiled_backend_is_available`` reports when it is not).
NUMBA = importlib.util.find_spec("numba") is not None
BACKENDS = ("numpy", "numba") if NUMBA else ("numpy",)
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32, np.complex128: torch.complex128}


# --- the oracles: npoptim hyperparameters -> torch.optim ---------------------------


def _sgd(tp: list, h: dict[str, float]):
    return torch.optim.SGD(tp, lr=h["lr"], weight_decay=h["weight_decay"])


def _momentum(tp: list, h: dict[str, float]):
    return torch.optim.SGD(tp, lr=h["lr"], momentum=h["momentum"], weight_decay=h["weight_decay"])


def _nesterov(tp: list, h: dict[str, float]):
    return torch.optim.SGD(tp, lr=h["lr"], momentum=h["momentum"], nesterov=True, weight_decay=h["weight_decay"])


def _adagrad(tp: list, h: dict[str, Any]):
    return torch.optim.Adagrad(
        tp,
        lr=h["lr"],
        eps=h["eps"],
        initial_accumulator_value=h.get("initial_accumulator_value", 0.0),
        lr_decay=h.get("lr_decay", 0.0),
        weight_decay=h["weight_decay"],
    )


def _rmsprop(tp: list, h: dict[str, Any]):
    return torch.optim.RMSprop(
        tp,
        lr=h["lr"],
        alpha=h["decay_rate"],
        eps=h["eps"],
        centered=h.get("centered", False),
        momentum=h.get("momentum", 0.0),
        weight_decay=h["weight_decay"],
    )


def _adam(tp: list, h: dict[str, Any], cls: Any = torch.optim.Adam):
    return cls(
        tp,
        lr=h["lr"],
        betas=(h["beta1"], h["beta2"]),
        eps=h["eps"],
        amsgrad=h.get("amsgrad", False),
        weight_decay=h["weight_decay"],
    )


def _adamw(tp: list, h: dict[str, Any]):
    return _adam(tp, h, torch.optim.AdamW)  # same arguments; torch's AdamW decays decoupled, as ours


def _nadam(tp: list, h: dict[str, Any]):
    return torch.optim.NAdam(
        tp,
        lr=h["lr"],
        betas=(h["beta1"], h["beta2"]),
        eps=h["eps"],
        momentum_decay=h["momentum_decay"],
        weight_decay=h["weight_decay"],
    )


def _adamax(tp: list, h: dict[str, Any]):
    return torch.optim.Adamax(
        tp, lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"], weight_decay=h["weight_decay"]
    )


def _adadelta(tp: list, h: dict[str, Any]):
    return torch.optim.Adadelta(tp, lr=h["lr"], rho=h["decay_rate"], eps=h["eps"], weight_decay=h["weight_decay"])


def _radam(tp: list, h: dict[str, Any]):
    return torch.optim.RAdam(
        tp, lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"], weight_decay=h["weight_decay"]
    )


class _L2Grad:
    """A torch optimizer whose rule has no ``weight_decay`` (Rprop), given ours: g + lambda w in ``.grad``.

    torch's own L2 is ``grad.add(param, alpha=weight_decay)``, the same sum; ``state`` is the inner one's.
    """

    def __init__(self, inner: Any, params: list, weight_decay: float) -> None:
        self.inner, self.params, self.weight_decay, self.state = inner, params, weight_decay, inner.state

    def step(self) -> None:
        if self.weight_decay:
            for p in self.params:
                if p.grad is not None:
                    p.grad = p.grad.add(p.detach(), alpha=self.weight_decay)
        self.inner.step()


def _rprop(tp: list, h: dict[str, Any]):
    inner = torch.optim.Rprop(tp, lr=h["lr"], etas=h["etas"], step_sizes=h["step_sizes"])
    return _L2Grad(inner, tp, h["weight_decay"])


def _asgd(tp: list, h: dict[str, Any]):
    return torch.optim.ASGD(
        tp, lr=h["lr"], lambd=h["lambd"], alpha=h["alpha"], t0=h["t0"], weight_decay=h["weight_decay"]
    )


def _adam_state(ts: dict[str, Any], h: dict[str, Any]) -> dict[str, np.ndarray]:
    out = {"m": ts["exp_avg"].numpy(), "v": ts["exp_avg_sq"].numpy()}
    if h.get("amsgrad"):
        out["v_max"] = ts["max_exp_avg_sq"].numpy()
    return out


def _rmsprop_state(ts: dict[str, Any], h: dict[str, Any]) -> dict[str, np.ndarray]:
    """``gbar`` is torch's ``grad_avg``; our velocity ``v`` is ``-lr * momentum_buffer`` (lr inside)."""
    out = {"h": ts["square_avg"].numpy()}
    if h.get("centered"):
        out["gbar"] = ts["grad_avg"].numpy()
    if h.get("momentum", 0.0) > 0:
        out["v"] = -h["lr"] * ts["momentum_buffer"].numpy()
    return out


def _velocity(ts: dict[str, Any], h: dict[str, float]) -> dict[str, np.ndarray]:
    """Heavy ball / Nesterov: our ``v`` is ``-lr * b``, torch's ``momentum_buffer`` ``b``."""
    return {"v": -h["lr"] * ts["momentum_buffer"].numpy()}


@dataclass(frozen=True)
class Oracle:
    build: Callable[[list, dict[str, Any]], Any]
    #: torch's per-parameter state -> what our state slots must equal.
    state: Callable[[dict[str, Any], dict[str, Any]], dict[str, np.ndarray]]
    grid: tuple[dict[str, Any], ...]
    #: torch keeps a per-parameter scalar in its *default* dtype (NAdam's ``mu_product``); float64
    #: parity then needs ``torch.set_default_dtype(torch.float64)`` while torch builds and steps.
    default_dtype_float64: bool = False


#: Registered rules that torch.optim does not have, and where they are checked instead.
NO_TORCH: dict[str, str] = {
    "lion": "tests/test_extended.py: against the paper's Algorithm 2, written out there",
    "schedulefreesgd": "tests/test_schedule_free.py: against schedulefree's SGDScheduleFreeReference",
    "schedulefreeadamw": "tests/test_schedule_free.py: against schedulefree's AdamWScheduleFreeReference",
}


ORACLES: dict[str, Oracle] = {
    "sgd": Oracle(
        _sgd,
        lambda ts, h: {},
        ({"lr": 0.01, "weight_decay": 0.0}, {"lr": 0.1, "weight_decay": 0.0}, {"lr": 0.05, "weight_decay": 0.1}),
    ),
    "momentum": Oracle(
        _momentum,
        _velocity,
        (
            {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0},
            {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.0},
            {"lr": 0.003, "momentum": 0.99, "weight_decay": 0.0},
            {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01},
        ),
    ),
    "nesterov": Oracle(
        _nesterov,
        _velocity,
        (
            {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0},
            {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.0},
            {"lr": 0.003, "momentum": 0.99, "weight_decay": 0.0},
            {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01},
        ),
    ),
    "adagrad": Oracle(
        _adagrad,
        lambda ts, h: {"h": ts["sum"].numpy()},
        (
            {"lr": 0.01, "eps": 1e-7, "weight_decay": 0.0},
            {"lr": 0.5, "eps": 1e-10, "weight_decay": 0.0},
            {"lr": 0.1, "eps": 1e-3, "weight_decay": 0.0},
            {"lr": 0.1, "eps": 1e-7, "weight_decay": 0.1},
            {"lr": 0.1, "eps": 1e-7, "weight_decay": 0.0, "initial_accumulator_value": 0.1},
            {"lr": 0.3, "eps": 1e-10, "weight_decay": 0.01, "lr_decay": 0.05},
            {"lr": 0.2, "eps": 1e-7, "weight_decay": 0.0, "initial_accumulator_value": 2.0, "lr_decay": 1e-3},
        ),
    ),
    "rmsprop": Oracle(
        _rmsprop,
        _rmsprop_state,
        (
            {"lr": 0.01, "decay_rate": 0.99, "eps": 1e-7, "weight_decay": 0.0},
            {"lr": 0.001, "decay_rate": 0.9, "eps": 1e-8, "weight_decay": 0.0},
            {"lr": 0.01, "decay_rate": 0.5, "eps": 1e-3, "weight_decay": 0.0},
            {"lr": 0.01, "decay_rate": 0.99, "eps": 1e-7, "weight_decay": 0.05},
            {"lr": 0.01, "decay_rate": 0.9, "eps": 1e-6, "weight_decay": 0.0, "centered": True},
            {"lr": 0.003, "decay_rate": 0.99, "eps": 1e-7, "weight_decay": 0.0, "momentum": 0.9},
            {"lr": 0.003, "decay_rate": 0.9, "eps": 1e-5, "weight_decay": 0.01, "centered": True, "momentum": 0.5},
        ),
    ),
    "adam": Oracle(
        _adam,
        _adam_state,
        (
            {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
            {"lr": 0.05, "beta1": 0.5, "beta2": 0.9, "eps": 1e-8, "weight_decay": 0.0},
            {"lr": 0.01, "beta1": 0.0, "beta2": 0.99, "eps": 1e-3, "weight_decay": 0.0},
            {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1},
            {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "amsgrad": True},
            {"lr": 0.05, "beta1": 0.5, "beta2": 0.9, "eps": 1e-6, "weight_decay": 0.01, "amsgrad": True},
        ),
    ),
    "adamw": Oracle(
        _adamw,
        _adam_state,
        (
            {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01},
            {"lr": 0.05, "beta1": 0.5, "beta2": 0.9, "eps": 1e-8, "weight_decay": 0.0},
            {"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-3, "weight_decay": 0.5},
            {"lr": 0.01, "beta1": 0.8, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1, "amsgrad": True},
        ),
    ),
    "nadam": Oracle(
        _nadam,
        lambda ts, h: {"m": ts["exp_avg"].numpy(), "v": ts["exp_avg_sq"].numpy()},
        (
            {"lr": 0.002, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "momentum_decay": 0.004, "weight_decay": 0.0},
            {"lr": 0.02, "beta1": 0.5, "beta2": 0.9, "eps": 1e-6, "momentum_decay": 0.1, "weight_decay": 0.0},
            {"lr": 0.01, "beta1": 0.95, "beta2": 0.99, "eps": 1e-3, "momentum_decay": 0.0, "weight_decay": 0.0},
            {"lr": 0.002, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "momentum_decay": 0.004, "weight_decay": 0.1},
        ),
        default_dtype_float64=True,
    ),
    "adamax": Oracle(
        _adamax,
        lambda ts, h: {"m": ts["exp_avg"].numpy(), "u": ts["exp_inf"].numpy()},
        (
            {"lr": 0.002, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
            {"lr": 0.05, "beta1": 0.5, "beta2": 0.9, "eps": 1e-8, "weight_decay": 0.0},
            {"lr": 0.01, "beta1": 0.0, "beta2": 0.99, "eps": 1e-3, "weight_decay": 0.0},
            {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1},
        ),
    ),
    "adadelta": Oracle(
        _adadelta,
        lambda ts, h: {"h": ts["square_avg"].numpy(), "d": ts["acc_delta"].numpy()},
        (
            {"lr": 1.0, "decay_rate": 0.9, "eps": 1e-6, "weight_decay": 0.0},
            {"lr": 0.5, "decay_rate": 0.99, "eps": 1e-4, "weight_decay": 0.0},
            {"lr": 2.0, "decay_rate": 0.5, "eps": 1e-8, "weight_decay": 0.0},
            {"lr": 1.0, "decay_rate": 0.9, "eps": 1e-6, "weight_decay": 0.1},
        ),
    ),
    "rprop": Oracle(
        _rprop,
        lambda ts, h: {"prev": ts["prev"].numpy(), "step_size": ts["step_size"].numpy()},
        (
            {"lr": 0.01, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0), "weight_decay": 0.0},
            # step sizes that reach both bounds within the run
            {"lr": 0.1, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.5), "weight_decay": 0.0},
            {"lr": 0.001, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0), "weight_decay": 0.1},
        ),
    ),
    "asgd": Oracle(
        _asgd,
        lambda ts, h: {"ax": ts["ax"].numpy()},
        (
            {"lr": 0.01, "lambd": 1e-4, "alpha": 0.75, "t0": 1e6, "weight_decay": 0.0},
            # averaging from step 12 on, a strong decay of the rate and of the weights
            {"lr": 0.05, "lambd": 0.5, "alpha": 0.5, "t0": 10.0, "weight_decay": 0.0},
            {"lr": 0.02, "lambd": 1e-3, "alpha": 1.0, "t0": 0.0, "weight_decay": 0.1},
        ),
        default_dtype_float64=True,  # torch keeps eta and mu as tensors of its default dtype
    ),
    "radam": Oracle(
        _radam,
        lambda ts, h: {"m": ts["exp_avg"].numpy(), "v": ts["exp_avg_sq"].numpy()},
        (
            {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
            # beta2 = 0.9: rho_inf = 19, rectification from t = 6 on (both branches within the 100 steps)
            {"lr": 0.05, "beta1": 0.5, "beta2": 0.9, "eps": 1e-8, "weight_decay": 0.0},
            {"lr": 0.01, "beta1": 0.0, "beta2": 0.99, "eps": 1e-3, "weight_decay": 0.0},
            {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1},
        ),
    ),
}


def _cases() -> list:
    """(name, hyperparameters) for every registered rule; a rule without an oracle still gets a case."""
    cases = []
    for name in WITH_TORCH:
        oracle = ORACLES.get(name)
        grid = oracle.grid if oracle is not None else (None,)
        cases += [pytest.param(name, h, id=f"{name}-{i}") for i, h in enumerate(grid)]
    return cases


#: The registered rules torch.optim has: each must have an oracle.
WITH_TORCH = [name for name in OPTIMIZERS if name not in NO_TORCH]


# --- helpers ---------------------------------------------------------------------


@contextlib.contextmanager
def _torch_default_dtype(oracle: Oracle, dtype: Any):
    """torch's default dtype float64 while torch runs, where the oracle needs it (restored after)."""
    before = torch.get_default_dtype()
    if oracle.default_dtype_float64 and np.dtype(dtype) != np.float32:
        torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


class _Checker:
    """Compares arrays with torch's, each against ``rtol`` times its running scale (module docstring)."""

    def __init__(self, rtol: float) -> None:
        self.rtol = rtol
        self.scale: dict[str, float] = {}

    def __call__(self, label: str, actual: np.ndarray, expected: np.ndarray, when: str) -> None:
        what = f"{label} {when}"
        assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != torch's {expected.dtype}"
        assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != torch's {expected.shape}"
        scale = max(self.scale.get(label, 0.0), float(np.max(np.abs(expected))))
        self.scale[label] = scale
        atol = self.rtol * scale
        # the cheap test first; assert_allclose (slow) only to report a failure
        if not np.all(np.abs(actual - expected) <= atol):
            np.testing.assert_allclose(actual, expected, rtol=0, atol=atol, err_msg=what)


def _random(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    if np.issubdtype(dtype, np.complexfloating):
        return np.asarray(rng.standard_normal(shape) + 1j * rng.standard_normal(shape), dtype=dtype)
    return np.asarray(rng.standard_normal(shape), dtype=dtype)


def _twins(init: dict[str, np.ndarray], dtype: type) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """Independent copies of the initial parameters: one per npoptim backend, one for torch."""
    ours = {b: {k: v.copy() for k, v in init.items()} for b in BACKENDS}
    theirs = {k: torch.tensor(v.copy(), dtype=TORCH_DTYPE[dtype], requires_grad=True) for k, v in init.items()}
    return ours, theirs


def _torch_state(oracle: Oracle, topt: Any, tp: Any, h: dict[str, float]) -> dict[str, np.ndarray]:
    ts = topt.state[tp]
    return oracle.state(ts, h) if ts else {}


def _check_backend(opt: Any, backend: str, dtype: type) -> None:
    """The path under test really computed the step (the compiled one declines complex arrays)."""
    compiled = type(opt)._fused_kernel is not None  # a rule without a kernel runs the reference on both
    expected = "numpy" if backend == "numpy" or not compiled or np.issubdtype(dtype, np.complexfloating) else "numba"
    assert opt.last_update_backend == expected, f"step computed by {opt.last_update_backend!r}, not {expected!r}"


def _run_parity(name: str, h: dict[str, Any], dtype: type, rtol: float, seed: int) -> None:
    with _torch_default_dtype(ORACLES[name], dtype):
        _run_parity_inner(name, h, dtype, rtol, seed)


def _run_parity_inner(name: str, h: dict[str, Any], dtype: type, rtol: float, seed: int) -> None:
    oracle = ORACLES[name]
    opts = {b: OPTIMIZERS[name](**h, backend=b) for b in BACKENDS}
    rng = np.random.default_rng(seed)
    ours, theirs = _twins({k: _random(rng, shape, dtype) for k, shape in SHAPES.items()}, dtype)
    topt = oracle.build(list(theirs.values()), h)
    check = _Checker(rtol)
    for step in range(1, N_STEPS + 1):
        # np.asarray: a Python float times a 0-d array is a NumPy scalar, not an array
        grads = {k: np.asarray(GRAD_SCALE[k] * _random(rng, SHAPES[k], dtype)) for k in SHAPES}
        for b, opt in opts.items():
            opt.update(ours[b], grads)
            _check_backend(opt, b, dtype)
        for k, tp in theirs.items():
            tp.grad = torch.tensor(grads[k].copy(), dtype=TORCH_DTYPE[dtype])
        topt.step()
        when = f"at step {step} ({name}, {h}, {np.dtype(dtype)})"
        for k, tp in theirs.items():
            expected = _torch_state(oracle, topt, tp, h)
            for b, opt in opts.items():
                assert set(expected) == set(opt.slots), f"{name}: oracle maps {sorted(expected)}, rule has {opt.slots}"
                check(f"[{b}] params[{k!r}]", ours[b][k], tp.detach().numpy(), when)
                for slot, want in expected.items():
                    check(f"[{b}] state[{k!r}][{slot!r}]", opt.state[k][slot], want, when)
    for k, tp in theirs.items():
        ts = topt.state[tp]
        for opt in opts.values():
            assert opt.state[k]["step"] == N_STEPS
            if "step" in ts:  # torch keeps a per-parameter step for the adaptive rules
                assert int(ts["step"]) == N_STEPS


# --- tests -------------------------------------------------------------------------


def test_every_oracle_is_registered() -> None:
    """The oracle table does not test something the registry no longer has."""
    assert set(ORACLES) <= set(OPTIMIZERS)
    assert set(NO_TORCH) <= set(OPTIMIZERS) and not set(NO_TORCH) & set(ORACLES)


def test_oracle_grids_cover_every_option() -> None:
    """Each constructor argument of a rule is varied away from its default somewhere in its grid."""
    import inspect

    for name, oracle in ORACLES.items():
        sig = inspect.signature(OPTIMIZERS[name])
        options = [a for a in sig.parameters if a not in ("backend", "on_nonfinite", "clip_norm", "clip_value")]
        for arg in options:
            default = sig.parameters[arg].default
            assert any(h.get(arg, default) != default for h in oracle.grid), f"{name}: {arg} never varied"


def test_compiled_backend_is_available() -> None:
    """Says (as a skip) when the parity tests below could only check the NumPy reference path."""
    if not NUMBA:
        pytest.skip("numba is not installed: parity checked for the NumPy reference path only")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "h"), _cases())
def test_parity(name: str, h: dict[str, float] | None, dtype: type) -> None:
    if h is None:
        pytest.fail(f"optimizer {name!r} is registered but has no torch.optim oracle in ORACLES")
    _run_parity(name, h, dtype, RTOL[dtype], seed=20240601)


@pytest.mark.parametrize("name", WITH_TORCH)
def test_parity_complex128(name: str) -> None:
    """Complex parameters as pairs of reals, like torch's ``view_as_real`` handling.

    SGD, Momentum and Nesterov are linear in ``g`` and ``w`` (complex arithmetic
    with real coefficients is the pairs-of-reals arithmetic); AdaGrad, RMSprop
    and Adam square and root the real and imaginary parts separately in both
    libraries.  Weight decay is on, so the ``g + lambda*w`` term is complex too.
    """
    if name not in ORACLES:
        pytest.fail(f"optimizer {name!r} is registered but has no torch.optim oracle in ORACLES")
    h = {**ORACLES[name].grid[0], "weight_decay": 0.01}
    _run_parity(name, h, np.complex128, RTOL[np.float64], seed=7)


@pytest.mark.parametrize("name", WITH_TORCH)
def test_none_gradient_matches_torch_grad_none(name: str) -> None:
    """``None`` gradient == torch's ``grad=None``: parameter skipped, its state and step untouched.

    "b" gets ``None`` on a random ~40% of the steps, "late" gets no gradient for
    its first 15 steps (its state is created lazily, at its own step 1, in both
    libraries), "a" always has one.  Adam's bias correction uses each
    parameter's own step, so its parity depends on the per-parameter count.
    """
    if name not in ORACLES:
        pytest.fail(f"optimizer {name!r} is registered but has no torch.optim oracle in ORACLES")
    with _torch_default_dtype(ORACLES[name], np.float64):
        _none_gradient_run(name)


def _none_gradient_run(name: str) -> None:
    h = {**ORACLES[name].grid[0], "weight_decay": 0.01}
    opts = {b: OPTIMIZERS[name](**h, backend=b) for b in BACKENDS}
    rng = np.random.default_rng(11)
    shapes = {"a": (3, 4), "b": (5,), "late": ()}
    ours, theirs = _twins({k: np.asarray(rng.standard_normal(s)) for k, s in shapes.items()}, np.float64)
    topt = ORACLES[name].build(list(theirs.values()), h)
    check = _Checker(RTOL[np.float64])
    received = dict.fromkeys(shapes, 0)
    skipped_b = 0
    for step in range(1, N_STEPS + 1):
        grads: dict[str, np.ndarray | None] = {k: np.asarray(rng.standard_normal(s)) for k, s in shapes.items()}
        if rng.random() < 0.4:
            grads["b"] = None
            skipped_b += 1
        if step <= 15:
            grads["late"] = None
        skipped = [k for k, g in grads.items() if g is None]
        for b, opt in opts.items():
            before = {k: (ours[b][k].copy(), {s: np.copy(a) for s, a in opt.state.get(k, {}).items()}) for k in skipped}
            opt.update(ours[b], grads)
            _check_backend(opt, b, np.float64)
            for k, (p0, s0) in before.items():  # skipped: bit-for-bit untouched (not written), step count included
                np.testing.assert_array_equal(ours[b][k], p0, err_msg=f"[{b}] params[{k!r}] changed, grad None")
                assert opt.state.get(k, {}).keys() == s0.keys()
                for slot, a0 in s0.items():
                    np.testing.assert_array_equal(opt.state[k][slot], a0, err_msg=f"[{b}] state[{k!r}][{slot!r}]")
            if step <= 15:
                assert "late" not in opt.state, "a parameter that never had a gradient must have no state"
        for k, tp in theirs.items():
            tp.grad = None if grads[k] is None else torch.tensor(grads[k].copy(), dtype=torch.float64)
            received[k] += grads[k] is not None
        topt.step()
        for k, tp in theirs.items():
            expected = _torch_state(ORACLES[name], topt, tp, h)
            for b, opt in opts.items():
                check(f"[{b}] params[{k!r}]", ours[b][k], tp.detach().numpy(), f"at step {step}")
                for slot, want in expected.items():
                    if k not in opt.state:  # torch's Adagrad makes its (zero) state at construction; ours is lazy
                        assert not np.any(want) and int(topt.state[tp]["step"]) == 0, f"torch state[{k!r}]"
                        continue
                    check(f"[{b}] state[{k!r}][{slot!r}]", opt.state[k][slot], want, f"at step {step}")
    assert 0 < skipped_b < N_STEPS
    for k, tp in theirs.items():
        ts = topt.state[tp]
        if "step" in ts:
            assert int(ts["step"]) == received[k]
        for opt in opts.values():
            assert opt.state[k]["step"] == received[k]


def _propagate_cases() -> list:
    """Each oracle's first grid point, plus the AMSGrad points (a maximum meets NaN there)."""
    cases = []
    for name, oracle in ORACLES.items():
        points = [oracle.grid[0]] + [h for h in oracle.grid[1:] if h.get("amsgrad")]
        cases += [pytest.param(name, h, id=f"{name}-{i}") for i, h in enumerate(points)]
    return cases


@pytest.mark.parametrize(("name", "h"), _propagate_cases())
def test_propagate_matches_torch_with_nonfinite_gradients(name: str, h: dict[str, Any]) -> None:
    """``on_nonfinite="propagate"`` does what torch.optim does with NaN/inf gradients (it does not check).

    NaN, +inf and -inf go into single elements of three arrays at different
    steps; after every step the same elements of the parameters and the state
    as torch's are non-finite, and the finite ones equal torch's (at the usual
    tolerance), on both paths.  Whether a non-finite element is inf or NaN may
    differ: torch updates a moment as ``m.lerp_(g, 1 - beta1)`` = m + (1-b1)(g-m),
    which turns an infinite m into NaN (inf - inf) at the next step, where our
    b1 m + (1-b1) g keeps it infinite (docs/conventions.md).
    """
    with _torch_default_dtype(ORACLES[name], np.float64):
        _propagate_run(name, h)


def _propagate_run(name: str, h: dict[str, Any]) -> None:
    oracle = ORACLES[name]
    opts = {b: OPTIMIZERS[name](**h, on_nonfinite="propagate", backend=b) for b in BACKENDS}
    rng = np.random.default_rng(13)
    ours, theirs = _twins({k: _random(rng, shape, np.float64) for k, shape in SHAPES.items()}, np.float64)
    topt = oracle.build(list(theirs.values()), h)
    check = _Checker(RTOL[np.float64])
    poison = {2: ("vec", (3,), np.nan), 4: ("mat", (1, 2), np.inf), 5: ("cube", (0, 0, 0), -np.inf)}
    seen_nonfinite = False  # in our params or state at some step (Rprop's is overwritten the step after)
    for step in range(1, 9):
        grads = {k: np.asarray(_random(rng, SHAPES[k], np.float64)) for k in SHAPES}
        if step in poison:
            key, where, value = poison[step]
            grads[key][where] = value
        for b, opt in opts.items():
            opt.update(ours[b], grads)
            _check_backend(opt, b, np.float64)
        for k, tp in theirs.items():
            tp.grad = torch.tensor(grads[k].copy(), dtype=torch.float64)
        topt.step()
        for k, tp in theirs.items():
            pairs = [("params", ours[b][k], tp.detach().numpy(), b) for b in opts]
            pairs += [
                (f"state[{slot!r}]", opt.state[k][slot], want, b)
                for slot, want in _torch_state(oracle, topt, tp, h).items()
                for b, opt in opts.items()
            ]
            for what, actual, expected, b in pairs:
                label, when = f"[{b}] {what} of {k!r}", f"at step {step} ({name}, {h})"
                finite = np.isfinite(expected)
                np.testing.assert_array_equal(np.isfinite(actual), finite, err_msg=f"non-finite: {label} {when}")
                check(label, actual[finite], expected[finite], when)
                seen_nonfinite |= not finite.all()
    assert seen_nonfinite
