"""Partition: different rules for different keys, one atomic update, one state dict (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest

import npoptim
from npoptim import SGD, Adam, AdamW, KeyMismatchError, Momentum, Muon, NonFiniteGradientError, Partition
from npoptim.errors import StateDictError


def make(rng, dtype=np.float64):
    return {
        "W1": rng.standard_normal((4, 3)).astype(dtype),
        "b1": rng.standard_normal(3).astype(dtype),
        "W2": rng.standard_normal((3, 2)).astype(dtype),
        "b2": rng.standard_normal(2).astype(dtype),
    }


def grads_for(rng, params):
    return {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in params.items()}


def snapshot(opt, params):
    return (
        {k: v.copy() for k, v in params.items()},
        {k: {s: (a.copy() if isinstance(a, np.ndarray) else a) for s, a in e.items()} for k, e in opt.state.items()},
        opt.step_count,
        opt.skipped_steps,
        [(o.step_count, o.skipped_steps) for _, o in opt.groups],
    )


def assert_same_snapshot(a, b):
    pa, sa, *ca = a
    pb, sb, *cb = b
    assert ca == cb
    assert pa.keys() == pb.keys() and all(np.array_equal(pa[k], pb[k], equal_nan=True) for k in pa)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].keys() == sb[k].keys()
        for s in sa[k]:
            assert np.array_equal(sa[k][s], sb[k][s], equal_nan=True), (k, s)


def warmed(rng, **kw):
    opt = Partition({"W*": Muon(lr=0.02), "b1": Momentum(lr=0.1), "*": AdamW(lr=1e-2)}, **kw)
    params = make(rng)
    for _ in range(3):
        opt.update(params, grads_for(rng, params))
    return opt, params


def test_first_matching_pattern_wins_and_each_group_is_its_rule_alone():
    rng = np.random.default_rng(0)
    opt = Partition({"W*": Muon(lr=0.02), "b1": Momentum(lr=0.1), "*": AdamW(lr=1e-2)})
    assert [opt.group_of(k) for k in ("W1", "W2", "b1", "b2", "Wx")] == ["W*", "W*", "b1", "*", "W*"]
    alone = {"W*": Muon(lr=0.02), "b1": Momentum(lr=0.1), "*": AdamW(lr=1e-2)}
    params = make(rng)
    copies = {k: v.copy() for k, v in params.items()}
    for _ in range(4):
        g = grads_for(rng, params)
        opt.update(params, g)
        for pattern, o in alone.items():
            keys = [k for k in params if opt.group_of(k) == pattern]
            o.update({k: copies[k] for k in keys}, {k: g[k] for k in keys})
    for k in params:  # the same operations on the same values
        assert np.array_equal(params[k], copies[k]), k
    assert opt.step_count == 4 and opt.state["W1"]["step"] == 4


def test_patterns_are_case_sensitive_globs():
    opt = Partition({"layer?.W": SGD(), "*.[bg]": SGD(), "*": SGD()})
    assert opt.group_of("layer1.W") == "layer?.W" and opt.group_of("layer10.W") == "*"
    assert opt.group_of("x.b") == "*.[bg]" and opt.group_of("x.B") == "*"


def test_a_key_no_pattern_matches_is_named_and_nothing_changes():
    rng = np.random.default_rng(1)
    opt = Partition({"W*": SGD(lr=0.1), "b*": SGD(lr=0.1)})
    params = make(rng)
    opt.update(params, grads_for(rng, params))
    params["gamma"] = np.ones(3)
    before = snapshot(opt, params)
    with pytest.raises(KeyMismatchError, match=r"'gamma' matches no group pattern \['W\*', 'b\*'\]"):
        opt.update(params, grads_for(rng, params))
    assert_same_snapshot(before, snapshot(opt, params))


@pytest.mark.parametrize("where", ["W2", "b2", "b1"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_nonfinite_gradient_in_any_group_changes_nothing_anywhere(where, value):
    rng = np.random.default_rng(2)
    opt, params = warmed(rng)
    g = grads_for(rng, params)
    g[where].reshape(-1)[0] = value
    before = snapshot(opt, params)
    with pytest.raises(NonFiniteGradientError, match=repr(where)) as info:
        opt.update(params, g)
    assert info.value.keys == [where]
    assert_same_snapshot(before, snapshot(opt, params))


def test_skip_policy_skips_every_group():
    rng = np.random.default_rng(3)
    opt, params = warmed(rng, on_nonfinite="skip")
    g = grads_for(rng, params)
    g["b2"][0] = np.nan
    before = snapshot(opt, params)
    opt.update(params, g)
    after = snapshot(opt, params)
    assert opt.skipped_steps == 1
    assert_same_snapshot(before[:2] + (before[2], 1, before[4]), after)


@pytest.mark.parametrize(
    "corrupt, error, culprit",
    [
        (lambda p, g: g.update(b2=np.ones((2, 1))), ValueError, "b2"),  # a shape in the last group
        (lambda p, g: g.update(b2=np.ones(2, dtype=np.int64)), TypeError, "b2"),
        (lambda p, g: p.update(W3=np.ones(3)) or g.update(W3=np.ones(3)), ValueError, "W3"),  # Muon: 2-D only
        (lambda p, g: p.update(b3=p["b1"]) or g.update(b3=np.ones(3)), ValueError, "b3"),  # alias across groups
        (lambda p, g: g.pop("b2"), KeyError, "b2"),
    ],
    ids=["shape", "int-grad", "muon-1d", "alias", "missing-grad"],
)
def test_bad_input_in_a_later_group_changes_nothing_in_earlier_ones(corrupt, error, culprit):
    rng = np.random.default_rng(4)
    opt, params = warmed(rng)
    bad_p, bad_g = dict(params), grads_for(rng, params)
    corrupt(bad_p, bad_g)
    before = snapshot(opt, params)
    with pytest.raises(error, match=culprit):
        opt.update(bad_p, bad_g)
    assert_same_snapshot(before, snapshot(opt, params))


def test_none_gradients_and_empty_groups():
    rng = np.random.default_rng(5)
    opt, params = warmed(rng)
    before = snapshot(opt, params)
    opt.update(params, dict.fromkeys(params))
    assert_same_snapshot(before, snapshot(opt, params))
    g = {**grads_for(rng, params), "b1": None}
    opt.update(params, g)
    assert opt.state["b1"]["step"] == 3 and opt.state["b2"]["step"] == 4 and opt.step_count == 4
    only_b = {k: params[k] for k in ("b1", "b2")}  # the W* group gets no key at all
    opt.update(only_b, grads_for(rng, only_b))
    assert opt.state["W1"]["step"] == 4 and opt.state["b2"]["step"] == 5


def test_construction_is_checked():
    with pytest.raises(TypeError, match="non-empty mapping"):
        Partition({})
    with pytest.raises(TypeError, match=r"groups\['\*'\] must be an npoptim optimizer"):
        Partition({"*": "adam"})
    shared = SGD()
    with pytest.raises(ValueError, match="same optimizer"):
        Partition({"W*": shared, "*": shared})
    with pytest.raises(ValueError, match=r"needs every group's optimizer to propagate.*\['\*'\]"):
        Partition({"W*": SGD(on_nonfinite="propagate"), "*": SGD()}, on_nonfinite="propagate")
    with pytest.raises(ValueError, match="on_nonfinite"):
        Partition({"*": SGD()}, on_nonfinite="ignore")


@pytest.mark.parametrize("via", ["load_state_dict", "optimizer_from_state_dict", "checkpoint"])
def test_resume_is_bit_identical(via, tmp_path):
    rng = np.random.default_rng(6)
    p0 = make(rng)
    grads = [grads_for(rng, p0) for _ in range(8)]
    grads[5]["b1"] = None

    def build():
        return Partition({"W*": Muon(lr=0.02, nesterov=False), "b1": Momentum(lr=0.1), "*": AdamW(lr=1e-2)})

    straight, ps = build(), {k: v.copy() for k, v in p0.items()}
    first, pf = build(), {k: v.copy() for k, v in p0.items()}
    for i, g in enumerate(grads):
        straight.update(ps, g)
        if i < 4:
            first.update(pf, g)
    sd = first.state_dict()
    if via == "load_state_dict":
        resumed = build()
        resumed.load_state_dict(sd)
    elif via == "optimizer_from_state_dict":
        resumed = npoptim.optimizer_from_state_dict(sd)
    else:
        npoptim.save_checkpoint(tmp_path / "p.npz", pf, first)
        ck = npoptim.load_checkpoint(tmp_path / "p.npz")
        resumed, pf = npoptim.optimizer_from_state_dict(ck.optimizer_state), ck.params
    for g in grads[4:]:
        resumed.update(pf, g)
    assert_same_snapshot(snapshot(straight, ps), snapshot(resumed, pf))
    assert [type(o).__name__ for _, o in resumed.groups] == ["Muon", "Momentum", "AdamW"]
    assert [o.hyperparameters for _, o in resumed.groups] == [o.hyperparameters for _, o in straight.groups]


def test_state_dict_holds_every_group_and_a_bad_one_changes_nothing():
    rng = np.random.default_rng(7)
    opt, params = warmed(rng)
    sd = opt.state_dict()
    assert [g["pattern"] for g in sd["groups"]] == ["W*", "b1", "*"]
    assert [g["optimizer"] for g in sd["groups"]] == ["Muon", "Momentum", "AdamW"]
    assert set(sd["state"]) == set(params) and sd["step_count"] == 3
    before = snapshot(opt, params)
    bad = {**sd, "state": {**sd["state"], "b2": {**sd["state"]["b2"], "m": np.zeros(5)}}}  # the last group's
    with pytest.raises(StateDictError, match="b2"):
        opt.load_state_dict(bad)
    with pytest.raises(StateDictError, match="patterns"):
        opt.load_state_dict({**sd, "groups": sd["groups"][::-1]})
    with pytest.raises(StateDictError, match="'zz' matches no group"):
        Partition({"W*": Muon(), "b*": SGD()}).load_state_dict(
            {**Partition({"W*": Muon(), "b*": SGD()}).state_dict(), "state": {"zz": {"step": 1}}}
        )
    assert_same_snapshot(before, snapshot(opt, params))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_same_as_torch_param_groups(dtype):
    """torch's parameter groups (one rule, settings per group) are a Partition of two instances of the rule."""
    torch = pytest.importorskip("torch", reason="torch.optim's param groups are the oracle")
    rng = np.random.default_rng(8)
    params = make(rng, dtype)
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    tp = {k: torch.tensor(v.copy(), dtype=tdt) for k, v in params.items()}
    ours = Partition({"W*": Adam(lr=0.01, weight_decay=0.1, beta1=0.8), "*": Adam(lr=0.001)})
    theirs = torch.optim.Adam(
        [
            {"params": [tp["W1"], tp["W2"]], "lr": 0.01, "weight_decay": 0.1, "betas": (0.8, 0.999)},
            {"params": [tp["b1"], tp["b2"]], "lr": 0.001},
        ]
    )
    scale = dict.fromkeys(params, 0.0)
    rtol = 100 * float(np.finfo(dtype).eps)  # 1 ULP of the running scale per step (test_parity_torch.py's)
    for _ in range(100):
        g = grads_for(rng, params)
        ours.update(params, g)
        for k, t in tp.items():
            t.grad = torch.tensor(g[k].copy(), dtype=tdt)
        theirs.step()
        for k, t in tp.items():
            want = t.detach().numpy()
            scale[k] = max(scale[k], float(np.abs(want).max()))
            np.testing.assert_allclose(params[k], want, rtol=0, atol=rtol * scale[k], err_msg=k)


def test_a_group_in_schedule_free_eval_mode_refuses_before_any_group_writes():
    from npoptim import ScheduleFreeAdamW

    rng = np.random.default_rng(9)
    sf = ScheduleFreeAdamW(lr=0.01)
    opt = Partition({"W*": Muon(lr=0.02), "*": sf})
    params = make(rng)
    opt.update(params, grads_for(rng, params))
    sf.eval({k: params[k] for k in ("b1", "b2")})
    before = snapshot(opt, params)
    with pytest.raises(ValueError, match=r"eval mode.*opt\.train"):
        opt.update(params, grads_for(rng, params))
    assert_same_snapshot(before, snapshot(opt, params))  # Muon's group did not step either
