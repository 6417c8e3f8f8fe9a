"""The run store: one SQLite file, one row per run, keyed by the hash of the run's configuration.

Schema (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`)::

    CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);   -- "spec": the sweep, as JSON
    CREATE TABLE runs (
        key          TEXT PRIMARY KEY,   -- sha256 hex of config (below)
        config       TEXT NOT NULL,      -- canonical JSON of the complete configuration
        problem      TEXT NOT NULL,
        optimizer    TEXT NOT NULL,
        seed         INTEGER NOT NULL,
        steps        INTEGER NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
        error        TEXT,               -- the exception and the end of its traceback, for 'failed'
        final        REAL,               -- the run's final metric (inf if it diverged)
        diverged     INTEGER,            -- 1 when the iterate or the loss became non-finite
        curve_x      BLOB,               -- int64 little-endian: the steps at which the metric was recorded
        curve        BLOB,               -- float64 little-endian: the metric at those steps
        metrics      TEXT,               -- JSON of any further numbers (accuracy, ...)
        wall_s       REAL,               -- seconds the run took on its worker
        worker       TEXT,               -- "host:pid" that ran it
        attempts     INTEGER NOT NULL,   -- how many results were written for this key
        finished_at  TEXT NOT NULL       -- UTC, ISO 8601
    );

The key is ``sha256(canonical_json(config))`` where ``canonical_json`` sorts
keys, uses no whitespace and refuses NaN/inf, and ``config`` holds the
optimizer, its complete hyperparameters, the problem and its options, the
seed, the step budget and the npoptim version.  The same run is therefore
never stored twice, and a changed setting is a different run.

Durability and concurrency: the database is in WAL mode (readers never block
the writer), ``synchronous=NORMAL`` (a committed transaction survives the
death of any process; only a power cut can lose the last ones), and every
write is one ``BEGIN IMMEDIATE`` transaction with a busy timeout, so several
processes may write at once.  A row with status ``ok`` is never replaced by a
later ``failed`` one.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Store", "RunRecord", "canonical_json", "config_key", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    problem TEXT NOT NULL,
    optimizer TEXT NOT NULL,
    seed INTEGER NOT NULL,
    steps INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error TEXT,
    final REAL,
    diverged INTEGER,
    curve_x BLOB,
    curve BLOB,
    metrics TEXT,
    wall_s REAL,
    worker TEXT,
    attempts INTEGER NOT NULL,
    finished_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_problem ON runs (problem, optimizer);
"""

