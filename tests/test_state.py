"""State dicts and checkpoint files: plain data, checked on load, copied, atomic, resumable.

Issue 2: ``state_dict`` / ``load_state_dict`` / ``optimizer_from_state_dict``,
``save_checkpoint`` / ``load_checkpoint``, and bit-identical resume.  Every test
runs over every optimizer of the registry (``npoptim.OPTIMIZERS``).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import npoptim
from npoptim import CheckpointError, Optimizer, StateDictError, load_checkpoint, save_checkpoint

ckpt_module = importlib.import_module("npoptim.checkpoint")
fused = importlib.import_module("npoptim.optimizers.fused")

NAMES = list(npoptim.OPTIMIZERS)
CLASSES = list(npoptim.OPTIMIZERS.values())
RATE_ARGS = {"momentum", "decay_rate", "beta1", "beta2"}


def custom_hyperparameters(cls: type[Optimizer]) -> dict[str, Any]:
    """Non-default values for every argument of ``cls`` (so a loader that ignores them is caught)."""
    out: dict[str, Any] = {}
    for name in inspect.signature(cls).parameters:
        if name == "backend":  # how steps are computed, not a hyperparameter
            continue
        if name == "on_nonfinite":
            out[name] = "skip"
        elif name in RATE_ARGS:
            out[name] = 0.75
        elif name == "weight_decay":
            out[name] = 0.02
        elif name == "eps":
            out[name] = 1e-6
        elif name == "lr":
            out[name] = 0.03
        elif name in ("amsgrad", "centered"):
            out[name] = True
        elif name in ("initial_accumulator_value", "lr_decay", "momentum_decay", "lambd"):
            out[name] = 0.05
        elif name == "alpha":  # ASGD
            out[name] = 0.5
        elif name == "t0":  # ASGD
            out[name] = 2.0
        elif name == "warmup_steps":  # schedule-free
            out[name] = 2
        elif name in ("r", "weight_lr_power"):  # schedule-free
            out[name] = 0.5
        elif name == "etas":  # Rprop; a pair is a list in a state dict (as JSON has it), a tuple on the optimizer
            out[name] = [0.4, 1.3]
        elif name == "step_sizes":  # Rprop
            out[name] = [1e-5, 5.0]
        elif name == "clip_norm":
            out[name] = 2.5
        elif name == "clip_value":
            out[name] = 1.5
        else:  # pragma: no cover - a new argument must be given a value here
            raise AssertionError(f"no test value for {cls.__name__}({name}=...)")
    return out


def make_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "layer/1.W": rng.standard_normal((3, 4)),
        "b32": rng.standard_normal(4).astype(np.float32),
        "h16": rng.standard_normal((2, 2)).astype(np.float16),
        "scalar": np.array(0.5),
    }


def grads_for(rng: np.random.Generator, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: rng.standard_normal(p.shape).astype(p.dtype) for k, p in params.items()}


def trained(
    cls: type[Optimizer], steps: int = 3, seed: int = 0, defaults: bool = False
) -> tuple[Optimizer, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    params = make_params(rng)
    opt = cls() if defaults else cls(**custom_hyperparameters(cls))
    for _ in range(steps):
        opt.update(params, grads_for(rng, params))
    return opt, params


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Recursive bit-for-bit equality of plain data (dict/list/scalars/arrays).

    Bit equality is the claim wherever it is used here: a round trip copies bytes, and an interrupted run
    repeats the uninterrupted run's element-wise operations on the same values (the compiled path gives
    the NumPy reference's bits, test_fused.py); no reduction, BLAS call or transcendental is compared.
    """
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), f"{where}: bits differ"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


def full_snapshot(opt: Optimizer) -> dict[str, Any]:
    """Everything about an optimizer, read from its attributes (not from state_dict)."""
    return {
        "hyper": opt.hyperparameters,
        "attrs": {k: getattr(opt, k) for k in opt.hyperparameters},
        "step_count": opt.step_count,
        "skipped_steps": opt.skipped_steps,
        "state": copy.deepcopy(opt.state),
    }


