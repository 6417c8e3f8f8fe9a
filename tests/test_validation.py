"""The bad-input battery: every refused call names its culprit and changes nothing.

Issue 2, "Behaviour users must be able to trust".  Every test runs over every
optimizer of the registry (``npoptim.OPTIMIZERS``), so a new optimizer gets the
whole battery for free.  "Changes nothing" is checked bit for bit: every
parameter array, every per-key state array (after a couple of warm-up steps,
so the state is not all zeros), the per-key step numbers and the optimizer's
counters are compared with deep snapshots taken before the refused call.
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npoptim
from npoptim import NonFiniteGradientError, Optimizer
from npoptim.optimizers import fused
from numerics import assert_within, gamma

NAMES = list(npoptim.OPTIMIZERS)
#: Both ways ``update`` can run: the NumPy reference and, where numba works here, the compiled path.
BACKENDS = ["numpy"] + (["numba"] if fused.fast_path_possible() else [])
CLASSES = list(npoptim.OPTIMIZERS.values())

#: Hyperparameters that are rates and must lie in [0, 1).
RATE_ARGS = {"momentum", "decay_rate", "beta1", "beta2"}
#: Hyperparameters that must be finite and >= 0.
NONNEG_ARGS = {"lr", "eps", "weight_decay", "initial_accumulator_value", "lr_decay", "momentum_decay"}
NONNEG_ARGS |= {"lambd", "alpha", "t0"}  # ASGD
NONNEG_ARGS |= {"warmup_steps", "r", "weight_lr_power"}  # ScheduleFreeSGD, ScheduleFreeAdamW
#: Errors that ``update`` is documented to raise for bad input.
UPDATE_ERRORS = (KeyError, TypeError, ValueError)


def float_args(cls: type[Optimizer]) -> dict[str, float]:
    """The numeric keyword arguments of ``cls`` and their defaults, read from its signature."""
    sig = inspect.signature(cls)
    return {
        name: p.default
        for name, p in sig.parameters.items()
        if isinstance(p.default, (int, float)) and not isinstance(p.default, bool)
    }


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


# --- helpers ---------------------------------------------------------------------


def make_params(rng: np.random.Generator, dtype: Any = np.float64) -> dict[str, np.ndarray]:
    """Three parameters; the last key, ``gamma_last``, is the one the tests corrupt."""
    return {
        "W": rng.standard_normal((2, 3)).astype(dtype),
        "b": rng.standard_normal(3).astype(dtype),
        "gamma_last": rng.standard_normal((4,)).astype(dtype),
    }


def make_grads(rng: np.random.Generator, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: rng.standard_normal(p.shape).astype(p.dtype) for k, p in params.items()}


def make_opt(cls: type[Optimizer], backend: str, **overrides: Any) -> Optimizer:
    """An optimizer with a non-zero weight decay (exercises the decay path too)."""
    kwargs: dict[str, Any] = {"lr": 0.05, "weight_decay": 0.01, "backend": backend}
    kwargs.update(overrides)
    return cls(**kwargs)


def warmed_up(cls: type[Optimizer], backend: str, seed: int = 0, steps: int = 2, **overrides: Any):
    """(optimizer, params, rng) after ``steps`` good updates, so the state is non-trivial.

    The warm-up is checked to have run on the asked-for backend, so that the
    bad call that follows meets that backend's cached plan, not a fresh one.
    """
    rng = np.random.default_rng(seed)
    params = make_params(rng)
    opt = make_opt(cls, backend, **overrides)
    for _ in range(steps):
        opt.update(params, make_grads(rng, params))
    if cls._fused_kernel is not None:
        assert opt.last_update_backend == backend
    return opt, params, rng


def snapshot(opt: Optimizer, params: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of everything an update could change."""

    def copy(v: Any) -> Any:
        return v.copy() if isinstance(v, np.ndarray) else v

    return {
        "params": {k: copy(v) for k, v in params.items()},
        "param_ids": {k: id(v) for k, v in params.items()},
        "state": {k: {s: copy(v) for s, v in entry.items()} for k, entry in opt.state.items()},
        "step_count": opt.step_count,
        "skipped_steps": opt.skipped_steps,
        "hyperparameters": opt.hyperparameters,
    }


def assert_same_array(a: Any, b: Any, where: str) -> None:
    """Bit-for-bit equality: type, dtype, shape and raw bytes."""
    assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), where
    assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} != {b.dtype}"
    assert a.shape == b.shape, f"{where}: shape {a.shape} != {b.shape}"
    assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), f"{where}: values differ"
    assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), f"{where}: bits differ"


