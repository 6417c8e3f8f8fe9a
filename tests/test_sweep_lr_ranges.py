"""Per-optimizer learning-rate ranges of a sweep: the table, the overrides, the errors, what the store
records, the refused resume, and the report's range table and edge warnings."""

import hashlib
import inspect
import json
import math

import numpy as np
import pytest

from npoptim import Adafactor, get_optimizer
from npoptim.cli import main
from npoptim.cli.sweep import parse_lr_ranges
from npoptim.sweeps.execute import JoblibBackend
from npoptim.sweeps.protocol import SweepSpec, lr_edge, open_sweep, run_sweep, search_configs, summarise, tuning_plan
from npoptim.sweeps.report import write_report
from npoptim.sweeps.space import LR_DECADES, LR_RANGES, default_lr_range, sample_configs
from npoptim.sweeps.store import Store
from test_sweep_space import TUNABLE

BASE = {"problems": ("booth",), "budget": 4, "steps": 5, "seeds": 1}


# --- the table --------------------------------------------------------------------------------------


def test_every_optimizer_gets_its_range_from_the_one_table():
    """Listed: the table's entry; otherwise LR_DECADES decades either side of the constructor's default lr."""
    assert LR_DECADES == 2
    for name in TUNABLE:
        lr0 = inspect.signature(get_optimizer(name)).parameters["lr"].default
        lo, hi = default_lr_range(name)
        if name in LR_RANGES:
            assert (lo, hi) == LR_RANGES[name]
        else:
            assert lo == pytest.approx(lr0 / 100, rel=1e-12) and hi == pytest.approx(lr0 * 100, rel=1e-12)
        assert lo <= lr0 <= hi, name  # the default lr lies in its range
    # the values the docs state, written out (the old common range for the book's rules)
    assert default_lr_range("sgd") == default_lr_range("rmsprop") == (1e-4, 1.0)
    assert default_lr_range("adam") == (1e-5, 0.1) and default_lr_range("lion") == (1e-6, 1e-2)
    assert default_lr_range("lars") == default_lr_range("schedulefree-sgd") == (0.01, 100.0)
    assert default_lr_range("Prodigy") == (0.01, 10.0)  # its natural multiplier 1, and the study's best lrs
    assert default_lr_range("muon+adamw") == default_lr_range("adamw")  # its lr is AdamW's