def assert_plain(value: Any, where: str = "state_dict") -> None:
    """Only dict (with str keys), list, str, int, float and np.ndarray, by exact type."""
    t = type(value)
    if t is dict:
        for k, v in value.items():
            assert type(k) is str, f"{where}: key {k!r} is {type(k).__name__}"
            assert_plain(v, f"{where}[{k!r}]")
    elif t is list:
        for i, v in enumerate(value):
            assert_plain(v, f"{where}[{i}]")
    elif t is np.ndarray:
        assert value.dtype.kind in "fc", f"{where}: array of dtype {value.dtype}"
    else:
        assert t in (str, int, float, bool, type(None)), f"{where}: {value!r} is a {t.__name__}"


# --- state_dict ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_state_dict_is_plain_data_with_everything(cls):
    opt, params = trained(cls, steps=3)
    opt.update(params, {**grads_for(np.random.default_rng(1), params), "b32": None})
    sd = opt.state_dict()
    assert_plain(sd)
    assert sd["optimizer"] == cls.__name__
    assert type(sd["version"]) is int
    assert sd["hyperparameters"] == custom_hyperparameters(cls)
    assert sd["step_count"] == 4 and sd["skipped_steps"] == 0
    assert set(sd["state"]) == set(params)
    for key, entry in sd["state"].items():
        assert entry["step"] == (3 if key == "b32" else 4)
        assert set(entry) == {"step", *opt.slots}
        for slot in opt.slots:
            assert entry[slot].shape == params[key].shape and entry[slot].dtype == params[key].dtype
            assert_same(entry[slot], opt.state[key][slot], f"{key}.{slot}")


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_state_dict_returns_copies(cls):
    opt, params = trained(cls)
    twin, twin_params = trained(cls)
    sd = opt.state_dict()
    for entry in sd["state"].values():
        entry["step"] = 99
        for slot in cls.slots:
            assert not np.shares_memory(entry[slot], opt.state[next(iter(opt.state))][slot])
            entry[slot][...] = 1e4
    sd["hyperparameters"]["lr"] = 123.0
    sd["step_count"] = 77
    assert_same(full_snapshot(opt), full_snapshot(twin))
    g = grads_for(np.random.default_rng(5), params)
    opt.update(params, g)
    twin.update(twin_params, g)
    assert_same(params, twin_params)
    assert_same(opt.state_dict(), twin.state_dict())


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_load_state_dict_copies(cls):
    source, params = trained(cls)
    sd = source.state_dict()
    kept = copy.deepcopy(sd)
    opt = cls()
    opt.load_state_dict(sd)
    assert_same(opt.state_dict(), kept)
    for key, entry in sd["state"].items():
        for slot in cls.slots:
            assert not np.shares_memory(entry[slot], opt.state[key][slot])
            entry[slot][...] = -7.0
        entry["step"] = 1000
    sd["hyperparameters"]["lr"] = 9.0
    assert_same(opt.state_dict(), kept)
    assert opt.lr == kept["hyperparameters"]["lr"]


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_load_replaces_state_and_hyperparameters(cls):
    source, _ = trained(cls, steps=4)
    opt, _ = trained(cls, steps=1, seed=3)
    opt.lr = 0.5
    opt.load_state_dict(source.state_dict())
    assert_same(full_snapshot(opt), full_snapshot(source))


# --- load_state_dict refusals --------------------------------------------------------------