_COLUMNS = (
    "key, config, problem, optimizer, seed, steps, status, error, final, diverged, "
    "curve_x, curve, metrics, wall_s, worker, attempts, finished_at"
)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace, no NaN/inf: one text per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def config_key(config: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config``."""
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()


@dataclass(frozen=True)
class RunRecord:
    """One stored run."""

    key: str
    config: dict[str, Any]
    status: str
    error: str | None
    final: float
    diverged: bool
    curve_x: np.ndarray
    curve: np.ndarray
    metrics: dict[str, Any]
    wall_s: float | None
    worker: str | None
    attempts: int
    finished_at: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _blob(a: Any, dtype: str) -> bytes | None:
    return None if a is None else np.ascontiguousarray(a, dtype=dtype).tobytes()


def _array(b: bytes | None, dtype: str) -> np.ndarray:
    return np.zeros(0, dtype=dtype) if b is None else np.frombuffer(b, dtype=dtype).copy()


class Store:
    """A sweep's SQLite database (created if absent).

    ``timeout``: seconds a write waits for another writer's lock before
    raising ``sqlite3.OperationalError``.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 60.0, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise FileNotFoundError(f"sweep store {str(self.path)!r} does not exist")
        if self.path.parent and not self.path.parent.is_dir():
            raise FileNotFoundError(f"sweep store {str(self.path)!r}: directory {str(self.path.parent)!r} is missing")
        self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise sqlite3.OperationalError(f"could not switch {str(self.path)!r} to WAL mode (got {mode!r})")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            with self._transaction():
                version = self._conn.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, SCHEMA_VERSION):
                    raise ValueError(
                        f"sweep store {str(self.path)!r} has schema version {version}; "
                        f"this npoptim reads version {SCHEMA_VERSION}"
                    )
                for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise ValueError(f"sweep store {str(self.path)!r} is not a usable SQLite database: {exc}") from None

    # --- plumbing -------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- meta -------------------------------------------------------------------

    def get_meta(self, name: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, name: str, value: str) -> None:
        with self._transaction():
            self._conn.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    # --- runs -------------------------------------------------------------------

    def put(self, config: Mapping[str, Any], result: Mapping[str, Any]) -> str:
        """Store one run's result (one transaction); returns its key.

        ``result`` has ``status`` ("ok" or "failed") and optionally ``error``,
        ``final``, ``diverged``, ``curve_x``, ``curve``, ``metrics``, ``wall_s``,
        ``worker``.  An existing ``ok`` row is kept; a ``failed`` one is replaced.
        """
        status = result.get("status")
        if status not in ("ok", "failed"):
            raise ValueError(f"Store.put: result status must be 'ok' or 'failed', got {status!r}")
        key = config_key(config)
        final = result.get("final")
        row = (
            key,
            canonical_json(config),
            str(config["problem"]),
            str(config["optimizer"]),
            int(config["seed"]),
            int(config["steps"]),
            status,
            result.get("error"),
            None if final is None else float(final),
            None if result.get("diverged") is None else int(bool(result["diverged"])),
            _blob(result.get("curve_x"), "<i8"),
            _blob(result.get("curve"), "<f8"),
            canonical_json(result.get("metrics") or {}),
            result.get("wall_s"),
            result.get("worker"),
            1,
            datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
        )
        with self._transaction():
            self._conn.execute(
                f"INSERT INTO runs ({_COLUMNS}) VALUES ({', '.join('?' * 17)}) "
                "ON CONFLICT(key) DO UPDATE SET "
                "status = excluded.status, error = excluded.error, final = excluded.final, "
                "diverged = excluded.diverged, curve_x = excluded.curve_x, curve = excluded.curve, "
                "metrics = excluded.metrics, wall_s = excluded.wall_s, worker = excluded.worker, "
                "attempts = runs.attempts + 1, finished_at = excluded.finished_at "
                "WHERE runs.status != 'ok'",
                row,
            )
        return key

    def statuses(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        """key -> status, for the given keys that are stored (all rows when ``keys`` is None)."""
        if keys is None:
            return dict(self._conn.execute("SELECT key, status FROM runs"))
        wanted = list(keys)
        out: dict[str, str] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            q = f"SELECT key, status FROM runs WHERE key IN ({', '.join('?' * len(chunk))})"
            out.update(self._conn.execute(q, chunk))
        return out

    def get(self, keys: Iterable[str]) -> dict[str, RunRecord]:
        """The stored records among ``keys``."""
        wanted = list(keys)
        out: dict[str, RunRecord] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            q = f"SELECT {_COLUMNS} FROM runs WHERE key IN ({', '.join('?' * len(chunk))})"
            for row in self._conn.execute(q, chunk):
                rec = _record(row)
                out[rec.key] = rec
        return out

    def records(self) -> list[RunRecord]:
        """Every stored run, in the order they finished."""
        return [_record(r) for r in self._conn.execute(f"SELECT {_COLUMNS} FROM runs ORDER BY finished_at, key")]

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        return self._conn.execute("SELECT COUNT(*) FROM runs WHERE status = ?", (status,)).fetchone()[0]

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a sound file."""
        return self._conn.execute("PRAGMA integrity_check").fetchone()[0]


def _record(row: tuple[Any, ...]) -> RunRecord:
    (key, config, _p, _o, _s, _t, status, error, final, diverged, cx, c, metrics, wall, worker, attempts, at) = row
    return RunRecord(
        key=key,
        config=json.loads(config),
        status=status,
        error=error,
        final=float("nan") if final is None else float(final),
        diverged=bool(diverged),
        curve_x=_array(cx, "<i8"),
        curve=_array(c, "<f8"),
        metrics=json.loads(metrics) if metrics else {},
        wall_s=wall,
        worker=worker,
        attempts=attempts,
        finished_at=at,
    )


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): takes the write lock up front."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
