"""Run configurations on a joblib process pool or a Dask cluster; store each result as it arrives.

Who writes the store
--------------------
The coordinating process -- the one that submitted the runs -- writes every
result, one transaction per run, as soon as the run's future completes.
Workers never touch the database.  Why: Dask workers may live on other
machines with no access to the file (and SQLite's locking is unreliable on
network file systems), a single writer never waits for a lock, and a worker
that dies mid-run cannot leave a half-written row.  A result that finished
but was not yet written when the coordinator itself was killed is simply run
again on resume (runs are deterministic, so nothing changes).  The store is
nevertheless safe for several writers (WAL, ``BEGIN IMMEDIATE``, busy
timeout): two sweeps may share a database.

Failures
--------
* An exception inside a run is caught by the runner and stored as ``failed``.
* joblib: a worker process that dies (killed, out of memory) aborts the
  pool's current batch; finished results are already stored, and the remaining
  runs are resubmitted on a fresh pool up to ``pool_restarts`` times.
* Dask: the scheduler reschedules the tasks of a dead worker on another one
  (up to its ``distributed.scheduler.allowed-failures``, default 3); a run
  whose task raises is retried ``retries`` times (``Client.submit(retries=)``).
  A task that still fails is stored as ``failed`` with the scheduler's error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .store import Store, config_key

__all__ = ["Backend", "JoblibBackend", "DaskBackend", "execute", "pending"]

Runner = Callable[[Mapping[str, Any]], dict[str, Any]]
OnResult = Callable[[Mapping[str, Any], dict[str, Any]], None]


def _keyed(runner: Runner, key: str, config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    return key, runner(config)


def _keyed_chunk(runner: Runner, chunk: list[tuple[str, Mapping[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(key, runner(config)) for key, config in chunk]


class Backend:
    """Something that runs ``runner(config)`` for many configs and yields ``(key, result)`` as they finish."""

    def map_unordered(
        self, runner: Runner, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass
class JoblibBackend(Backend):
    """A local loky process pool (``n_jobs=-1``: every core; ``1``: in this process)."""

    n_jobs: int = -1
    pool_restarts: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, int) or self.n_jobs == 0:
            raise ValueError(f"invalid n_jobs={self.n_jobs!r}: a positive number of processes, or -1 for all cores")

    def describe(self) -> str:
        import joblib

        n = joblib.cpu_count() if self.n_jobs < 0 else self.n_jobs
        return f"joblib process pool, {n} worker(s)"

    def map_unordered(
        self, runner: Runner, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        from joblib import Parallel, delayed
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        remaining = dict(items)
        restarts = 0
        while remaining:
            batch = list(remaining.items())
            try:
                parallel = Parallel(n_jobs=self.n_jobs, return_as="generator_unordered", batch_size=1)
                for key, result in parallel(delayed(_keyed)(runner, key, cfg) for key, cfg in batch):
                    remaining.pop(key, None)
                    yield key, result
            except TerminatedWorkerError as exc:
                restarts += 1
                if restarts > self.pool_restarts:
                    raise RuntimeError(
                        f"a worker process died {restarts} times ({exc}); {len(remaining)} run(s) not done. "
                        "Finished runs are stored: run the same command again to resume."
                    ) from exc


@dataclass
class DaskBackend(Backend):
    """A Dask distributed cluster: ``address`` of its scheduler (``"tcp://host:8786"``) or a ``Client``.

    ``chunk_size`` runs go in one task (default 1): for runs of a few
    milliseconds this amortises the scheduler's per-task cost, at the price
    of coarser progress and of redoing a whole chunk when its worker dies.
    """

    address: Any
    retries: int = 2
    chunk_size: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"invalid retries={self.retries!r}: must be an integer >= 0")
        if isinstance(self.chunk_size, bool) or not isinstance(self.chunk_size, int) or self.chunk_size < 1:
            raise ValueError(f"invalid chunk_size={self.chunk_size!r}: must be a positive integer")

    def describe(self) -> str:
        return f"Dask cluster at {self._address()}"

    def _address(self) -> str:
        from distributed import Client

        return self.address.scheduler.address if isinstance(self.address, Client) else str(self.address)

    def map_unordered(
        self, runner: Runner, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        from distributed import Client, as_completed

        own = not isinstance(self.address, Client)
        try:
            client = Client(self.address, timeout=30) if own else self.address
        except OSError as exc:
            raise ConnectionError(f"cannot reach the Dask scheduler at {self.address!r}: {exc}") from None
        token = uuid.uuid4().hex[:8]
        try:
            items = list(items)
            chunks = [items[i : i + self.chunk_size] for i in range(0, len(items), self.chunk_size)]
            futures = {
                client.submit(_keyed_chunk, runner, chunk, key=f"npoptim-runs-{chunk[0][0][:20]}-{token}",
                              pure=False, retries=self.retries): chunk
                for chunk in chunks
            }
            for future in as_completed(futures, raise_errors=False):
                chunk = futures.pop(future)
                if future.status == "finished":
                    yield from future.result()
                else:
                    exc = future.exception()
                    for key, _ in chunk:
                        yield key, {"status": "failed", "error": f"dask: {type(exc).__name__}: {exc}"}
                future.release()
        finally:
            for future in futures:
                future.cancel()
            if own:
                client.close()


def pending(
    store: Store, configs: Sequence[Mapping[str, Any]], *, retry_failed: bool = False
) -> list[tuple[str, Mapping[str, Any]]]:
    """The ``(key, config)`` pairs still to run: not stored, or stored as failed when ``retry_failed``."""
    keyed: dict[str, Mapping[str, Any]] = {}
    for cfg in configs:
        keyed.setdefault(config_key(cfg), cfg)
    done = store.statuses(keyed)
    skip = {"ok"} if retry_failed else {"ok", "failed"}
    return [(k, c) for k, c in keyed.items() if done.get(k) not in skip]


def execute(
    configs: Sequence[Mapping[str, Any]],
    store: Store,
    backend: Backend,
    *,
    runner: Runner | None = None,
    retry_failed: bool = False,
    on_result: OnResult | None = None,
) -> int:
    """Run every configuration that ``store`` does not hold yet; store each result as it finishes.

    Returns the number of runs executed.  ``runner`` defaults to
    :func:`npoptim.sweeps.problems.run_config`.
    """
    if runner is None:
        from .problems import run_config as runner
    todo = pending(store, configs, retry_failed=retry_failed)
    if not todo:
        return 0
    by_key = dict(todo)
    n = 0
    for key, result in backend.map_unordered(runner, todo):
        config = by_key[key]
        store.put(config, result)
        n += 1
        if on_result is not None:
            on_result(config, result)
    return n