def _corruptions(cls: type[Optimizer]):
    """(id, function mutating a state dict in place, strings the message must contain)."""
    first = cls.slots[0] if cls.slots else None
    other = next(c for c in CLASSES if c is not cls)
    out = [
        ("wrong-optimizer", lambda sd: sd.update(optimizer=other.__name__), [other.__name__]),
        ("unknown-optimizer", lambda sd: sd.update(optimizer="Shampoo"), ["'Shampoo'"]),
        ("version-3", lambda sd: sd.update(version=3), ["version", "3"]),
        ("version-str", lambda sd: sd.update(version="1"), ["version", "'1'"]),
        ("missing-lr", lambda sd: sd["hyperparameters"].pop("lr"), ["lr"]),
        ("extra-hyper", lambda sd: sd["hyperparameters"].update(learning_rate=0.1), ["learning_rate"]),
        ("negative-lr", lambda sd: sd["hyperparameters"].update(lr=-1.0), ["lr", "-1.0"]),
        ("nan-lr", lambda sd: sd["hyperparameters"].update(lr=float("nan")), ["lr", "nan"]),
        ("str-lr", lambda sd: sd["hyperparameters"].update(lr="0.1"), ["lr"]),
        ("bad-policy", lambda sd: sd["hyperparameters"].update(on_nonfinite="nope"), ["on_nonfinite", "nope"]),
        ("missing-step_count", lambda sd: sd.pop("step_count"), ["step_count"]),
        ("extra-top-key", lambda sd: sd.update(lr_schedule=[1, 2]), ["lr_schedule"]),
        ("negative-step_count", lambda sd: sd.update(step_count=-1), ["step_count", "-1"]),
        ("float-step_count", lambda sd: sd.update(step_count=2.5), ["step_count", "2.5"]),
        ("negative-skipped", lambda sd: sd.update(skipped_steps=-3), ["skipped_steps", "-3"]),
        ("negative-key-step", lambda sd: sd["state"]["b32"].update(step=-2), ["b32", "step", "-2"]),
        ("bool-key-step", lambda sd: sd["state"]["b32"].update(step=True), ["b32", "step", "True"]),
        ("extra-slot", lambda sd: sd["state"]["h16"].update(velocity2=np.zeros((2, 2))), ["h16", "velocity2"]),
        ("state-not-mapping", lambda sd: sd.update(state=[1, 2]), ["state"]),
        ("entry-not-mapping", lambda sd: sd["state"].update(b32=np.zeros(4)), ["b32"]),
        ("non-str-key", lambda sd: sd["state"].update({5: sd["state"]["b32"]}), ["5"]),
        ("hyper-not-mapping", lambda sd: sd.update(hyperparameters=[0.1]), ["hyperparameters"]),
    ]
    if cls.slots:
        out += [
            ("missing-slot", lambda sd: sd["state"]["b32"].pop(first), ["b32", repr(first)]),
            ("list-slot", lambda sd: sd["state"]["b32"].update({first: [0.0] * 4}), ["b32", first, "list"]),
            ("int-slot", lambda sd: sd["state"]["b32"].update({first: np.zeros(4, int)}), ["b32", first, "int64"]),
            ("missing-key-step", lambda sd: sd["state"]["b32"].pop("step"), ["b32", "step"]),
        ]
    if len(cls.slots) >= 2:
        a, b = cls.slots[:2]
        out += [
            (
                "slot-shapes",
                lambda sd: sd["state"]["layer/1.W"].update({b: np.zeros((4, 3))}),
                ["layer/1.W", b, "[4, 3]", "[3, 4]"],
            ),
            (
                "slot-dtypes",
                lambda sd: sd["state"]["b32"].update({b: np.zeros(4, np.float64)}),
                ["b32", b, "float64", "float32"],
            ),
        ]
    return out


def _refusal_cases():
    for name, cls in npoptim.OPTIMIZERS.items():
        for cid, mutate, parts in _corruptions(cls):
            yield pytest.param(cls, mutate, parts, id=f"{name}-{cid}")


@pytest.mark.parametrize("cls, mutate, parts", list(_refusal_cases()))
def test_load_state_dict_refuses_and_changes_nothing(cls, mutate, parts):
    source, _ = trained(cls, steps=4, seed=1)
    sd = source.state_dict()
    mutate(sd)
    target, _ = trained(cls, steps=2, seed=2, defaults=True)  # other hyperparameters than sd's
    before = full_snapshot(target)
    with pytest.raises(StateDictError) as info:
        target.load_state_dict(sd)
    msg = str(info.value)
    for part in parts:
        assert part in msg, f"{msg!r} does not name {part!r}"
    assert_same(full_snapshot(target), before)
    with pytest.raises(StateDictError):
        npoptim.optimizer_from_state_dict(sd)