def assert_unchanged(before: dict[str, Any], opt: Optimizer, params: dict[str, Any]) -> None:
    """``opt`` and the original ``params`` arrays are exactly as in ``before``."""
    assert opt.step_count == before["step_count"]
    assert opt.skipped_steps == before["skipped_steps"]
    assert opt.hyperparameters == before["hyperparameters"]
    assert set(opt.state) == set(before["state"]), "state keys changed"
    for key, entry in before["state"].items():
        assert set(opt.state[key]) == set(entry), f"slots of {key!r} changed"
        for slot, value in entry.items():
            if isinstance(value, np.ndarray):
                assert_same_array(opt.state[key][slot], value, f"state[{key!r}][{slot!r}]")
            else:
                assert opt.state[key][slot] == value, f"state[{key!r}][{slot!r}] changed"
    for key, value in before["params"].items():
        if isinstance(value, np.ndarray):
            assert_same_array(params[key], value, f"params[{key!r}]")


def assert_names(exc: BaseException, *parts: str) -> None:
    msg = str(exc)
    for part in parts:
        assert part in msg, f"message {msg!r} does not name {part!r}"


def refuse(opt: Optimizer, params: dict[str, Any], bad_params: Any, bad_grads: Any, error: Any) -> BaseException:
    """Call update with bad input; assert it raises ``error`` and changes nothing."""
    before = snapshot(opt, params)
    with pytest.raises(error) as info:
        opt.update(bad_params, bad_grads)
    assert_unchanged(before, opt, params)
    return info.value


# --- construction ----------------------------------------------------------------


