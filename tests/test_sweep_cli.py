"""``npoptim sweep`` end to end: SIGKILL and Ctrl-C part-way then resume, failed runs, report-only mode."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from npoptim import Optimizer
from npoptim.cli import main
from npoptim.sweeps import problems
from npoptim.sweeps.execute import JoblibBackend
from npoptim.sweeps.protocol import SweepSpec, rerun_plan, run_sweep, select_best, summarise, tuning_plan
from npoptim.sweeps.store import Store, config_key
from processes import interruptible

SWEEP = ["--problems", "booth", "rosenbrock", "--optimizers", "sgd", "adam",
         "--budget", "3", "--steps", "1500", "--seeds", "2"]
N_RUNS = 2 * 2 * 3 + 2 * 2 * 2  # tuning + reruns


def _rows(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def _start(db: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "npoptim.cli", "sweep", *SWEEP, "--db", str(db), "--n-jobs", "2", "--quiet",
           "--no-report"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=interruptible)


def _wait_for_rows(proc: subprocess.Popen, db: Path, at_least: int, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = _rows(db)
        if n >= at_least:
            return n
        if proc.poll() is not None:
            pytest.fail(f"sweep exited early ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"the sweep stored fewer than {at_least} rows in {timeout} s")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The same sweep, run in one go (in this process)."""
    d = tmp_path_factory.mktemp("whole")
    assert main(["sweep", *SWEEP, "--db", str(d / "s.db"), "--n-jobs", "1", "--quiet", "--out", str(d / "r")]) == 0
    return d


def _snapshot(db: Path) -> dict:
    with Store(db, create=False) as store:
        return {r.key: (r.attempts, r.finished_at, r.final, r.curve.tobytes()) for r in store.records()}


def test_sigkill_then_resume_equals_uninterrupted(tmp_path, uninterrupted):
    db = tmp_path / "s.db"
    proc = _start(db)
    _wait_for_rows(proc, db, 3)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its loky workers, no chance to clean up
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    before = _snapshot(db)
    assert 3 <= len(before) < N_RUNS, "the sweep finished before it was killed; nothing was tested"

    assert main(["sweep", "--resume", str(db), "--n-jobs", "1", "--quiet", "--out", str(tmp_path / "r")]) == 0
    after = _snapshot(db)
    assert len(after) == N_RUNS
    # exactly the planned runs: a resume by other code (other run keys) would be refused, not stored beside
    with Store(db, create=False) as store:
        spec = SweepSpec.from_json(store.get_meta("spec"))
        plan = tuning_plan(spec)
        planned = {config_key(c) for e in plan for c in e.configs}
        planned |= {config_key(c) for c in rerun_plan(spec, select_best(spec, plan, store.get(planned)))}
    assert set(after) == planned
    # finished runs were neither redone nor lost
    assert {k: after[k] for k in before} == before
    assert all(v[0] == 1 for v in after.values())
    # same numbers as the uninterrupted sweep: every run, and the rendered table
    whole = _snapshot(uninterrupted / "s.db")
    assert {k: v[2:] for k, v in after.items()} == {k: v[2:] for k, v in whole.items()}
    resumed = json.loads((tmp_path / "r" / "results.json").read_text())
    expected = json.loads((uninterrupted / "r" / "results.json").read_text())
    assert resumed == expected and resumed["complete"]