@pytest.mark.parametrize("bad", [None, [1, 2], "Adam", {"version": 1}])
def test_optimizer_from_state_dict_refuses_non_state_dicts(bad):
    with pytest.raises(StateDictError):
        npoptim.optimizer_from_state_dict(bad)


def test_state_dict_errors_are_value_errors():
    assert issubclass(StateDictError, ValueError) and issubclass(CheckpointError, ValueError)


STATEFUL = [c for c in CLASSES if c.slots]


@pytest.mark.parametrize("cls", STATEFUL, ids=[c.__name__ for c in STATEFUL])
def test_loaded_state_that_does_not_fit_the_params_is_caught_at_update(cls):
    """load_state_dict cannot see the parameters; the first update must then refuse, writing nothing."""
    source, params = trained(cls)
    sd = source.state_dict()
    sd["state"]["layer/1.W"] = {"step": 3, **{s: np.zeros((4, 3)) for s in source.slots}}
    opt = cls()
    opt.load_state_dict(sd)
    kept = {k: v.copy() for k, v in params.items()}
    before = full_snapshot(opt)
    with pytest.raises(ValueError) as info:
        opt.update(params, grads_for(np.random.default_rng(0), params))
    assert "layer/1.W" in str(info.value)
    assert_same(params, kept)
    assert_same(full_snapshot(opt), before)


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_optimizer_from_state_dict_round_trip(cls):
    source, params = trained(cls, steps=5)
    opt = npoptim.optimizer_from_state_dict(source.state_dict())
    assert type(opt) is cls and opt is not source
    assert_same(full_snapshot(opt), full_snapshot(source))
    p2 = {k: v.copy() for k, v in params.items()}
    g = grads_for(np.random.default_rng(11), params)
    source.update(params, g)
    opt.update(p2, g)
    assert_same(p2, params)


# --- determinism: interrupted == uninterrupted ------------------------------------------------


ONLY_FAST = ("layer/1.W", "b32", "late")  # float32/float64 keys: the compiled path takes these


def _schedule(n_steps: int, seed: int) -> list[dict[str, Any]]:
    """A gradient stream with the awkward cases: a late key, frozen (None) steps and one NaN step."""
    rng = np.random.default_rng(seed)
    shapes = {
        "layer/1.W": ((3, 4), np.float64),
        "b32": ((4,), np.float32),
        "h16": ((2, 2), np.float16),
        "z": ((3,), np.complex128),
        "late": ((2,), np.float64),
    }
    out = []
    for step in range(n_steps):
        g: dict[str, Any] = {}
        for k, (shape, dtype) in shapes.items():
            if k == "late" and step < 4:
                continue
            a = rng.standard_normal(shape)
            if dtype == np.complex128:
                a = a + 1j * rng.standard_normal(shape)
            g[k] = a.astype(dtype)
        if step % 3 == 1:
            g["b32"] = None
        if step == 5:
            g["layer/1.W"][1, 2] = np.nan  # skipped by on_nonfinite="skip"
        out.append(g)
    return out


def _initial_params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(123)
    return {
        "layer/1.W": rng.standard_normal((3, 4)),
        "b32": rng.standard_normal(4).astype(np.float32),
        "h16": rng.standard_normal((2, 2)).astype(np.float16),
        "z": rng.standard_normal(3) + 1j * rng.standard_normal(3),
        "late": rng.standard_normal(2),
    }


def _run(opt: Optimizer, params: dict[str, np.ndarray], grads: list[dict[str, Any]]) -> None:
    for g in grads:
        opt.update({k: params[k] for k in g}, g)