def test_adafactor_range_stops_where_lr_stops_mattering():
    """The table's reason for Adafactor's upper end 1: rho_t = min(lr, 1/sqrt t), so lr 1 and lr 7 are one run."""
    assert default_lr_range("adafactor")[1] == 1.0
    rng = np.random.default_rng(0)
    grads = [{"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)} for _ in range(5)]
    runs = []
    for lr in (1.0, 7.0):
        p = {"W": np.ones((3, 4)), "b": np.ones(4)}
        opt = Adafactor(lr=lr)
        for g in grads:
            opt.update(p, {k: v.copy() for k, v in g.items()})
        runs.append(p)
    for k in ("W", "b"):  # bit equality: the same operations on the same numbers once min() has picked 1/sqrt t
        np.testing.assert_array_equal(runs[0][k], runs[1][k])
    below, one = ({"W": np.ones((3, 4))} for _ in range(2))
    Adafactor(lr=0.5).update(below, {"W": grads[0]["W"].copy()})
    Adafactor(lr=1.0).update(one, {"W": grads[0]["W"].copy()})
    assert not np.array_equal(below["W"], one["W"])  # below 1, lr matters from the first step


def test_a_sweep_draws_each_optimizer_in_its_own_range():
    spec = SweepSpec(optimizers=("sgd", "prodigy", "adam"), **{**BASE, "budget": 200})
    drawn = search_configs(spec)
    for name in spec.optimizers:
        lo, hi = default_lr_range(name)
        lrs = np.array([c["lr"] for c in drawn[name]])
        assert spec.lr_ranges[name] == (lo, hi)
        assert lrs.min() >= lo and lrs.max() <= hi
        # log-uniform: each half (in log) of the range holds about half the draws; binomial(200, 1/2) has
        # std 7.1, so 60 .. 140 is more than 5 std either side
        mid = math.sqrt(lo * hi)
        assert 60 < (lrs < mid).sum() < 140, name
    assert spec.lr_range is None


# --- overrides -------------------------------------------------------------------------------------


def test_the_global_range_still_applies_to_everyone_and_draws_as_before():
    spec = SweepSpec(optimizers=("sgd", "prodigy"), lr_range=(1e-3, 0.5), **BASE)
    assert spec.lr_ranges == {"sgd": (1e-3, 0.5), "prodigy": (1e-3, 0.5)}
    # backwards compatible: the same configurations as the one shared range always gave
    # the protocol's documented generator: default_rng([search_seed, first 4 bytes of sha256(name), little-endian])
    rng = np.random.default_rng([0, int.from_bytes(hashlib.sha256(b"prodigy").digest()[:4], "little")])
    assert search_configs(spec)["prodigy"] == sample_configs("prodigy", 4, method="random", lr_range=(1e-3, 0.5),
                                                              rng=rng)


def test_a_per_optimizer_range_wins_and_moves_nobody_else():
    plain = SweepSpec(optimizers=("sgd", "prodigy", "schedulefreeadamw"), lr_range=(1e-3, 0.5), **BASE)
    spec = SweepSpec(optimizers=("sgd", "prodigy", "schedulefreeadamw"), lr_range=(1e-3, 0.5),
                     lr_ranges={"PRODIGY": (0.3, 3.0), "schedulefree-adamw": (1e-4, 1e-2)}, **BASE)
    assert spec.lr_ranges == {"sgd": (1e-3, 0.5), "prodigy": (0.3, 3.0), "schedulefreeadamw": (1e-4, 1e-2)}
    a, b = search_configs(plain), search_configs(spec)
    assert a["sgd"] == b["sgd"]  # the others' draws are untouched
    assert all(0.3 <= c["lr"] <= 3.0 for c in b["prodigy"]) and a["prodigy"] != b["prodigy"]
    # without a global range, the others keep their table's range
    spec = SweepSpec(optimizers=("sgd", "prodigy"), lr_ranges={"prodigy": (0.3, 3.0)}, **BASE)
    assert spec.lr_ranges == {"sgd": (1e-4, 1.0), "prodigy": (0.3, 3.0)}


@pytest.mark.parametrize(
    ("lr_range", "lr_ranges", "match"),
    [
        (None, {"lars": (0.1, 1.0)}, r"lr range given for 'lars', which is not among the sweep's optimizers"),
        (None, {"prodigee": (0.1, 1.0)}, r"unknown optimizer 'prodigee'"),
        (None, {"prodigy": (10.0, 0.1)}, r"invalid lr range for prodigy \(10\.0, 0\.1\): need 0 < low < high"),
        (None, {"prodigy": (0.0, 1.0)}, r"invalid lr range for prodigy \(0\.0, 1\.0\)"),
        (None, {"prodigy": (0.1, math.inf)}, r"invalid lr range for prodigy \(0\.1, inf\)"),
        (None, {"prodigy": (math.nan, 1.0)}, r"invalid lr range for prodigy \(nan, 1\.0\)"),
        (None, {"prodigy": ("a", 1.0)}, r"invalid lr range for prodigy \('a', 1\.0\): need two numbers"),
        (None, {"prodigy": (0.1,)}, r"invalid lr range for prodigy \(0\.1,\): need two numbers"),
        (None, {"schedulefree-adamw": (1e-3, 1e-2), "ScheduleFreeAdamW": (1e-3, 1e-1)}, "given twice"),
        ((1.0, 0.1), None, r"invalid lr range \(1\.0, 0\.1\)"),
    ],
)
def test_bad_ranges_are_refused_naming_the_optimizer_and_value(lr_range, lr_ranges, match):
    with pytest.raises(ValueError, match=match):
        SweepSpec(optimizers=("sgd", "prodigy", "schedulefreeadamw"), lr_range=lr_range, lr_ranges=lr_ranges, **BASE)


def test_the_cli_syntax():
    assert parse_lr_ranges(None) == (None, {})
    assert parse_lr_ranges(["1e-4", "1"]) == ((1e-4, 1.0), {})
    assert parse_lr_ranges(["prodigy=0.1:10", "1e-3", "0.5", "lars=1e-2:1e1"]) == (
        (1e-3, 0.5), {"prodigy": (0.1, 10.0), "lars": (0.01, 10.0)})
    for tokens, match in [
        (["prodigy=0.1"], r"--lr-range 'prodigy=0\.1': expected NAME=LOW:HIGH"),
        (["prodigy=a:1"], r"--lr-range 'prodigy=a:1': expected NAME=LOW:HIGH"),
        (["=0.1:1"], r"--lr-range '=0\.1:1'"),
        (["1e-4"], r"two numbers LOW HIGH, got 1: 0\.0001"),
        (["1e-4", "1", "10"], r"got 3"),
        (["big"], r"--lr-range 'big': expected a number"),
        (["prodigy=0.1:1", "Prodigy=1:2"], r"'Prodigy' given twice"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_lr_ranges(tokens)


def test_cli_errors_are_one_line(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    args = ["sweep", "--problems", "booth", "--optimizers", "sgd", "prodigy", "--db", db, "--quiet"]
    assert main([*args, "--lr-range", "prodigy=1:0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid lr range for prodigy (1.0, 0.5)" in err
    assert main([*args, "--lr-range", "lars=1:2"]) == 2
    assert "'lars', which is not among the sweep's optimizers" in capsys.readouterr().err
    assert main([*args, "--lr-range", "prodigy=0.1"]) == 2
    assert "expected NAME=LOW:HIGH" in capsys.readouterr().err
    assert not (tmp_path / "s.db").exists()  # refused before anything was created


# --- recorded, and a changed range refused ----------------------------------------------------------


def test_the_store_records_every_range_and_old_stores_read_as_before():
    spec = SweepSpec(optimizers=("sgd", "prodigy"), lr_ranges={"prodigy": (0.3, 3.0)}, **BASE)
    stored = json.loads(spec.to_json())
    assert stored["lr_ranges"] == {"sgd": [1e-4, 1.0], "prodigy": [0.3, 3.0]} and stored["lr_range"] is None
    again = SweepSpec.from_json(spec.to_json())
    assert again == spec and again.differences(spec) == [] and tuning_plan(again) == tuning_plan(spec)
    # a store written before per-optimizer ranges: one lr_range, no lr_ranges -- every optimizer used it
    legacy = {**stored, "lr_range": [1e-3, 0.5]}
    del legacy["lr_ranges"]
    old = SweepSpec.from_json(json.dumps(legacy))
    assert old.lr_ranges == {"sgd": (1e-3, 0.5), "prodigy": (1e-3, 0.5)}
    assert tuning_plan(old) == tuning_plan(SweepSpec(optimizers=("sgd", "prodigy"), lr_range=(1e-3, 0.5), **BASE))


def test_a_different_range_is_refused_on_the_same_store(tmp_path):
    spec = SweepSpec(optimizers=("sgd", "prodigy"), lr_ranges={"prodigy": (0.3, 3.0)}, **BASE)
    with Store(tmp_path / "s.db") as store:
        open_sweep(store, spec)
        open_sweep(store, SweepSpec.from_json(spec.to_json()))  # the same sweep: accepted
        other = SweepSpec(optimizers=("sgd", "prodigy"), **BASE)
        with pytest.raises(ValueError, match=r"different sweep \(differs in lr range of prodigy: \[0\.3, 3\] vs "
                                             r"\[0\.01, 10\]\)"):
            open_sweep(store, other)
        everyone = SweepSpec(optimizers=("sgd", "prodigy"), lr_range=(1e-4, 1.0), **BASE)
        with pytest.raises(ValueError, match=r"lr_range: None vs \(0\.0001, 1\.0\); lr range of prodigy: "
                                             r"\[0\.3, 3\] vs \[0\.0001, 1\]"):
            open_sweep(store, everyone)


def test_the_cli_refuses_a_changed_range_and_a_range_with_resume(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    args = ["sweep", "--problems", "booth", "--optimizers", "sgd", "prodigy", "--budget", "2", "--steps", "5",
            "--seeds", "1", "--db", db, "--quiet", "--no-report", "--n-jobs", "1"]
    assert main([*args, "--lr-range", "prodigy=0.3:3"]) == 0
    with Store(db, create=False) as store:
        assert json.loads(store.get_meta("spec"))["lr_ranges"]["prodigy"] == [0.3, 3.0]
        n = store.count()
    assert main([*args, "--lr-range", "prodigy=0.3:4"]) == 2
    err = capsys.readouterr().err
    assert "different sweep" in err and "lr range of prodigy: [0.3, 3] vs [0.3, 4]" in err
    assert main([*args]) == 2  # the table's default is a different range too
    assert "lr range of prodigy: [0.3, 3] vs [0.01, 10]" in capsys.readouterr().err
    assert main(["sweep", "--resume", db, "--lr-range", "prodigy=0.3:3", "--quiet"]) == 2
    assert "--lr-range cannot be combined with --resume" in capsys.readouterr().err
    with Store(db, create=False) as store:
        assert store.count() == n  # nothing ran
    assert main(["sweep", "--resume", db, "--quiet", "--no-report", "--n-jobs", "1"]) == 0


# --- the report: ranges, and a best lr at an end -------------------------------------------------------


def fake(config):
    """sgd: final falls with lr (best: the highest); muon+adamw: rises (best: the lowest); prodigy: a
    valley at lr 1 (inside its range)."""
    lr, name = config["hyperparameters"]["lr"], config["optimizer"]
    final = {"sgd": 5.0 - math.log10(lr), "muon+adamw": 10.0 + math.log10(lr), "prodigy": abs(math.log10(lr))}[name]
    return {"status": "ok", "final": final, "diverged": False, "curve_x": np.array([0, 5]),
            "curve": np.array([20.0, final])}


def test_lr_edge():
    assert lr_edge([1e-3, 1e-2, 1e-1], 1e-3, 0.5) == "low"
    assert lr_edge([1e-3, 1e-2, 1e-1], 1e-1, 0.5) == "high"
    assert lr_edge([1e-3, 1e-2, 1e-1], 1e-2, 0.5) is None
    assert lr_edge([1e-3, 1e-2, 1e-1], 1e-3, math.inf) is None  # all diverged: no lr was "best"
    assert lr_edge([1e-2, 1e-2], 1e-2, 0.5) is None  # one lr tried: no direction


def test_the_report_shows_each_range_and_warns_at_an_end(tmp_path):
    spec = SweepSpec(problems=("booth", "beale"), optimizers=("sgd", "prodigy", "muon+adamw"), search="grid",
                     space="lr", budget=5, steps=5, seeds=1, lr_ranges={"sgd": (1e-3, 1e-1)})
    with Store(tmp_path / "s.db") as store:
        run_sweep(spec, store, JoblibBackend(n_jobs=1), runner=fake)
        summary = summarise(spec, store)
    write_report(summary, tmp_path / "r")
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["lr_ranges"] == {
        "sgd": {"range": [1e-3, 0.1], "source": "set for this sweep"},
        "prodigy": {"range": [0.01, 10.0], "source": "table (LR_RANGES)"},
        "muon+adamw": {"range": [1e-5, 0.1], "source": "default lr × 10^±2"},
    }
    for p in spec.problems:
        rows = results["problems"][p]["optimizers"]
        # the grid's ends are the range's ends: sgd's best is 0.1, muon+adamw's 1e-5; prodigy's grid is
        # 10^(-2, -1.25, -0.5, 0.25, 1), the least |log10 lr| is at 10^0.25 (inside)
        assert rows["sgd"]["best"]["lr"] == pytest.approx(0.1, rel=1e-11) and rows["sgd"]["lr_at_edge"] == "high"
        assert rows["muon+adamw"]["best"]["lr"] == pytest.approx(1e-5, rel=1e-11)
        assert rows["muon+adamw"]["lr_at_edge"] == "low"
        assert rows["prodigy"]["best"]["lr"] == pytest.approx(10**0.25, rel=1e-11)
        assert rows["prodigy"]["lr_at_edge"] is None and rows["prodigy"]["lr_range"] == [0.01, 10.0]
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| SGD | [0.001, 0.1] | set for this sweep | booth (high), beale (high) |" in md
    assert "| Prodigy | [0.01, 10] | table (LR_RANGES) | — |" in md
    assert "| muon+adamw | [1e-05, 0.1] | default lr × 10^±2 | booth (low), beale (low) |" in md
    section = md.split("## booth")[1].split("## beale")[0]
    assert "- **SGD: best lr 0.1 is the highest tried** (range [0.001, 0.1])" in section
    assert "`--lr-range sgd=0.001:1`" in section
    assert "- **muon+adamw: best lr 1e-05 is the lowest tried**" in section and "muon+adamw=1e-06:0.1" in section
    assert "Prodigy: best lr" not in md
    assert "MuonAdamW" not in md  # the composite is named as the user selected it
