"""The named composite ``muon+adamw`` and the registry's ``--optimizers all`` (issue 15).

``MuonAdamW`` is a :class:`Partition` built from hyperparameters: it must be exactly the Partition a user
would build by hand (the same operations in the same order, so bit equality), and every face that reads
the registry (selection, training, trajectories, sweeps, the CLI) must take it by name.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import npoptim
from npoptim import (
    ALL_OPTIMIZERS,
    COMPOSITES,
    OPTIMIZERS,
    TENSOR_OPTIMIZERS,
    AdamW,
    Muon,
    MuonAdamW,
    Partition,
    create_optimizer,
    get_optimizer,
    optimizer_from_state_dict,
    select_optimizers,
)
from npoptim.optimizers import registry_name
from npoptim.schedules import CosineDecay

#: The book network's shapes (digits: 64 inputs), keys as npoptim.nn names them.
SHAPES = {"W1": (64, 20), "b1": (20,), "W2": (20, 10), "b2": (10,)}


def _params(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s) for k, s in SHAPES.items()}


def _grads(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {k: rng.standard_normal(s) for k, s in SHAPES.items()}


def _run(opt, steps: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    params, rng = _params(seed), np.random.default_rng(seed + 1)
    for _ in range(steps):
        opt.update(params, _grads(rng))
    return params


def _by_hand(lr, ratio=1.0, momentum=0.95, ns_steps=5, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    """The documented meaning of ``MuonAdamW``, written out."""
    return Partition({
        "W*": Muon(lr=ratio * lr, momentum=momentum, nesterov=True, weight_decay=weight_decay, ns_steps=ns_steps,
                   adjust_lr="match_rms_adamw"),
        "*": AdamW(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay),
    })


@pytest.mark.parametrize("lr, ratio, wd", [(1e-3, 1.0, 0.01), (3e-2, 0.25, 0.0), (1e-2, 4.0, 0.1)])
def test_muon_adamw_is_the_partition_written_out(lr, ratio, wd):
    """Same rules, same operations in the same order on each key: bit equality after 12 steps."""
    got = _run(create_optimizer("muon+adamw", lr=lr, muon_lr_ratio=ratio, weight_decay=wd))
    want = _run(_by_hand(lr, ratio, weight_decay=wd))
    for k in SHAPES:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_routing_matrices_to_muon_the_rest_to_adamw():
    opt = MuonAdamW(lr=1e-3, muon_lr_ratio=2.0)
    assert [type(opt.optimizer_of(k)).__name__ for k in SHAPES] == ["Muon", "AdamW", "Muon", "AdamW"]
    muon, adamw = opt.optimizer_of("W1"), opt.optimizer_of("b1")
    assert muon.lr == 2e-3 and adamw.lr == 1e-3 and muon.adjust_lr == "match_rms_adamw" and muon.nesterov
    # match_rms_adamw: a 64 x 20 matrix's step is scaled by 0.2 sqrt(64) = 1.6 (Liu et al. 2025)
    assert muon.lr_ratio((64, 20)) == pytest.approx(1.6, rel=4 * np.finfo(float).eps)
    # a test function's point (key "xy") is not a matrix: AdamW, exactly as AdamW alone
    point, alone = {"xy": np.array([1.0, -2.0])}, {"xy": np.array([1.0, -2.0])}
    opt.update(point, {"xy": np.array([0.5, 0.25])})
    AdamW(lr=1e-3).update(alone, {"xy": np.array([0.5, 0.25])})
    np.testing.assert_array_equal(point["xy"], alone["xy"])


def test_hyperparameters_rebuild_it_and_the_state_dict_resumes_bit_for_bit():
    opt = create_optimizer("muon+adamw", lr=0.02, muon_lr_ratio=0.5, momentum=0.9, beta2=0.99)
    assert MuonAdamW(**opt.hyperparameters).hyperparameters == opt.hyperparameters
    json.dumps(opt.hyperparameters)  # a sweep stores them as JSON
    params, rng = _params(), np.random.default_rng(5)
    for _ in range(4):
        opt.update(params, _grads(rng))
    sd = json.loads(json.dumps({**opt.state_dict(), "state": {}}))  # the settings travel as plain data
    resumed = optimizer_from_state_dict({**sd, "state": opt.state_dict()["state"]})
    assert isinstance(resumed, Partition)
    a, b = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in params.items()}
    for _ in range(4):
        g = _grads(rng)
        opt.update(a, g)
        resumed.update(b, g)
    for k in SHAPES:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan, True, "2"])
def test_bad_muon_lr_ratio_names_it(bad):
    with pytest.raises(ValueError, match="muon_lr_ratio"):
        MuonAdamW(muon_lr_ratio=bad)


def test_inner_settings_are_checked_and_typos_refused():
    with pytest.raises(ValueError, match="beta2"):
        MuonAdamW(beta2=1.5)
    with pytest.raises(TypeError):
        MuonAdamW(muon_lr=0.02)  # not a parameter: no **kwargs swallowing it


def test_a_schedule_drives_both_parts_and_cannot_be_scaled():
    sched = CosineDecay(lr=1e-2, decay_steps=10)
    got = _run(MuonAdamW(lr=sched), steps=6)
    want = _run(Partition({"W*": Muon(lr=sched, weight_decay=0.01, adjust_lr="match_rms_adamw"),
                           "*": AdamW(lr=sched)}), steps=6)
    for k in SHAPES:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    with pytest.raises(ValueError, match="muon_lr_ratio"):
        MuonAdamW(lr=sched, muon_lr_ratio=2.0)


def test_a_nan_anywhere_changes_nothing_anywhere():
    opt = MuonAdamW(lr=1e-2)
    params = _params()
    opt.update(params, _grads(np.random.default_rng(1)))
    before = {k: v.copy() for k, v in params.items()}
    state = {k: {s: np.copy(a) for s, a in v.items()} for k, v in opt.state.items()}
    g = _grads(np.random.default_rng(2))
    g["b2"][3] = np.nan
    with pytest.raises(npoptim.NonFiniteGradientError, match="b2"):
        opt.update(params, g)
    for k in SHAPES:
        np.testing.assert_array_equal(params[k], before[k])
        for s, a in state[k].items():
            np.testing.assert_array_equal(opt.state[k][s], a)


# --- the registry: names, aliases, "all" -----------------------------------------------------------


def test_names_aliases_and_the_issue_example():
    assert get_optimizer("Muon+AdamW") is MuonAdamW and COMPOSITES == {"muon+adamw": MuonAdamW}
    assert registry_name("ScheduleFree-AdamW") == "schedulefreeadamw" == registry_name("schedulefreeadamw")
    assert select_optimizers(["adamw", "muon+adamw", "schedulefree-adamw", "lion", "lamb", "prodigy"]) == [
        "adamw", "muon+adamw", "schedulefreeadamw", "lion", "lamb", "prodigy"]
    with pytest.raises(ValueError, match="twice"):
        select_optimizers(["schedulefree-adamw", "schedulefreeadamw"])
    with pytest.raises(ValueError, match="unknown optimizer 'muon\\+adam'.*muon\\+adamw"):
        select_optimizers(["muon+adam"])


def test_all_is_every_rule_that_takes_any_dict_of_real_parameters():
    """The claim behind ``--optimizers all``, per class: the element-wise rules, the whole-tensor rules but
    Muon (2-D only, refused on a vector: the reason it is left out) and the composites."""
    assert list(ALL_OPTIMIZERS) == [*OPTIMIZERS, "adafactor", "lamb", "lars", "prodigy", "muon+adamw"]
    assert set(TENSOR_OPTIMIZERS) - set(ALL_OPTIMIZERS) == {"muon"}
    mixed = {"W1": (5, 3), "b1": (3,), "xy": (2,), "s": ()}
    for name in ALL_OPTIMIZERS:
        opt = create_optimizer(name)
        params = {k: np.ones(s) for k, s in mixed.items()}
        opt.update(params, {k: np.full(s, 0.5) for k, s in mixed.items()})
        moved = [k for k in mixed if not np.array_equal(params[k], np.ones(mixed[k]))]
        assert moved == list(mixed), f"{name}: only {moved} moved"
    with pytest.raises(ValueError, match="Partition"):
        create_optimizer("muon").update({"b": np.ones(3)}, {"b": np.ones(3)})


# --- the faces: training, trajectories, sweeps, CLI -------------------------------------------------


def test_training_and_trajectories_take_the_issue_example(tmp_path):
    from npoptim.experiments import training
    from npoptim.experiments.trajectories import run_trajectories
    from npoptim.problems.data import load_digits

    names = ["adamw", "muon+adamw", "schedulefree-adamw", "lion", "lamb", "prodigy"]
    chosen = training._resolve_optimizers(names, {"schedulefree-adamw": 0.002})
    assert chosen["schedulefreeadamw"] == 0.002 and chosen["prodigy"] == 1.0  # Prodigy's lr is a multiplier
    res = training.run_training(load_digits(), optimizers=names, steps=20, seeds=1, hidden=(8,))
    assert [r["optimizer"] for r in res.results["table"]] == select_optimizers(names)
    assert all(r["diverged"] == 0 for r in res.results["table"])
    traj = run_trajectories(tmp_path, optimizers=names, steps=3, theory_steps=10)
    assert list(traj["optimizers"]) == select_optimizers(names)


def test_schedule_free_is_evaluated_at_its_average():
    """The engine records (and returns) schedule-free's x, not its training point y -- without touching y."""
    from npoptim import ScheduleFreeAdamW
    from npoptim.engine.training import evaluation_point

    opt, params = ScheduleFreeAdamW(lr=0.1), {"w": np.array([1.0, 2.0])}
    for g in ([1.0, -1.0], [0.5, 2.0], [-1.0, 0.25]):
        opt.update(params, {"w": np.array(g)})
    y = params["w"].copy()
    x = evaluation_point(opt, params)["w"]
    np.testing.assert_array_equal(x, opt.state["w"]["x"])  # the average, as the paper evaluates
    np.testing.assert_array_equal(params["w"], y)  # training point untouched, bit for bit
    assert opt.train_mode and not np.array_equal(x, y)
    plain = {"w": np.ones(2)}
    assert evaluation_point(AdamW(), plain) is plain