_BACKEND_PAIRS = [("numpy", "numpy")]
if fused.fast_path_possible():
    _BACKEND_PAIRS += [("numba", "numba"), ("numba", "numpy"), ("numpy", "numba")]


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
@pytest.mark.parametrize("via", ["state_dict", "checkpoint"])
@pytest.mark.parametrize("keys", ["all", "fast"])
@pytest.mark.parametrize("before, after", _BACKEND_PAIRS, ids=[f"{a}-then-{b}" for a, b in _BACKEND_PAIRS])
def test_resume_is_bit_identical(cls, via, keys, before, after, tmp_path):
    """N steps, save, load into fresh objects, M steps == N + M uninterrupted steps, bit for bit.

    "all" mixes float16 and complex parameters in (the NumPy reference computes those);
    "fast" keeps only float32/float64 ones, which the compiled backend computes.  The stream
    has a key that appears late, steps without a gradient for one key and a skipped NaN step.
    The backend never changes a result, so resuming on the other backend is bit-identical too."""
    n, m = 7, 6
    keep = ONLY_FAST if keys == "fast" else None

    def select(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if keep is None or k in keep}

    stream = [select(g) for g in _schedule(n + m, seed=42)]
    hyper = custom_hyperparameters(cls)

    straight_params = select(_initial_params())
    straight = cls(**hyper, backend=before)
    _run(straight, straight_params, stream)

    params = select(_initial_params())
    opt = cls(**hyper, backend=before)
    _run(opt, params, stream[:n])
    assert opt.skipped_steps == 1
    if via == "state_dict":
        sd = opt.state_dict()
        fresh_params = {k: v.copy() for k, v in params.items()}
        fresh = cls(backend=after)
        fresh.load_state_dict(sd)
    else:
        path = tmp_path / "ckpt.npz"
        save_checkpoint(path, params, opt, metadata={"step": n})
        ck = load_checkpoint(path)
        assert ck.metadata == {"step": n}
        fresh_params = ck.params
        fresh = npoptim.optimizer_from_state_dict(ck.optimizer_state)
        fresh.backend = after
    for k in params:
        assert not np.shares_memory(fresh_params[k], params[k])
    del opt, params
    _run(fresh, fresh_params, stream[n:])

    assert_same(fresh_params, straight_params)
    assert_same(fresh.state_dict(), straight.state_dict())
    assert fresh.step_count == straight.step_count == n + m - 1
    assert fresh.skipped_steps == straight.skipped_steps == 1
    if keys == "fast" and cls._fused_kernel is not None:  # the path this case is about did run
        assert fresh.last_update_backend == after and straight.last_update_backend == before


# --- checkpoint files --------------------------------------------------------------------------

ODD_KEYS = ["layer/1.W", "ünïcødé/ключ·λ", "with space", "p0", "s0.m", "__meta__", "", "a.b.c/../d"]


def odd_params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(17)
    arrays = [
        rng.standard_normal((3, 2)),
        rng.standard_normal(5).astype(np.float32),
        rng.standard_normal((2, 2)).astype(np.float16),
        np.array(2.5),
        np.array(-1.25, dtype=np.float16),
        np.asfortranarray(rng.standard_normal((2, 3))),
        rng.standard_normal(4) + 1j * rng.standard_normal(4),
        rng.standard_normal((3, 4))[:, ::2],  # non-contiguous view
    ]
    return dict(zip(ODD_KEYS, arrays, strict=True))


@pytest.mark.parametrize("cls", CLASSES, ids=NAMES)
def test_checkpoint_round_trip(cls, tmp_path):
    params = odd_params()
    opt = cls(**custom_hyperparameters(cls))
    rng = np.random.default_rng(0)
    for _ in range(3):
        opt.update(params, grads_for(rng, params))
    metadata = {"epoch": 3, "seed": 2**40, "note": "späť", "curve": [0.5, 0.25], "done": False, "none": None}
    path = tmp_path / "run.npz"
    save_checkpoint(path, params, opt, metadata=metadata)
    ck = load_checkpoint(path)
    assert list(ck.params) == ODD_KEYS
    for k in ODD_KEYS:
        assert ck.params[k].dtype == params[k].dtype and ck.params[k].shape == params[k].shape
        assert np.array_equal(ck.params[k], params[k])
        assert ck.params[k].flags.writeable
    assert ck.metadata == metadata
    assert_same(ck.optimizer_state, opt.state_dict())
    assert sorted(os.listdir(tmp_path)) == ["run.npz"]