def test_registry_covers_the_six_rules():
    assert {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"} <= set(NAMES)


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_every_numeric_argument_is_classified(cls):
    """A new hyperparameter must be added to RATE_ARGS or NONNEG_ARGS so the battery covers it."""
    args = set(float_args(cls))
    assert {"lr", "weight_decay"} <= args
    assert args <= RATE_ARGS | NONNEG_ARGS, f"unclassified arguments {args - RATE_ARGS - NONNEG_ARGS}"


def _bad_value_cases():
    for name, cls in npoptim.OPTIMIZERS.items():
        for arg in float_args(cls):
            bad = [-1e-3, -math.inf, math.inf, math.nan]
            if arg in RATE_ARGS:
                bad += [1.0, 1.5, -0.1]
            for value in bad:
                yield pytest.param(cls, arg, value, id=f"{name}-{arg}={value}")


@pytest.mark.parametrize("cls, arg, value", list(_bad_value_cases()))
def test_constructor_rejects_out_of_range_value(cls, arg, value):
    with pytest.raises(ValueError) as info:
        cls(**{arg: value})
    assert_names(info.value, arg, repr(float(value)))


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_constructor_accepts_the_boundaries(cls):
    """0 is allowed for every argument; rates may come arbitrarily close to 1."""
    for arg in float_args(cls):
        opt = cls(**{arg: 0.0})
        assert getattr(opt, arg) == 0.0
        if arg in RATE_ARGS:
            assert getattr(cls(**{arg: 0.999999}), arg) == 0.999999
    opt = cls(lr=np.float32(0.25))  # numpy scalars are real numbers
    assert opt.lr == 0.25 and type(opt.hyperparameters["lr"]) is float


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
@pytest.mark.parametrize("value", [True, False, "0.1", None, [0.1], np.array([0.1, 0.2]), 1 + 1j])
def test_constructor_rejects_non_number_lr(cls, value):
    with pytest.raises(TypeError) as info:
        cls(lr=value)
    assert_names(info.value, "lr")


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_constructor_rejects_unknown_keywords(cls):
    own = set(inspect.signature(cls).parameters)
    foreign = {"learning_rate", "betas", "rho", "alpha", "nesterov"} - own  # ASGD's own alpha is torch's name
    for other in CLASSES:  # e.g. SGD(lr=..., momentum=0.9), Adam(decay_rate=...)
        foreign |= set(inspect.signature(other).parameters) - own
    for word in sorted(foreign):
        with pytest.raises(TypeError) as info:
            cls(lr=0.1, **{word: 0.5})
        assert_names(info.value, word)


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_constructor_refuses_positional_arguments(cls):
    with pytest.raises(TypeError):
        cls(0.1)
    params = [p for p in inspect.signature(cls).parameters.values()]
    assert params and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_constructor_rejects_unknown_nonfinite_policy(cls):
    with pytest.raises(ValueError) as info:
        cls(on_nonfinite="ignore")
    assert_names(info.value, "on_nonfinite", "'ignore'")


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_setting_bad_hyperparameter_after_construction_is_refused(cls):
    opt = make_opt(cls, "auto")
    for arg in float_args(cls):
        old = getattr(opt, arg)
        hyper = opt.hyperparameters
        for value, error in [(-1.0, ValueError), (math.nan, ValueError), ("x", TypeError), (True, TypeError)]:
            with pytest.raises(error) as info:
                setattr(opt, arg, value)
            assert_names(info.value, arg)
            assert getattr(opt, arg) == old
            assert opt.hyperparameters == hyper
    with pytest.raises(ValueError) as info:
        opt.lr = -1
    assert_names(info.value, "lr", "-1")
    assert opt.lr == 0.05
    opt.lr = 0.5  # a good value is taken (hand-made schedules)
    assert opt.lr == 0.5 and opt.hyperparameters["lr"] == 0.5


# --- update: keys, shapes, types ----------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_missing_gradient_key_is_named(cls, backend):
    opt, params, rng = warmed_up(cls, backend)
    grads = make_grads(rng, params)
    del grads["gamma_last"]
    exc = refuse(opt, params, params, grads, KeyError)
    assert_names(exc, "'gamma_last'")


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_extra_gradient_key_is_named(cls, backend):
    opt, params, rng = warmed_up(cls, backend)
    grads = make_grads(rng, params)
    grads["stray_key"] = np.ones(3)
    exc = refuse(opt, params, params, grads, KeyError)
    assert_names(exc, "'stray_key'")


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_shape_mismatch_names_key_and_both_shapes(cls, backend):
    opt, params, rng = warmed_up(cls, backend)
    grads = {**make_grads(rng, params), "gamma_last": np.ones((4, 1))}
    exc = refuse(opt, params, params, grads, ValueError)
    assert_names(exc, "gamma_last", "(4,)", "(4, 1)")


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
@pytest.mark.parametrize("bad", [[1.0, 2.0, 3.0, 4.0], 1.5, (1.0, 2.0, 3.0, 4.0)], ids=["list", "float", "tuple"])
def test_param_that_is_not_an_array_is_refused(cls, bad, backend):
    opt, params, rng = warmed_up(cls, backend)
    grads = make_grads(rng, params)
    bad_params = {**params, "gamma_last": bad}
    grads["gamma_last"] = np.ones(4) if not isinstance(bad, float) else np.ones(())
    exc = refuse(opt, params, bad_params, grads, TypeError)
    assert_names(exc, "gamma_last", type(bad).__name__)


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_read_only_param_is_refused(cls, backend):
    opt, params, rng = warmed_up(cls, backend)
    grads = make_grads(rng, params)
    params["gamma_last"].flags.writeable = False
    exc = refuse(opt, params, params, grads, ValueError)
    assert_names(exc, "gamma_last", "writeable")


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint16, np.bool_])
def test_integer_or_bool_param_is_refused(cls, dtype, backend):
    opt, params, rng = warmed_up(cls, backend)
    grads = make_grads(rng, params)
    bad_params = {**params, "gamma_last": np.ones(4, dtype=dtype)}
    exc = refuse(opt, params, bad_params, grads, TypeError)
    assert_names(exc, "gamma_last", np.dtype(dtype).name)


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
@pytest.mark.parametrize(
    "bad",
    [
        np.ones(4, dtype=np.int64),
        np.ones(4, dtype=np.bool_),
        np.ones(4, dtype=np.complex128),
        np.array(["a", "b", "c", "d"]),
        np.array([1.0, 2.0, 3.0, 4.0], dtype=object),
        [1.0, 2.0, 3.0, 4.0],
        1.0,
    ],
    ids=["int64", "bool", "complex-for-real", "str", "object", "list", "float"],
)
def test_bad_gradient_type_is_refused(cls, bad, backend):
    opt, params, rng = warmed_up(cls, backend)
    grads = {**make_grads(rng, params), "gamma_last": bad}
    exc = refuse(opt, params, params, grads, TypeError)
    culprit = str(bad.dtype) if isinstance(bad, np.ndarray) else type(bad).__name__
    assert_names(exc, "gamma_last", culprit)


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
@pytest.mark.parametrize("mapping", ["params", "grads"])
def test_arguments_that_are_not_mappings_are_refused(cls, mapping, backend):
    opt, params, rng = warmed_up(cls, backend)
    grads = make_grads(rng, params)
    args = {"params": params, "grads": grads}
    args[mapping] = list(args[mapping].values())
    exc = refuse(opt, params, args["params"], args["grads"], TypeError)
    assert_names(exc, mapping)


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_non_string_key_is_refused(cls, backend):
    opt, params, rng = warmed_up(cls, backend)
    grads = make_grads(rng, params)
    bad_params, bad_grads = {**params, 7: np.ones(2)}, {**grads, 7: np.ones(2)}
    exc = refuse(opt, params, bad_params, bad_grads, TypeError)
    assert_names(exc, "7")


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_same_array_under_two_keys_is_refused(cls, backend):
    opt, params, rng = warmed_up(cls, backend)
    grads = make_grads(rng, params)
    bad_params = {**params, "W_alias": params["W"]}
    bad_grads = {**grads, "W_alias": np.ones((2, 3))}
    exc = refuse(opt, params, bad_params, bad_grads, ValueError)
    assert_names(exc, "'W'", "'W_alias'")


