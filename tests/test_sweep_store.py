"""The SQLite run store: keys, WAL, durability rules, several writers at once."""

import hashlib
import json
import math
import multiprocessing
import sqlite3

import numpy as np
import pytest

from npoptim.sweeps.store import Store, canonical_json, config_key

CONFIG = {
    "problem": "booth",
    "problem_options": {"start_jitter": 0.1, "grad_noise": 0.0},
    "optimizer": "sgd",
    "hyperparameters": {"lr": 0.01, "weight_decay": 0.0, "on_nonfinite": "raise"},
    "seed": 3,
    "steps": 10,
    "npoptim_version": "0.1.0",
    "npoptim_code": "0123456789abcdef",
}


def _ok(final=1.5):
    return {"status": "ok", "final": final, "diverged": False, "curve_x": np.array([0, 5, 10]),
            "curve": np.array([3.0, 2.0, final]), "metrics": {"a": 1}, "wall_s": 0.1, "worker": "h:1"}


def test_key_is_sha256_of_sorted_compact_json():
    text = json.dumps(CONFIG, sort_keys=True, separators=(",", ":"))
    assert canonical_json(CONFIG) == text
    assert config_key(CONFIG) == hashlib.sha256(text.encode()).hexdigest()
    # every part of the configuration matters
    for change in ({"seed": 4}, {"steps": 11}, {"npoptim_version": "0.2.0"}, {"optimizer": "adam"},
                   {"npoptim_code": "fedcba9876543210"},
                   {"hyperparameters": {**CONFIG["hyperparameters"], "lr": 0.02}}, {"problem": "beale"}):
        assert config_key({**CONFIG, **change}) != config_key(CONFIG)
    # key order does not
    assert config_key(dict(reversed(list(CONFIG.items())))) == config_key(CONFIG)
    with pytest.raises(ValueError):
        canonical_json({"x": math.nan})


def test_wal_and_roundtrip(tmp_path):
    path = tmp_path / "s.db"
    with Store(path) as store:
        key = store.put(CONFIG, {**_ok(math.inf), "diverged": True})
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    with Store(path, create=False) as store:
        rec = store.get([key])[key]
    assert rec.config == CONFIG and rec.ok and rec.diverged and rec.final == math.inf
    np.testing.assert_array_equal(rec.curve_x, [0, 5, 10])
    assert rec.curve.dtype == np.float64 and rec.curve[-1] == math.inf
    assert rec.metrics == {"a": 1} and rec.attempts == 1


def test_ok_is_never_replaced_by_failed(tmp_path):
    with Store(tmp_path / "s.db") as store:
        key = store.put(CONFIG, {"status": "failed", "error": "ValueError: boom"})
        rec = store.get([key])[key]
        assert rec.status == "failed" and "boom" in rec.error
        store.put(CONFIG, _ok(0.25))
        store.put(CONFIG, {"status": "failed", "error": "later"})
        rec = store.get([key])[key]
        # exact: a stored float64 comes back unchanged (0.25 itself is exact in binary)
        assert rec.status == "ok" and rec.final == 0.25 and rec.error is None and rec.attempts == 2
        assert store.count() == 1
        with pytest.raises(ValueError, match="status"):
            store.put(CONFIG, {"status": "done"})


def test_missing_or_foreign_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Store(tmp_path / "none.db", create=False)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="not a usable SQLite"):
        Store(bad)


def _writer(path, worker, n):
    with Store(path, timeout=60) as store:
        for i in range(n):
            cfg = {**CONFIG, "seed": worker * 1000 + i}
            store.put(cfg, _ok(float(worker * 1000 + i)))
            # every writer also rewrites a shared failed key, contending for the same row
            store.put({**CONFIG, "seed": -1}, {"status": "failed", "error": f"w{worker}"})


def test_concurrent_writers(tmp_path):
    path = tmp_path / "s.db"
    Store(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 4
    with Store(path) as store:
        assert store.integrity_check() == "ok"
        assert store.count("ok") == 160 and store.count("failed") == 1
        recs = store.records()
        shared = [r for r in recs if r.config["seed"] == -1][0]
        assert shared.attempts == 160
        for r in recs:
            if r.ok:
                assert r.final == r.config["seed"]


def test_code_fingerprint_sees_every_edit(tmp_path):
    """The fingerprint is a function of the files' paths and bytes: a copy agrees, any edit differs."""
    import shutil
    from pathlib import Path

    import npoptim
    from npoptim._fingerprint import code_fingerprint, tree_fingerprint

    root = Path(npoptim.__file__).resolve().parent
    copy = tmp_path / "npoptim"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert tree_fingerprint(copy) == tree_fingerprint(root) == code_fingerprint()
    seen = {tree_fingerprint(copy)}
    target = copy / "optimizers" / "rules.py"
    target.write_bytes(target.read_bytes() + b"# a comment\n")  # an edit that changes no behaviour
    seen.add(tree_fingerprint(copy))
    (copy / "extra.py").write_text("")  # an added (empty) file
    seen.add(tree_fingerprint(copy))
    (copy / "extra.py").rename(copy / "extra2.py")  # a renamed one
    seen.add(tree_fingerprint(copy))
    (copy / "notes.txt").write_text("not code")  # a non-Python file is not part of it
    assert tree_fingerprint(copy) in seen
    assert len(seen) == 4
