"""Lookahead against ``pytorch_optimizer.Lookahead`` (4.1.0) around torch.optim rules, and its guarantees.

Tolerance: test_parity_torch.py's (``N_STEPS`` ULP of the running scale): the inner rules are the ones
checked there to that tolerance, and a synchronisation is one lerp (torch) against ``phi + alpha (w - phi)``
(ours), a few roundings of terms no larger than the scale.
"""

from __future__ import annotations

import numpy as np
import pytest

import npoptim
from npoptim import SGD, Adam, AdamW, Lookahead, Momentum, Muon, NonFiniteGradientError, Partition

N_STEPS = 100
SHAPES = {"s": (), "vec": (7,), "mat": (4, 5), "cube": (2, 3, 4)}
GRID = (
    ("adam", {"lr": 0.01}, 5, 0.5),
    ("momentum", {"lr": 0.05, "momentum": 0.9}, 3, 0.8),
    ("adamw", {"lr": 0.02, "weight_decay": 0.1}, 1, 0.3),  # k = 1: a synchronisation after every step
)


def _torch_inner(torch, name, tp, h):
    if name == "adam":
        return torch.optim.Adam(tp, lr=h["lr"])
    if name == "adamw":
        return torch.optim.AdamW(tp, lr=h["lr"], weight_decay=h["weight_decay"])
    return torch.optim.SGD(tp, lr=h["lr"], momentum=h["momentum"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("i", range(len(GRID)))
def test_parity_with_pytorch_optimizer(dtype, i):
    torch = pytest.importorskip("torch", reason="torch is the inner oracle")
    po = pytest.importorskip("pytorch_optimizer", reason="pytorch_optimizer.Lookahead is the oracle")
    name, h, k, alpha = GRID[i]
    rng = np.random.default_rng(300 + i)
    ours = {key: np.asarray(rng.standard_normal(s), dtype=dtype) for key, s in SHAPES.items()}
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    theirs = {key: torch.tensor(v.copy(), dtype=tdt, requires_grad=True) for key, v in ours.items()}
    opt = Lookahead(npoptim.OPTIMIZERS[name](**h), k=k, alpha=alpha)
    topt = po.Lookahead(_torch_inner(torch, name, list(theirs.values()), h), k=k, alpha=alpha)
    rtol = N_STEPS * float(np.finfo(dtype).eps)
    scale = dict.fromkeys(SHAPES, 0.0)
    for step in range(1, N_STEPS + 1):
        grads = {key: np.asarray(rng.standard_normal(s), dtype=dtype) for key, s in SHAPES.items()}
        opt.update(ours, grads)
        for key, tp in theirs.items():
            tp.grad = torch.tensor(grads[key].copy(), dtype=tdt)
        topt.step()
        for key, tp in theirs.items():
            want = tp.detach().numpy()
            scale[key] = max(scale[key], float(np.abs(want).max()))
            np.testing.assert_allclose(ours[key], want, rtol=0, atol=rtol * scale[key], err_msg=f"{key} {step}")
            slow = topt.state[tp]["slow_params"].numpy()
            np.testing.assert_allclose(opt.slow[key], slow, rtol=0, atol=rtol * scale[key], err_msg=f"slow {key}")


def test_slow_weights_start_at_the_first_gradient_and_count_per_key():
    params = {"a": np.array([1.0]), "b": np.array([1.0])}
    opt = Lookahead(SGD(lr=0.1), k=2, alpha=0.5)
    opt.update(params, {"a": np.array([1.0]), "b": None})
    assert set(opt.slow) == {"a"} and opt.slow["a"][0] == 1.0
    params["b"][...] = 2.0
    opt.update(params, {"a": np.array([1.0]), "b": np.array([1.0])})  # a: step 2, synchronised; b: step 1
    assert opt.slow["b"][0] == 2.0
    np.testing.assert_allclose(params["a"], [0.9])  # slow 1 + 0.5 (0.8 - 1)
    np.testing.assert_allclose(params["b"], [1.9])  # not yet synchronised


def test_bad_call_changes_nothing_including_slow_weights():
    rng = np.random.default_rng(1)
    params = {"W": rng.standard_normal((3, 3)), "b": rng.standard_normal(3)}
    opt = Lookahead(Partition({"W*": Muon(lr=0.02), "*": AdamW(lr=0.01)}), k=2)
    opt.update(params, {k: rng.standard_normal(v.shape) for k, v in params.items()})
    keep = ({k: v.copy() for k, v in params.items()}, opt.slow_weights(), opt.step_count)
    params["late"] = rng.standard_normal(4)
    g = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    g["W"][0, 0] = np.nan
    with pytest.raises(NonFiniteGradientError):
        opt.update(params, g)
    assert "late" not in opt.slow and opt.step_count == keep[2]
    assert all(np.array_equal(params[k], keep[0][k]) for k in keep[0])
    assert all(np.array_equal(opt.slow[k], keep[1][k]) for k in keep[1])


@pytest.mark.parametrize("via", ["load_state_dict", "checkpoint"])
def test_resume_is_bit_identical_and_the_state_dict_nests_the_inner_one(via, tmp_path):
    rng = np.random.default_rng(2)
    p0 = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4).astype(np.float32)}
    grads = [{k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in p0.items()} for _ in range(9)]
    grads[6]["b"] = None

    def build():
        return Lookahead(Partition({"W": Momentum(lr=0.05), "*": Adam(lr=0.01)}), k=3, alpha=0.4)

    straight, ps = build(), {k: v.copy() for k, v in p0.items()}
    first, pf = build(), {k: v.copy() for k, v in p0.items()}
    for j, g in enumerate(grads):
        straight.update(ps, g)
        if j < 4:
            first.update(pf, g)
    sd = first.state_dict()
    assert sd["inner"]["optimizer"] == "Partition" and set(sd["state"]["W"]) == {"step", "v", "slow"}
    if via == "load_state_dict":
        resumed = build()
        resumed.load_state_dict(sd)
    else:
        npoptim.save_checkpoint(tmp_path / "l.npz", pf, first)
        ck = npoptim.load_checkpoint(tmp_path / "l.npz")
        resumed, pf = npoptim.optimizer_from_state_dict(ck.optimizer_state), ck.params
    for g in grads[4:]:
        resumed.update(pf, g)
    for k in p0:
        assert np.array_equal(pf[k], ps[k]) and np.array_equal(resumed.slow[k], straight.slow[k]), k
    assert resumed.step_count == straight.step_count == 9


def test_arguments_and_bad_state_dicts_are_refused():
    with pytest.raises(TypeError, match="inner"):
        Lookahead("adam")
    for kw in ({"k": 0}, {"k": 2.5}, {"alpha": 1.5}, {"alpha": True}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            Lookahead(SGD(), **kw)
    opt = Lookahead(SGD(lr=0.1))
    params = {"w": np.ones(2)}
    opt.update(params, {"w": np.ones(2)})
    sd = opt.state_dict()
    with pytest.raises(npoptim.StateDictError, match="slow"):
        opt.load_state_dict({**sd, "state": {"w": {"step": 1}}})
    with pytest.raises(ValueError, match="k"):
        opt.load_state_dict({**sd, "k": 0})
    assert opt.k == 5 and np.array_equal(opt.slow["w"], np.ones(2))