# --- update: the state no longer fits the array ----------------------------------------


STATEFUL = [c for c in CLASSES if c.slots]


@pytest.mark.parametrize("cls", STATEFUL, ids=[c.__name__ for c in STATEFUL])
@pytest.mark.parametrize(
    "new", [np.zeros((5,)), np.zeros((4, 1)), np.zeros(4, dtype=np.float32)], ids=["(5,)", "(4,1)", "float32"]
)
def test_array_changed_since_its_state_was_made(cls, new, backend):
    opt, params, rng = warmed_up(cls, backend)
    bad_params = {**params, "gamma_last": new}
    grads = {**make_grads(rng, params), "gamma_last": np.ones(new.shape, dtype=new.dtype)}
    exc = refuse(opt, params, bad_params, grads, ValueError)
    assert_names(exc, "gamma_last")
    if new.shape != (4,):
        assert_names(exc, str(list(new.shape)), "[4]")
    else:
        assert_names(exc, "float32", "float64")


@pytest.mark.parametrize("cls", STATEFUL, ids=[c.__name__ for c in STATEFUL])
def test_array_reshaped_in_place_since_its_state_was_made(cls, backend):
    """The same array object, given a new shape in place (``a.shape = ...``), no longer fits its state."""
    opt, params, rng = warmed_up(cls, backend)
    params["gamma_last"].shape = (2, 2)
    grads = {**make_grads(rng, params), "gamma_last": np.ones((2, 2))}
    exc = refuse(opt, params, params, grads, ValueError)
    assert_names(exc, "gamma_last", "[2, 2]", "[4]")


@pytest.mark.parametrize("cls", [c for c in CLASSES if not c.slots], ids=[c.__name__ for c in CLASSES if not c.slots])
def test_stateless_rule_follows_an_array_that_changed_shape(cls, backend):
    """With no state arrays there is nothing that could be stale: the update is just w - lr*g."""
    opt, params, rng = warmed_up(cls, backend, weight_decay=0.0)
    params["gamma_last"] = np.ones(5)
    grads = {**make_grads(rng, params), "gamma_last": np.full(5, 2.0)}
    opt.update(params, grads)
    np.testing.assert_array_equal(params["gamma_last"], 1.0 - 0.05 * 2.0)  # bit-exact: the same two operations


# --- update: non-finite gradients ----------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_gradient_raises_naming_key_and_step(cls, value, backend):
    opt, params, rng = warmed_up(cls, backend, steps=2)
    grads = make_grads(rng, params)
    grads["gamma_last"][2] = value
    exc = refuse(opt, params, params, grads, NonFiniteGradientError)
    assert isinstance(exc, ValueError)
    assert exc.keys == ["gamma_last"] and exc.step == 3
    assert_names(exc, "gamma_last", "3")
    assert re.search(r"\bstep 3\b", str(exc)), str(exc)


