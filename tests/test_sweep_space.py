"""Search spaces: every registry entry gets one, random draws are log-uniform and seeded, budgets are equal."""

import math

import numpy as np
import pytest

from npoptim import ALL_OPTIMIZERS, OPTIMIZERS, SGD, get_optimizer
from npoptim.sweeps.protocol import SweepSpec, tuning_plan
from npoptim.sweeps.space import TUNED, grid_multiple, sample_configs, tuned_dimensions
from numerics import gamma


class Unlisted(SGD):
    """An optimizer added to the registry later, unknown to the search-space table."""


#: Every name a sweep may tune: what ``--optimizers all`` selects, and Muon (2-D matrices only: tunable, but a
#: sweep of a problem with a vector fails its runs, so it is not in "all").
TUNABLE = [*ALL_OPTIMIZERS, "muon"]


def test_table_entries_are_hyperparameters_of_their_optimizer():
    for name in TUNABLE:
        defaults = get_optimizer(name)().hyperparameters
        for d in tuned_dimensions(name):
            assert d.name in defaults
            for v in d.grid:
                get_optimizer(name)(**{d.name: v})  # valid values


def test_unlisted_optimizer_falls_back_to_lr_only(monkeypatch):
    monkeypatch.setitem(OPTIMIZERS, "unlisted", Unlisted)
    assert "unlisted" not in TUNED
    assert tuned_dimensions("unlisted") == ()
    cfgs = sample_configs("unlisted", 5, method="random", lr_range=(1e-3, 1.0), rng=np.random.default_rng(0))
    assert [set(c) for c in cfgs] == [{"lr"}] * 5
    spec = SweepSpec(problems=("booth",), optimizers=("unlisted", "adam"), budget=3, steps=5, seeds=1)
    plan = tuning_plan(spec)
    assert sum(e.optimizer == "unlisted" for e in plan) == sum(e.optimizer == "adam" for e in plan) == 3


def test_random_search_is_seeded_and_log_uniform():
    a = sample_configs("adam", 4000, method="random", lr_range=(1e-4, 1.0), rng=np.random.default_rng(7))
    b = sample_configs("adam", 4000, method="random", lr_range=(1e-4, 1.0), rng=np.random.default_rng(7))
    assert a == b
    lr = np.array([c["lr"] for c in a])
    assert lr.min() >= 1e-4 and lr.max() <= 1.0
    # log-uniform on [1e-4, 1]: each of the four decades holds 1/4 of the mass (binomial sd ~0.007 at n=4000)
    frac = np.histogram(np.log10(lr), bins=[-4, -3, -2, -1, 0])[0] / len(lr)
    np.testing.assert_allclose(frac, 0.25, atol=0.04)
    # beta2 = 1 - u, u log-uniform on [1e-4, 1e-1]: P(beta2 > 0.999) = P(u < 1e-3) = 1/3
    beta2 = np.array([c["beta2"] for c in a])
    assert abs(np.mean(beta2 > 0.999) - 1 / 3) < 0.04


def test_random_search_needs_a_generator():
    with pytest.raises(TypeError, match="np.random.Generator"):
        sample_configs("sgd", 3, method="random", lr_range=(1e-3, 1.0), rng=None)


def test_grid_is_cartesian_and_log_spaced():
    cfgs = sample_configs("momentum", 6, method="grid", lr_range=(1e-3, 1e-1))
    assert len(cfgs) == 6
    lrs = sorted({c["lr"] for c in cfgs})
    # geomspace keeps the end points exactly; the middle is 10**y with y from two log10s (<= 2 ULP of
    # 3 in y: 2.3 * 8.9e-16 = 18u relative) and pow (<= 4 ULP = 8u): within gamma_32
    np.testing.assert_allclose(lrs, [1e-3, 1e-2, 1e-1], rtol=gamma(32))
    assert sorted((c["lr"], c["momentum"]) for c in cfgs) == sorted(
        (lr, m) for lr in lrs for m in tuned_dimensions("momentum")[0].grid
    )


def test_grid_budget_must_fit_every_optimizer():
    m = grid_multiple(list(ALL_OPTIMIZERS))
    assert m == math.lcm(*(math.prod(len(d.grid) for d in tuned_dimensions(o)) for o in ALL_OPTIMIZERS))
    with pytest.raises(ValueError, match=f"multiple of {m}"):
        SweepSpec(problems=("booth",), optimizers=tuple(ALL_OPTIMIZERS), search="grid", budget=m + 1)
    spec = SweepSpec(problems=("booth",), optimizers=tuple(ALL_OPTIMIZERS), search="grid", budget=2 * m, steps=3)
    counts = {o: sum(e.optimizer == o for e in tuning_plan(spec)) for o in ALL_OPTIMIZERS}
    assert set(counts.values()) == {2 * m}


def test_lr_space_tunes_lr_only():
    assert tuned_dimensions("adam", "lr") == ()
    cfgs = sample_configs("adam", 3, method="random", lr_range=(1e-3, 1.0), rng=np.random.default_rng(0), space="lr")
    assert all(set(c) == {"lr"} for c in cfgs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"budget": 0}, "budget"),
        ({"lr_range": (1.0, 0.1)}, "lr range"),
        ({"lr_range": (0.0, 0.1)}, "lr range"),
        ({"optimizers": ("adamw2",)}, "unknown optimizer 'adamw2'"),
        ({"problems": ("sphere",)}, "sphere"),
        ({"search": "bayes"}, "search"),
        ({"optimizers": ("sgd", "SGD")}, "twice"),
        ({"profile_tol": 1.5}, "profile_tol"),
    ],
)
def test_bad_spec_named(kwargs, match):
    base = {"problems": ("booth",), "optimizers": ("sgd",)}
    with pytest.raises(ValueError, match=match):
        SweepSpec(**{**base, **kwargs})


@pytest.mark.parametrize("method", ["random", "grid"])
def test_every_registered_optimizer_has_a_valid_search_space(method):
    """Every table entry names real hyperparameters, and every drawn setting builds a valid optimizer."""
    from npoptim import create_optimizer

    assert set(TUNED) == set(TUNABLE)  # no registered optimizer falls back to lr-only by oversight
    for name in TUNABLE:
        configs = sample_configs(name, 8, method=method, lr_range=(1e-4, 1.0), rng=np.random.default_rng(0))
        assert len(configs) == 8
        for cfg in configs:
            create_optimizer(name, **cfg)  # raises on an unknown name or an invalid value
