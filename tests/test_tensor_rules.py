"""The guarantees of every rule, for the rules outside the element-wise battery (issue 15).

``npoptim.TENSOR_OPTIMIZERS`` (Muon, Adafactor, LAMB, LARS, Prodigy) see a whole tensor or the whole
call, so test_validation.py's element-wise claims (complex = two real arrays, state of the parameter's
shape) do not apply; what every optimizer promises still does, and is checked here for each of them and
for the wrappers: a refused call changes nothing (bit for bit), ``None`` gradients leave a key alone, a
gradient of another dtype is cast first, state dicts are plain data that resume bit-identically, and
typos in attribute names are errors.  Parameters are 2-D so Muon takes them.
"""

from __future__ import annotations

import numpy as np
import pytest

import npoptim
from npoptim import AdamW, Lookahead, Muon, Partition

BUILDERS = {name: cls for name, cls in npoptim.TENSOR_OPTIMIZERS.items()}
BUILDERS["partition"] = lambda: Partition({"W*": Muon(lr=0.02), "*": AdamW(lr=0.01)})
BUILDERS["lookahead"] = lambda: Lookahead(npoptim.LAMB(lr=0.01), k=2)
NAMES = list(BUILDERS)


def make(rng, dtype=np.float64):
    return {"W": rng.standard_normal((3, 4)).astype(dtype), "V": rng.standard_normal((2, 5)).astype(dtype),
            "Wlast": rng.standard_normal((4, 2)).astype(dtype)}


def grads_for(rng, params):
    return {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in params.items()}


def snapshot(opt, params):
    def arrays(x):
        if isinstance(x, np.ndarray):
            return x.copy()
        if isinstance(x, dict):
            return {k: arrays(v) for k, v in x.items()}
        if isinstance(x, list):
            return [arrays(v) for v in x]
        return x

    return {"params": {k: v.copy() for k, v in params.items()}, "sd": arrays(opt.state_dict())}


def assert_same(a, b, where="state"):
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def warmed(name, seed=0, steps=2):
    rng = np.random.default_rng(seed)
    opt, params = BUILDERS[name](), make(rng)
    for _ in range(steps):
        opt.update(params, grads_for(rng, params))
    return opt, params, rng


CORRUPTIONS = {
    "missing-grad": (lambda p, g: g.pop("Wlast"), KeyError),
    "extra-grad": (lambda p, g: g.update(Wstray=np.ones((2, 2))), KeyError),
    "shape": (lambda p, g: g.update(Wlast=np.ones((2, 4))), ValueError),
    "int-grad": (lambda p, g: g.update(Wlast=np.ones((4, 2), dtype=np.int64)), TypeError),
    "list-grad": (lambda p, g: g.update(Wlast=[[1.0, 2.0]] * 4), TypeError),
    "readonly": (lambda p, g: p.update(Wlast=np.require(p["Wlast"].copy(), requirements="W")) or
                 p["Wlast"].setflags(write=False), ValueError),
    "alias": (lambda p, g: p.update(Walias=p["W"]) or g.update(Walias=np.ones((3, 4))), ValueError),
    "nan": (lambda p, g: g["Wlast"].__setitem__((0, 0), np.nan), ValueError),
    "inf": (lambda p, g: g["V"].__setitem__((1, 1), -np.inf), ValueError),
    "state-stale": (lambda p, g: p.update(Wlast=np.ones((4, 3))) or g.update(Wlast=np.ones((4, 3))), ValueError),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
@pytest.mark.parametrize("name", NAMES)
def test_a_refused_call_changes_nothing(name, corruption):
    opt, params, rng = warmed(name)
    bad_p, bad_g = dict(params), grads_for(rng, params)
    corrupt, error = CORRUPTIONS[corruption]
    corrupt(bad_p, bad_g)
    before = snapshot(opt, params)
    with pytest.raises(error):
        opt.update(bad_p, bad_g)
    after = snapshot(opt, params)
    assert_same(before, after)
    twin, twin_params, _ = warmed(name)  # and it still works exactly as if the call never happened
    good = grads_for(np.random.default_rng(5), params)
    opt.update(params, good)
    twin.update(twin_params, {k: g.copy() for k, g in good.items()})
    assert_same(snapshot(opt, params), snapshot(twin, twin_params))


@pytest.mark.parametrize("name", NAMES)
def test_none_gradients_and_cast_gradients(name):
    opt, params, rng = warmed(name)
    before = snapshot(opt, params)
    opt.update(params, dict.fromkeys(params))
    assert_same(before, snapshot(opt, params))
    twin, twin_params, _ = warmed(name)
    g32 = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
    g32["V"] = None
    opt.update(params, g32)
    twin.update(twin_params, {k: None if g is None else g.astype(np.float64) for k, g in g32.items()})
    assert_same(snapshot(opt, params), snapshot(twin, twin_params))
    assert np.array_equal(params["V"], before["params"]["V"])


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("name", NAMES)
def test_param_and_state_keep_the_param_dtype(name, dtype):
    rng = np.random.default_rng(3)
    opt, params = BUILDERS[name](), make(rng, dtype)
    for _ in range(3):
        opt.update(params, {k: v.astype(np.float64) for k, v in grads_for(rng, params).items()})
    for k, p in params.items():
        assert p.dtype == dtype and np.isfinite(p).all(), k
        arrays = [a for a in opt.state_dict()["state"][k].values() if isinstance(a, np.ndarray)]
        assert arrays and all(a.dtype == dtype for a in arrays), k


@pytest.mark.parametrize("name", NAMES)
def test_resume_through_optimizer_from_state_dict_is_bit_identical(name):
    opt, params, rng = warmed(name, steps=3)
    resumed = npoptim.optimizer_from_state_dict(opt.state_dict())
    twin_params = {k: v.copy() for k, v in params.items()}
    for _ in range(3):
        g = grads_for(rng, params)
        opt.update(params, g)
        resumed.update(twin_params, {k: v.copy() for k, v in g.items()})
    assert_same(snapshot(opt, params), snapshot(resumed, twin_params))


@pytest.mark.parametrize("name", list(npoptim.TENSOR_OPTIMIZERS))
def test_a_typo_in_an_attribute_name_is_an_error(name):
    opt = BUILDERS[name]()
    with pytest.raises(AttributeError, match="learning_rate"):
        opt.learning_rate = 0.1
    with pytest.raises(TypeError):
        BUILDERS[name](learning_rate=0.1)