def test_nonfinite_error_is_a_value_error():
    assert issubclass(NonFiniteGradientError, ValueError)


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_float64_gradient_overflowing_float16_is_reported(cls, backend):
    """7e4 is finite in float64 but inf once cast to a float16 parameter's dtype (max 65504)."""
    rng = np.random.default_rng(1)
    params = make_params(rng, np.float16)
    opt = make_opt(cls, backend)
    opt.update(params, make_grads(rng, params))
    grads = make_grads(rng, params)
    grads["gamma_last"] = np.array([0.5, 7e4, 1.0, 1.0])  # float64
    with np.errstate(over="ignore"):
        exc = refuse(opt, params, params, grads, NonFiniteGradientError)
    assert_names(exc, "gamma_last")


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_skip_policy_skips_the_whole_step(cls, backend):
    opt, params, rng = warmed_up(cls, backend, on_nonfinite="skip")
    twin, twin_params, _ = warmed_up(cls, backend, on_nonfinite="skip")
    before = snapshot(opt, params)
    grads = make_grads(rng, params)
    grads["gamma_last"][0] = np.nan
    grads["W"][1, 1] = np.inf
    opt.update(params, grads)  # no error
    assert opt.skipped_steps == 1 and opt.step_count == 2
    before["skipped_steps"] = 1
    assert_unchanged(before, opt, params)
    # the next finite step is exactly the step of an optimizer that never saw the bad one
    good = make_grads(np.random.default_rng(99), params)
    opt.update(params, {k: v.copy() for k, v in good.items()})
    twin.update(twin_params, {k: v.copy() for k, v in good.items()})
    assert opt.step_count == twin.step_count == 3
    twin_snap = snapshot(twin, twin_params)
    twin_snap["skipped_steps"] = 1
    assert_unchanged(twin_snap, opt, params)


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_skipped_first_step_leaves_a_fresh_optimizer(cls, backend):
    """A skipped first step creates no state: the run equals one that never saw it."""
    rng = np.random.default_rng(5)
    params = make_params(rng)
    twin_params = {k: v.copy() for k, v in params.items()}
    opt, twin = make_opt(cls, backend, on_nonfinite="skip"), make_opt(cls, backend, on_nonfinite="skip")
    bad = make_grads(rng, params)
    bad["b"][0] = np.nan
    opt.update(params, bad)
    assert opt.state == {} and opt.step_count == 0 and opt.skipped_steps == 1
    for _ in range(3):
        g = make_grads(rng, params)
        opt.update(params, g)
        twin.update(twin_params, g)
    snap = snapshot(twin, twin_params)
    snap["skipped_steps"] = 1
    assert_unchanged(snap, opt, params)


# --- update: None gradients and new keys ------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_none_gradient_leaves_param_and_state_untouched(cls, backend):
    opt, params, rng = warmed_up(cls, backend)
    solo = make_opt(cls, backend)  # an optimizer that only ever sees W, fed the same gradients
    solo_W = {"W": params["W"].copy()}
    solo.load_state_dict({**opt.state_dict(), "state": {"W": opt.state_dict()["state"]["W"]}})
    before = snapshot(opt, params)
    grads = make_grads(rng, params)
    grads["b"] = None
    grads["gamma_last"] = None
    opt.update(params, grads)
    solo.update(solo_W, {"W": grads["W"]})
    assert opt.step_count == before["step_count"] + 1
    for key in ("b", "gamma_last"):
        assert_same_array(params[key], before["params"][key], key)
        assert opt.state[key]["step"] == before["state"][key]["step"]
        for slot in cls.slots:
            assert_same_array(opt.state[key][slot], before["state"][key][slot], f"{key}.{slot}")
    assert opt.state["W"]["step"] == before["state"]["W"]["step"] + 1
    assert_same_array(params["W"], solo_W["W"], "W")
    for slot in cls.slots:
        assert_same_array(opt.state["W"][slot], solo.state["W"][slot], f"W.{slot}")


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_all_gradients_none_changes_nothing(cls, backend):
    opt, params, _ = warmed_up(cls, backend)
    before = snapshot(opt, params)
    opt.update(params, dict.fromkeys(params))
    assert_unchanged(before, opt, params)


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_new_key_gets_fresh_state(cls, backend):
    if getattr(cls, "_per_call_state", False):
        pytest.skip(f"{cls.__name__} averages with weights of the whole call, not the key's: a late key joins "
                    "them (the reference's group-level k); tests/test_schedule_free.py checks it against the reference")
    opt, params, rng = warmed_up(cls, backend, steps=5)
    params["late"] = rng.standard_normal(3)
    grads = make_grads(rng, params)
    fresh = make_opt(cls, backend)
    fresh_late = {"late": params["late"].copy()}
    opt.update(params, grads)
    fresh.update(fresh_late, {"late": grads["late"]})
    assert opt.state["late"]["step"] == 1 and opt.state["W"]["step"] == 6
    assert_same_array(params["late"], fresh_late["late"], "late")
    for slot in cls.slots:
        assert_same_array(opt.state["late"][slot], fresh.state["late"][slot], f"late.{slot}")