def test_checkpoint_without_optimizer(tmp_path):
    path = tmp_path / "p.npz"
    save_checkpoint(path, {"w": np.arange(3.0)})
    ck = load_checkpoint(str(path))
    assert ck.optimizer_state is None and ck.metadata is None
    assert_same(ck.params, {"w": np.arange(3.0)})


def test_unserialisable_metadata_is_refused_before_writing(tmp_path):
    path = tmp_path / "p.npz"
    save_checkpoint(path, {"w": np.arange(3.0)})
    data = path.read_bytes()
    for bad in [object(), {"x": float("nan")}, {1j: 2}]:
        with pytest.raises(TypeError):
            save_checkpoint(path, {"w": np.zeros(3)}, metadata=bad)
        assert path.read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["p.npz"]


def _good_checkpoint(tmp_path: Path, name: str = "good.npz") -> Path:
    opt, params = trained(npoptim.Adam, steps=2)
    path = tmp_path / name
    save_checkpoint(path, params, opt, metadata={"epoch": 1})
    return path


def _assert_refused(path: Path) -> CheckpointError:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value), str(info.value)
    return info.value


def test_missing_file(tmp_path):
    _assert_refused(tmp_path / "nowhere.npz")
    _assert_refused(tmp_path)  # a directory is not a checkpoint either


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    _assert_refused(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    _assert_refused(path)


def test_pickle_file_is_refused(tmp_path):
    import pickle

    path = tmp_path / "pickled.npz"
    path.write_bytes(pickle.dumps({"w": np.zeros(3)}))
    _assert_refused(path)


def test_npy_file_is_refused(tmp_path):
    path = tmp_path / "single.npy"
    np.save(path, np.arange(4.0))
    _assert_refused(path)


def test_foreign_npz_is_refused(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.zeros(3), bias=np.ones(2))
    _assert_refused(path)
    # a __meta__ record that is JSON but not ours
    np.savez(path, __meta__=np.array('{"format": "something.else", "version": 1}'))
    _assert_refused(path)
    np.savez(path, __meta__=np.array("[1, 2, 3]"))
    _assert_refused(path)
    np.savez(path, __meta__=np.array("{not json"))
    _assert_refused(path)


def test_future_version_is_refused(tmp_path):
    path = tmp_path / "future.npz"
    meta = '{"format": "npoptim.checkpoint", "version": 99, "params": [], "optimizer": null, "metadata": null}'
    np.savez(path, __meta__=np.array(meta))
    assert "99" in str(_assert_refused(path))


def test_record_that_does_not_match_its_arrays_is_refused(tmp_path):
    path = tmp_path / "mismatch.npz"
    meta = '{"format": "npoptim.checkpoint", "version": 1, "params": ["a", "b"], "optimizer": null, "metadata": null}'
    np.savez(path, __meta__=np.array(meta), p0=np.zeros(2))  # p1 missing
    _assert_refused(path)
    np.savez(path, __meta__=np.array(meta), p0=np.zeros(2), p1=np.zeros(2), p2=np.zeros(2))  # one too many
    _assert_refused(path)


class _Payload:
    """Unpickling this runs os.mkdir(marker): proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_object_array_is_refused_without_unpickling(tmp_path):
    good = _good_checkpoint(tmp_path)
    marker = tmp_path / "code_ran"
    with np.load(good) as npz:
        arrays = {k: npz[k] for k in npz.files}
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload(marker)
    arrays["p0"] = evil
    path = tmp_path / "evil.npz"
    np.savez(path, **arrays)
    _assert_refused(path)
    assert not marker.exists()
    # control: the payload is live -- loading it with pickles allowed does run it
    with np.load(path, allow_pickle=True) as npz:
        npz["p0"]
    assert marker.is_dir()


def _small_checkpoint(tmp_path: Path) -> Path:
    """A checkpoint with every kind of record (param, state slot, metadata) but few bytes,
    so that sweeping every byte position stays fast."""
    params = {"w": np.array([0.5, -1.5])}
    opt = npoptim.Momentum(lr=0.1)
    opt.update(params, {"w": np.array([1.0, 2.0])})
    path = tmp_path / "small.npz"
    save_checkpoint(path, params, opt, metadata={"epoch": 1})
    return path


def test_truncated_file_is_refused_at_every_length(tmp_path):
    data = _small_checkpoint(tmp_path).read_bytes()
    path = tmp_path / "cut.npz"
    for length in range(1, len(data)):
        path.write_bytes(data[:length])
        _assert_refused(path)


def test_flipped_byte_in_array_data_is_refused(tmp_path):
    opt, params = trained(npoptim.Adam, steps=2)
    good = tmp_path / "good.npz"
    save_checkpoint(good, params, opt)
    data = good.read_bytes()
    path = tmp_path / "flipped.npz"
    for array in [params["layer/1.W"], opt.state["layer/1.W"]["m"], opt.state["b32"]["m"]]:  # (v_max may equal v)
        raw = array.tobytes()
        at = data.find(raw)
        assert at > 0 and data.find(raw, at + 1) < 0
        for offset in (0, len(raw) // 2, len(raw) - 1):
            broken = bytearray(data)
            broken[at + offset] ^= 0x10
            path.write_bytes(bytes(broken))
            _assert_refused(path)


@pytest.mark.parametrize("mask", [0xA5])
def test_any_flipped_byte_is_refused_or_harmless(tmp_path, mask):
    """Flip every byte of a checkpoint in turn: the load either raises CheckpointError or (a byte
    that carries no content, like a zip timestamp) returns exactly the original checkpoint.
    The zip CRC-32 covers every byte of every array, so no flip can change the content silently."""
    good = _small_checkpoint(tmp_path)
    data = good.read_bytes()
    original = load_checkpoint(good)
    path = tmp_path / "flipped.npz"
    refused = 0
    for i in range(len(data)):
        broken = bytearray(data)
        broken[i] ^= mask
        path.write_bytes(bytes(broken))
        try:
            ck = load_checkpoint(path)
        except CheckpointError as exc:
            assert str(path) in str(exc)
            refused += 1
            continue
        assert_same(ck.params, original.params, f"byte {i}")
        assert_same(ck.optimizer_state, original.optimizer_state, f"byte {i}")
        assert ck.metadata == original.metadata
    assert refused > len(data) // 2


# --- atomic writes -------------------------------------------------------------------------------


class SimulatedCrash(BaseException):
    """Stands for a kill mid-write; a BaseException so that `except Exception` cannot swallow it."""


def _half_written_savez(file, *args, **kwds):
    file.write(b"PK\x03\x04 half a checkpoint")
    raise SimulatedCrash("power cut")


def _crash(*args, **kwargs):
    raise SimulatedCrash("power cut")


@pytest.mark.parametrize(
    "target, replacement",
    [("np.savez", _half_written_savez), ("os.fsync", _crash), ("os.replace", _crash)],
)
@pytest.mark.parametrize("had_previous", [True, False])
def test_crash_mid_write_keeps_previous_checkpoint(tmp_path, monkeypatch, target, replacement, had_previous):
    path = tmp_path / "ckpt.npz"
    if had_previous:
        path = _good_checkpoint(tmp_path, "ckpt.npz")
        data = path.read_bytes()
    module_name, attr = target.split(".")
    monkeypatch.setattr(getattr(ckpt_module, module_name), attr, replacement)
    opt, params = trained(npoptim.Momentum, steps=4, seed=9)
    with pytest.raises(SimulatedCrash):
        save_checkpoint(path, params, opt, metadata={"epoch": 2})
    monkeypatch.undo()
    if had_previous:
        assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
        assert path.read_bytes() == data
        assert load_checkpoint(path).metadata == {"epoch": 1}
    else:
        assert os.listdir(tmp_path) == []


def test_overwrite_replaces_and_leaves_no_temporary(tmp_path):
    path = _good_checkpoint(tmp_path, "ckpt.npz")
    opt, params = trained(npoptim.RMSprop, steps=2)
    save_checkpoint(path, params, opt, metadata={"epoch": 2})
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    ck = load_checkpoint(path)
    assert ck.metadata == {"epoch": 2} and ck.optimizer_state["optimizer"] == "RMSprop"
    assert zipfile.is_zipfile(path)
