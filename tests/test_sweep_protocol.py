"""The protocol's selection and reruns, with a stand-in runner whose results are known in advance."""

import math

import numpy as np

from npoptim.sweeps.execute import JoblibBackend
from npoptim.sweeps.protocol import RERUN_SEED0, SweepSpec, rerun_plan, run_sweep, select_best, summarise, tuning_plan
from npoptim.sweeps.store import Store, config_key

SPEC = SweepSpec(problems=("booth", "beale"), optimizers=("sgd", "adam"), budget=6, steps=10, seeds=3, tune_seeds=2,
                 lr_range=(1e-4, 1.0))


def fake(config):
    """final = |log10(lr) + 2| + 0.01 seed (best lr: 1e-2); lr > 0.3 diverges on seed 1 only."""
    lr, seed = config["hyperparameters"]["lr"], config["seed"]
    diverged = lr > 0.3 and seed == 1
    final = math.inf if diverged else abs(math.log10(lr) + 2) + 0.01 * seed
    return {"status": "ok", "final": final, "diverged": diverged, "curve_x": np.array([0, 10]),
            "curve": np.array([10.0, final])}


def test_best_is_least_mean_score_and_reruns_use_fresh_seeds(tmp_path):
    with Store(tmp_path / "s.db") as store:
        run_sweep(SPEC, store, JoblibBackend(n_jobs=1), runner=fake)
        plan = tuning_plan(SPEC)
        recs = store.get(config_key(c) for e in plan for c in e.configs)
        best = select_best(SPEC, plan, recs)
        summary = summarise(SPEC, store)
        rec_by_key = {r.key: r for r in store.records()}
    for (p, o), (entry, score) in best.items():
        lrs = [e.tuned["lr"] for e in plan if e.problem == p and e.optimizer == o]
        expected = min(lrs, key=lambda lr: math.inf if lr > 0.3 else abs(math.log10(lr) + 2))
        assert entry.tuned["lr"] == expected
        assert score == abs(math.log10(expected) + 2) + 0.005  # mean over tuning seeds 0 and 1
    # a setting that diverged on one tuning seed scores inf (shown as None)
    sens = summary["problems"]["booth"]["sensitivity"]["adam"]
    assert all((s["score"] is None) == (s["hyperparameters"]["lr"] > 0.3) for s in sens)
    # reruns: the best setting, seeds 1000.., disjoint from the tuning seeds 0, 1
    reruns = rerun_plan(SPEC, best)
    assert sorted({c["seed"] for c in reruns}) == [RERUN_SEED0, RERUN_SEED0 + 1, RERUN_SEED0 + 2]
    for c in reruns:
        assert c["hyperparameters"]["lr"] == best[(c["problem"], c["optimizer"])][0].tuned["lr"]
        assert rec_by_key[config_key(c)].ok
    row = summary["problems"]["beale"]["optimizers"]["sgd"]
    lr = best[("beale", "sgd")][0].tuned["lr"]
    finals = [abs(math.log10(lr) + 2) + 0.01 * s for s in SPEC.rerun_seeds]
    assert row["final_mean"] == np.mean(finals) and row["final_std"] == np.std(finals)
    assert summary["complete"] and summary["runs"]["stored"] == SPEC.n_tuning_runs + SPEC.n_rerun_runs


def test_equal_budgets_and_the_same_settings_on_every_problem():
    plan = tuning_plan(SPEC)
    for p in SPEC.problems:
        for o in SPEC.optimizers:
            assert sum(e.problem == p and e.optimizer == o for e in plan) == SPEC.budget
    settings = {p: [e.tuned for e in plan if e.problem == p and e.optimizer == "adam"] for p in SPEC.problems}
    assert settings["booth"] == settings["beale"]
    # adding an optimizer changes no other optimizer's draws
    more = SweepSpec(problems=SPEC.problems, optimizers=("momentum", "sgd", "adam"), budget=6, steps=10,
                     lr_range=SPEC.lr_range)
    assert [e.tuned for e in tuning_plan(more) if e.optimizer == "adam" and e.problem == "booth"] == settings["booth"]