def test_adam_first_step_of_a_late_key_is_lr_times_sign():
    """For t = 1, m_hat = g and v_hat = g*g, so with eps = 0 the step is lr*g/|g| = lr*sign(g)
    (Kingma & Ba 2015, Alg. 1).  A late key must use its own t = 1, not the optimizer's step 6."""
    rng = np.random.default_rng(3)
    params = {"W": rng.standard_normal(4)}
    opt = npoptim.Adam(lr=0.01, beta1=0.9, beta2=0.999, eps=0.0)
    for _ in range(5):
        opt.update(params, {"W": rng.standard_normal(4)})
    params["late"] = rng.standard_normal(6)
    start = params["late"].copy()
    g = rng.standard_normal(6) * np.array([1e-3, 1.0, 1e3, -1e-3, -1.0, -1e3])
    opt.update(params, {"W": rng.standard_normal(4), "late": g})
    # the step (lr / (1 - b1)) * (m / (sqrt(v) / sqrt(1 - b2) + 0)) = lr sign(g) up to ~8 roundings of 0.01,
    # then w - step rounds once (u |w|); the expected side rounds once too
    expected = start - 0.01 * np.sign(g)
    assert_within(params["late"], expected, gamma(2) * np.abs(expected) + gamma(8) * 0.01, "late key's first step")
    assert opt.state["late"]["step"] == 1


# --- update: gradients are never touched; dtypes -------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_gradients_are_never_modified_nor_aliased(cls, dtype, weight_decay, backend):
    rng = np.random.default_rng(7)
    params = make_params(rng, dtype)
    opt = make_opt(cls, backend, weight_decay=weight_decay)
    for _ in range(3):
        grads = make_grads(rng, params)
        if np.dtype(dtype).kind == "c":
            grads = {k: (g + 1j * rng.standard_normal(g.shape)).astype(dtype) for k, g in grads.items()}
        kept = {k: g.copy() for k, g in grads.items()}
        opt.update(params, grads)
        for k in grads:
            assert_same_array(grads[k], kept[k], f"grads[{k!r}]")
    # writing into the caller's gradient afterwards must not reach the optimizer
    before = snapshot(opt, params)
    for g in grads.values():
        g[...] = 123
    assert_unchanged(before, opt, params)


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.complex64, np.complex128])
def test_param_and_state_keep_the_param_dtype(cls, dtype, backend):
    rng = np.random.default_rng(8)
    params = make_params(rng, dtype)
    opt = make_opt(cls, backend)
    wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64  # often another dtype than the param's
    for _ in range(3):
        scale = 1 - 0.5j if wide is np.complex128 else 1
        grads = {k: (g * scale).astype(wide) for k, g in make_grads(rng, params).items()}
        opt.update(params, grads)
    for key, p in params.items():
        assert p.dtype == dtype
        assert np.isfinite(p).all()
        for slot in cls.slots:
            assert opt.state[key][slot].dtype == dtype, (key, slot)
            assert opt.state[key][slot].shape == p.shape
        sd_entry = opt.state_dict()["state"][key]
        assert all(sd_entry[slot].dtype == dtype for slot in cls.slots)


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_float32_gradient_for_float64_param_is_computed_in_float64(cls, backend):
    """Casting the float32 gradient to float64 first gives bit-identical results; computing in
    float32 would not (the update of a random float64 value rounded to float32 differs)."""
    rng = np.random.default_rng(9)
    params = make_params(rng)
    twin = {k: v.copy() for k, v in params.items()}
    opt, ref = make_opt(cls, backend), make_opt(cls, backend)
    for _ in range(4):
        g32 = {k: rng.standard_normal(p.shape).astype(np.float32) for k, p in params.items()}
        opt.update(params, g32)
        ref.update(twin, {k: g.astype(np.float64) for k, g in g32.items()})
    for k in params:
        assert params[k].dtype == np.float64
        assert_same_array(params[k], twin[k], k)


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_complex_param_equals_real_rule_on_real_and_imaginary_parts(cls, backend):
    """Complex parameters follow the view-as-real convention (torch.view_as_real): each
    element-wise rule applies to real and imaginary parts as two independent real numbers."""
    rng = np.random.default_rng(10)
    z = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    params = {"z": z}
    real = {"re": z.real.copy(), "im": z.imag.copy()}
    opt, opt_real = make_opt(cls, backend), make_opt(cls, backend)
    for _ in range(5):
        g = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
        opt.update(params, {"z": g})
        opt_real.update(real, {"re": g.real.copy(), "im": g.imag.copy()})
    # bit-exact: the rule runs on the interleaved-real view of z, the same element-wise operations on the
    # same values as on the two real arrays (and the compiled path is the reference's bits, test_fused.py)
    np.testing.assert_array_equal(params["z"].real, real["re"])
    np.testing.assert_array_equal(params["z"].imag, real["im"])
    assert params["z"] is z and z.dtype == np.complex128