def test_ctrl_c_stops_cleanly_and_resumes(tmp_path):
    db = tmp_path / "s.db"
    proc = _start(db)
    _wait_for_rows(proc, db, 2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the sweep did not stop on SIGINT")
    n = _rows(db)
    if proc.returncode == 0:  # the signal arrived after the last run: nothing to resume
        assert n == N_RUNS
    else:
        assert proc.returncode == 130, err.decode()[-2000:]
        assert b"--resume" in err
    assert main(["sweep", "--resume", str(db), "--n-jobs", "1", "--quiet", "--no-report"]) == 0
    with Store(db) as store:
        assert store.count("ok") == N_RUNS and store.integrity_check() == "ok"


def test_report_runs_no_optimizer(tmp_path, uninterrupted, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("--report must not run anything")

    monkeypatch.setattr(problems, "run_config", refuse)
    monkeypatch.setattr(Optimizer, "update", refuse)
    out = tmp_path / "again"
    assert main(["sweep", "--report", str(uninterrupted / "s.db"), "--out", str(out), "--quiet"]) == 0
    assert (out / "results.json").read_text() == (uninterrupted / "r" / "results.json").read_text()
    assert (out / "report.md").read_text() == (uninterrupted / "r" / "report.md").read_text()
    for name in ("sweep_booth.png", "sweep_rosenbrock.png", "performance_profile.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_table_matches_the_store(uninterrupted):
    """The table's numbers are the stored runs' (recomputed here from the rows, not from the summary code)."""
    import numpy as np

    results = json.loads((uninterrupted / "r" / "results.json").read_text())
    with Store(uninterrupted / "s.db") as store:
        recs = store.records()
    for problem, data in results["problems"].items():
        for opt, row in data["optimizers"].items():
            finals = [r.final for r in recs if r.config["problem"] == problem and r.config["optimizer"] == opt
                      and r.config["seed"] >= 1000]
            assert len(finals) == 2
            mean = float(np.mean(finals))
            if np.isfinite(mean):
                # bit-exact: a mean of 2 is (a + b) / 2 -- one correctly rounded, commutative addition
                # and an exact halving -- whichever order the two runs are listed in
                assert row["final_mean"] == mean
            else:  # a diverged seed: shown as such, never as a number
                assert row["final_mean"] is None and row["diverged"] >= 1
            tuning = [r.final for r in recs if r.config["problem"] == problem and r.config["optimizer"] == opt
                      and r.config["seed"] == 0]
            best = min(tuning)  # one tuning seed: the score is the best final value
            assert row["tuning_score"] == (best if np.isfinite(best) else None)


def test_failed_runs_are_recorded_and_retried(tmp_path):
    spec = SweepSpec(problems=("booth",), optimizers=("sgd", "adam"), budget=2, steps=20, seeds=2)

    def flaky(config):
        if config["optimizer"] == "sgd":
            return {"status": "failed", "error": "RuntimeError: injected"}
        return problems.run_config(config)

    with Store(tmp_path / "s.db") as store:
        backend = JoblibBackend(n_jobs=1)
        assert run_sweep(spec, store, backend, runner=flaky) == 4 + 4
        assert store.count("failed") == 4  # 2 tuning + 2 reruns of sgd
        assert all("injected" in r.error for r in store.records() if not r.ok)
        summary = summarise(spec, store)
        assert summary["problems"]["booth"]["optimizers"]["sgd"]["rerun_failed"] == 2
        assert run_sweep(spec, store, backend, runner=flaky) == 0  # failed runs are not redone by default
        assert run_sweep(spec, store, backend, retry_failed=True) == 4
        assert store.count("failed") == 0 and store.count("ok") == 8
    # an exception inside a run is caught by the runner and stored with its text
    res = problems.run_config({"problem": "booth", "npoptim_version": "0.0.0"})
    assert res["status"] == "failed" and "npoptim '0.0.0'" in res["error"]


def test_errors_are_one_line(tmp_path, capsys, uninterrupted):
    db = uninterrupted / "s.db"
    args = [a if a != "3" else "8" for a in SWEEP]  # a different budget
    assert main(["sweep", *args, "--db", str(db), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "different sweep" in err and "budget: 3 vs 8" in err
    assert main(["sweep", "--search", "grid", "--budget", "3", "--db", str(tmp_path / "g.db")]) == 2
    assert "multiple of 4" in capsys.readouterr().err
    assert main(["sweep", "--report", str(tmp_path / "none.db")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["sweep", "--resume", str(db), "--budget", "5", "--quiet"]) == 2
    assert "--budget cannot be combined with --resume" in capsys.readouterr().err


def test_a_sweep_of_another_version_is_reported_not_continued(tmp_path):
    import dataclasses

    spec = SweepSpec(problems=("booth",), optimizers=("sgd",), budget=2, steps=10, seeds=1)
    with Store(tmp_path / "s.db") as store:
        run_sweep(spec, store, JoblibBackend(n_jobs=1))
        old = dataclasses.replace(spec, npoptim_version="0.0.1")
        with pytest.raises(ValueError, match="npoptim 0.0.1"):
            run_sweep(old, store, JoblibBackend(n_jobs=1))
        # its runs are keyed with its own version: none of this version's rows count as its runs
        assert summarise(old, store)["runs"]["stored"] == 0
        assert summarise(spec, store)["runs"]["stored"] == 3


def test_a_sweep_of_other_code_is_reported_not_continued(tmp_path, capsys):
    """Same version, other source files: the resume is refused by the protocol, the CLI and each worker."""
    import dataclasses

    from npoptim._fingerprint import code_fingerprint

    spec = SweepSpec(problems=("booth",), optimizers=("sgd",), budget=2, steps=10, seeds=1)
    assert spec.npoptim_code == code_fingerprint()
    db = tmp_path / "s.db"
    with Store(db) as store:
        run_sweep(spec, store, JoblibBackend(n_jobs=1))
        other = dataclasses.replace(spec, npoptim_code="0" * 16)
        with pytest.raises(ValueError, match="npoptim code 0000000000000000"):
            run_sweep(other, store, JoblibBackend(n_jobs=1))
        assert summarise(other, store)["runs"]["stored"] == 0
        assert summarise(spec, store)["runs"]["stored"] == 3
        store.set_meta("spec", other.to_json())  # as if the sweep had been started by other code
    assert main(["sweep", "--resume", str(db), "--quiet", "--no-report"]) == 2
    assert "npoptim code 0000000000000000" in capsys.readouterr().err
    with Store(db, create=False) as store:
        assert store.count("ok") == 3  # nothing was run or stored
    res = problems.run_config(other.config("booth", "sgd", {"lr": 0.1}, 0))
    assert res["status"] == "failed" and "npoptim code '0000000000000000'" in res["error"]
    # a store written before the fingerprint was recorded reads as "not recorded", and is refused too
    legacy = json.loads(spec.to_json())
    del legacy["npoptim_code"]
    old = SweepSpec.from_json(json.dumps(legacy))
    assert old.npoptim_code is None and "npoptim_code" not in old.config("booth", "sgd", {"lr": 0.1}, 0)
    with Store(tmp_path / "legacy.db") as store, pytest.raises(ValueError, match="not recorded"):
        run_sweep(old, store, JoblibBackend(n_jobs=1))


def test_killed_local_worker_is_survived(tmp_path):
    """A loky worker SIGKILLed mid-run: finished runs stay stored, the rest go to a fresh pool."""
    from npoptim.sweeps.execute import execute
    from npoptim.sweeps.protocol import tuning_plan

    marker = tmp_path / "killed-once"
    spec = SweepSpec(problems=("booth",), optimizers=("sgd",), budget=6, steps=20, seeds=1)
    configs = [c for e in tuning_plan(spec) for c in e.configs]

    def kill_once(config):
        import os
        import signal

        from npoptim.sweeps.problems import run_config

        if config["hyperparameters"]["lr"] == configs[3]["hyperparameters"]["lr"] and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return run_config(config)

    with Store(tmp_path / "s.db") as store:
        n = execute(configs, store, JoblibBackend(n_jobs=2), runner=kill_once)
        assert marker.exists() and store.count("ok") == 6 and n == 6