def test_sweep_spaces_and_configs_for_the_new_entries():
    from npoptim.sweeps.problems import make_config, run_config
    from npoptim.sweeps.space import sample_configs, tuned_dimensions

    assert [d.name for d in tuned_dimensions("muon+adamw")] == ["muon_lr_ratio"]
    for name in ("muon+adamw", "prodigy", "lamb", "lars", "adafactor", "schedulefree-adamw"):
        for cfg in sample_configs(name, 4, method="random", lr_range=(1e-4, 1.0), rng=np.random.default_rng(0)):
            config = make_config("booth", {"start_jitter": 0.1, "grad_noise": 0.0}, registry_name(name), cfg, 0, 5)
            json.dumps(config, allow_nan=False)  # Prodigy's growth_rate=inf is stored as None
            out = run_config(json.loads(json.dumps(config)))
            assert out["status"] == "ok", out.get("error")
    ratios = [c["muon_lr_ratio"] for c in sample_configs("muon+adamw", 2000, method="random", lr_range=(1e-3, 1.0),
                                                          rng=np.random.default_rng(1))]
    assert 0.1 <= min(ratios) and max(ratios) <= 10.0 and abs(np.median(np.log10(ratios))) < 0.1  # log-uniform


def test_sweep_trains_the_composite_on_digits():
    from npoptim.sweeps.problems import make_config, problem_options, run_config

    opts = problem_options("digits", start_jitter=0.0, grad_noise=0.0, hidden=(8,), batch_size=32)
    out = run_config(make_config("digits", opts, "muon+adamw", {"lr": 1e-2}, 0, 30))
    assert out["status"] == "ok", out.get("error")
    assert out["final"] < out["curve"][0]  # it trains


def test_compare_cli_takes_the_issue_example(tmp_path):
    from npoptim.cli import main

    out = tmp_path / "r"
    rc = main(["compare", "--out", str(out), "--seeds", "1", "--steps", "10", "--quiet",
               "--optimizers", "adamw,muon+adamw,schedulefree-adamw,lion,lamb,prodigy", "--lr", "lamb=0.005"])
    assert rc == 0
    payload = json.loads((out / "results.json").read_text())
    assert payload["training"]["config"]["optimizers"] == select_optimizers(
        ["adamw", "muon+adamw", "schedulefree-adamw", "lion", "lamb", "prodigy"])
    assert payload["training"]["config"]["lrs"]["lamb"] == 0.005
    assert "--optimizers adamw,muon+adamw" in payload["command"]
    assert list(payload["trajectories"]["optimizers"]) == payload["training"]["config"]["optimizers"]


def test_compare_cli_refuses_an_unknown_name_before_running(tmp_path, capsys):
    from npoptim.cli import main

    out = tmp_path / "r"
    rc = main(["compare", "--out", str(out), "--optimizers", "muon+adam", "--quiet"])
    assert rc != 0 and not out.exists()
    assert "muon+adam" in capsys.readouterr().err