# --- hypothesis: random corruptions never change anything ----------------------------------------

CORRUPTIONS = [
    "drop_grad",
    "drop_param",
    "extra_grad",
    "grad_shape",
    "grad_int",
    "grad_bool",
    "grad_complex",
    "grad_object",
    "grad_list",
    "grad_scalar",
    "nonfinite",
    "param_list",
    "param_int",
    "param_readonly",
    "param_resized",
    "param_dtype",
    "alias",
    "int_key",
]


@st.composite
def corrupted_calls(draw):
    name = draw(st.sampled_from(NAMES))
    corruption = draw(st.sampled_from(CORRUPTIONS))
    if not npoptim.OPTIMIZERS[name].slots:  # stateless rules have no state that could go stale
        corruption = draw(st.sampled_from([c for c in CORRUPTIONS if c not in ("param_resized", "param_dtype")]))
    return {
        "name": name,
        "backend": draw(st.sampled_from(BACKENDS)),
        "corruption": corruption,
        "seed": draw(st.integers(0, 2**32 - 1)),
        "warmup": draw(st.integers(1, 3)),
        "weight_decay": draw(st.sampled_from([0.0, 0.05])),
        "dtype": draw(st.sampled_from([np.float32, np.float64])),
        "position": draw(st.integers(0, 3)),
        "victim": draw(st.integers(0, 3)),
        "bad_value": draw(st.sampled_from([np.nan, np.inf, -np.inf])),
        "flat_index": draw(st.integers(0, 10**6)),
    }


def _reorder(d: dict, key: Any, position: int) -> dict:
    """``d`` with ``key`` moved to ``position`` in iteration order."""
    if key not in d:
        return d
    items = [(k, v) for k, v in d.items() if k != key]
    items.insert(min(position, len(items)), (key, d[key]))
    return dict(items)


def _setup(call: dict[str, Any]) -> tuple[Optimizer, dict[str, np.ndarray], np.random.Generator]:
    cls = npoptim.OPTIMIZERS[call["name"]]
    rng = np.random.default_rng(call["seed"])
    dtype = call["dtype"]
    params = {
        "W": rng.standard_normal((3, 2)).astype(dtype),
        "b": rng.standard_normal(2).astype(dtype),
        "s": rng.standard_normal(()).astype(dtype),
        "v": rng.standard_normal(5).astype(dtype),
    }
    opt = cls(lr=0.03, weight_decay=call["weight_decay"], backend=call["backend"])
    for _ in range(call["warmup"]):
        opt.update(params, make_grads(rng, params))
    return opt, params, rng


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=corrupted_calls())
def test_random_bad_input_never_changes_anything(call):
    opt, params, rng = _setup(call)
    twin, twin_params, _ = _setup(call)
    dtype = call["dtype"]
    keys = list(params)
    victim = keys[call["victim"] % len(keys)]
    p = params[victim]
    bad_p: dict[Any, Any] = dict(params)
    bad_g: dict[Any, Any] = make_grads(rng, params)
    moved = victim
    c = call["corruption"]
    if c == "drop_grad":
        del bad_g[victim]
    elif c == "drop_param":
        del bad_p[victim]
    elif c == "extra_grad":
        moved = "zz_extra"
        bad_g[moved] = np.ones(2, dtype=dtype)
    elif c == "grad_shape":
        bad_g[victim] = np.ones(p.shape + (2,), dtype=dtype)
    elif c == "grad_int":
        bad_g[victim] = np.ones(p.shape, dtype=np.int32)
    elif c == "grad_bool":
        bad_g[victim] = np.ones(p.shape, dtype=bool)
    elif c == "grad_complex":
        bad_g[victim] = np.ones(p.shape, dtype=np.complex128)
    elif c == "grad_object":
        bad_g[victim] = np.ones(p.shape, dtype=object)
    elif c == "grad_list":
        bad_g[victim] = np.ones(p.shape).tolist()
    elif c == "grad_scalar":
        bad_g[victim] = 1.0
    elif c == "nonfinite":
        g = bad_g[victim]
        g.reshape(-1)[call["flat_index"] % g.size] = call["bad_value"]
    elif c == "param_list":
        bad_p[victim] = p.tolist()
    elif c == "param_int":
        bad_p[victim] = np.ones(p.shape, dtype=np.int64)
    elif c == "param_readonly":
        ro = p.copy()
        ro.flags.writeable = False
        bad_p[victim] = ro
    elif c == "param_resized":
        bad_p[victim] = np.ones(p.shape + (1,), dtype=dtype)
        bad_g[victim] = np.ones(p.shape + (1,), dtype=dtype)
    elif c == "param_dtype":
        other = np.float64 if dtype == np.float32 else np.float32
        bad_p[victim] = p.astype(other)
        bad_g[victim] = bad_g[victim].astype(other)
    elif c == "alias":
        moved = "zz_alias"
        bad_p[moved] = p
        bad_g[moved] = np.ones(p.shape, dtype=dtype)
    elif c == "int_key":
        moved = 0
        bad_p[moved] = np.ones(2, dtype=dtype)
        bad_g[moved] = np.ones(2, dtype=dtype)
    bad_p = _reorder(bad_p, moved, call["position"])
    bad_g = _reorder(bad_g, moved, call["position"])
    grads_before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in bad_g.items()}
    before = snapshot(opt, params)
    with pytest.raises(UPDATE_ERRORS) as info:
        opt.update(bad_p, bad_g)
    assert_unchanged(before, opt, params)
    if c == "nonfinite":
        assert isinstance(info.value, NonFiniteGradientError)
    if c not in ("alias", "int_key", "extra_grad"):
        assert repr(victim) in str(info.value), str(info.value)
    for k, v in grads_before.items():  # the caller's gradients are untouched too
        if isinstance(v, np.ndarray):
            assert_same_array(bad_g[k], v, f"grads[{k!r}]")
    # and the optimizer still works afterwards, exactly as if the bad call never happened
    good = make_grads(np.random.default_rng(call["seed"] + 1), params)
    opt.update(params, good)
    twin.update(twin_params, {k: g.copy() for k, g in good.items()})
    assert_unchanged(snapshot(twin, twin_params), opt, params)


def test_select_optimizers_defaults_all_and_refusals():
    from npoptim import ALL_OPTIMIZERS, BOOK_OPTIMIZERS, select_optimizers

    assert select_optimizers(None) == list(BOOK_OPTIMIZERS)
    assert select_optimizers("all") == list(ALL_OPTIMIZERS) == select_optimizers(["ALL"])
    assert select_optimizers(["Adam", "sgd"]) == ["adam", "sgd"]
    with pytest.raises(ValueError, match="'adamm'"):
        select_optimizers(["adamm"])
    with pytest.raises(ValueError, match="listed twice: adam"):
        select_optimizers(["adam", "ADAM"])
    with pytest.raises(ValueError, match="no optimizer selected"):
        select_optimizers([])


@pytest.mark.parametrize("name", NAMES)
def test_overlapping_views_are_refused_and_nothing_changes(name, backend):
    """Two keys viewing one buffer would be updated twice per step: refused, naming both keys."""
    buf = np.arange(1.0, 11.0)
    params = {"a": buf[:6], "b": buf[4:]}
    before = buf.copy()
    opt = npoptim.OPTIMIZERS[name](backend=backend)
    with pytest.raises(ValueError, match=r"params\['b'\] shares memory with params\['a'\]"):
        opt.update(params, {"a": np.ones(6), "b": np.ones(6)})
    assert np.array_equal(buf, before) and opt.state == {} and opt.step_count == 0
    # interleaved views of one buffer do not share an element: they are accepted
    ok = {"even": buf[::2], "odd": buf[1::2]}
    opt.update(ok, {"even": np.ones(5), "odd": np.ones(5)})
    assert opt.step_count == 1


@pytest.mark.parametrize("name", NAMES)
def test_a_typo_in_an_attribute_name_is_an_error(name):
    opt = npoptim.OPTIMIZERS[name]()
    with pytest.raises(AttributeError, match="no attribute 'learning_rate'.*lr"):
        opt.learning_rate = 0.1
    assert not hasattr(opt, "learning_rate")
    opt.lr = 0.5  # the real name still works, validated
    assert opt.hyperparameters["lr"] == 0.5


def test_numpy_scalar_gradient_for_a_0d_parameter():
    """``2.0 * w`` of a 0-d array is a NumPy scalar; it is the gradient of that 0-d parameter."""
    from npoptim import SGD

    w = np.array(1.5)
    g = 2.0 * w
    assert isinstance(g, np.float64) and not isinstance(g, np.ndarray)
    SGD(lr=0.25).update({"w": w}, {"w": g})
    assert w == 1.5 - 0.25 * 3.0  # exact: dyadic values
    with pytest.raises(TypeError, match="must be a np.ndarray or None"):
        SGD().update({"v": np.zeros(2)}, {"v": np.float64(1.0)})
