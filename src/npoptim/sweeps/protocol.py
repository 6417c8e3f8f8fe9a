r"""The comparison protocol: tune with equal budgets, rerun the best over seeds, summarise.

1. **Tune.**  For every problem and optimizer, ``budget`` configurations
   from the optimizer's search space (:mod:`npoptim.sweeps.space`), each run
   for ``steps`` updates with the tuning seeds ``0 .. tune_seeds-1``.  Every
   optimizer gets the same number of configurations, the same steps and the
   same seeds.  The configurations are drawn once per optimizer (from
   ``np.random.default_rng([search_seed, h(optimizer)])`` with :math:`h` a
   stable hash of the name, so adding an optimizer changes no other's draws)
   and used on every problem, which makes lr-sensitivity comparable across
   problems.
2. **Select.**  The score of a configuration is its final metric averaged
   over the tuning seeds (:math:`+\infty` if any of them diverged or failed);
   the best is the one of least score (ties: the first drawn).
3. **Rerun.**  The best configuration of each (problem, optimizer) is run
   again with ``seeds`` fresh seeds, ``1000 .. 1000+seeds-1`` (disjoint from
   the tuning seeds, so the reported numbers are not the ones selected on).
4. **Summarise.**  Per problem: mean :math:`\pm` standard deviation (ddof=0,
   across rerun seeds) of the metric curve and of the final metric, the steps
   to reach the target of :mod:`npoptim.sweeps.profiles`, the best
   hyperparameters, each optimizer's lr range and whether the best lr is at
   one of its ends (:func:`lr_edge`), and every tuning configuration's score
   against its lr (sensitivity).  Across problems: performance profiles.

Everything here is a pure function of the specification and the store, so a
report rendered from a store equals the one the sweep printed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .._fingerprint import code_fingerprint
from .._version import __version__
from ..optimizers import registry_name
from .execute import Backend, Runner, execute
from .problems import TRAINING_PROBLEMS, canonical_problem, make_config, problem_options
from .profiles import performance_profile, steps_to_target
from .space import (
    SEARCH_METHODS,
    SPACES,
    grid_multiple,
    lr_range_source,
    resolve_lr_ranges,
    sample_configs,
    tuned_dimensions,
)
from .store import RunRecord, Store, canonical_json, config_key

__all__ = ["SweepSpec", "tuning_plan", "select_best", "rerun_plan", "run_sweep", "summarise", "lr_edge",
           "RERUN_SEED0"]

#: First rerun seed; tuning uses 0 .. tune_seeds-1.
RERUN_SEED0 = 1000
#: The taus of the profile table (the figure draws a continuum).
PROFILE_TAUS = (1.0, 1.5, 2.0, 4.0, 10.0)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"invalid {name}={value!r}: must be a positive integer")
    return value


@dataclass(frozen=True)
class SweepSpec:
    """Everything that defines a sweep (stored in the database's ``meta`` table as ``spec``)."""

    problems: tuple[str, ...]
    optimizers: tuple[str, ...]
    search: str = "random"
    space: str = "full"
    budget: int = 20
    #: one lr range for every optimizer (``None``: each optimizer's :func:`~.space.default_lr_range`)
    lr_range: tuple[float, float] | None = None
    #: given: per-optimizer ranges that win over ``lr_range`` (any registry spelling); after construction:
    #: every optimizer's range as the sweep uses it, in the order of ``optimizers`` (what the store records)
    lr_ranges: Mapping[str, tuple[float, float]] | None = None
    steps: int = 200
    seeds: int = 5
    tune_seeds: int = 1
    search_seed: int = 0
    start_jitter: float = 0.1
    grad_noise: float = 0.0
    profile_tol: float = 1e-3
    data_dir: str | None = None
    hidden: tuple[int, ...] = (100, 100, 100, 100)
    batch_size: int = 128
    npoptim_version: str = field(default=__version__)
    #: :func:`npoptim._fingerprint.code_fingerprint` of the code that made the sweep (``None``: not recorded)
    npoptim_code: str | None = field(default_factory=code_fingerprint)

    def __post_init__(self) -> None:
        if not self.problems:
            raise ValueError("a sweep needs at least one problem")
        if not self.optimizers:
            raise ValueError("a sweep needs at least one optimizer")
        probs = tuple(canonical_problem(p) for p in self.problems)
        opts = tuple(registry_name(o) for o in self.optimizers)
        for what, items in (("problem", probs), ("optimizer", opts)):
            dup = sorted({x for x in items if items.count(x) > 1})
            if dup:
                raise ValueError(f"{what}(s) listed twice: {dup}")
        object.__setattr__(self, "problems", probs)
        object.__setattr__(self, "optimizers", opts)
        object.__setattr__(self, "lr_ranges", resolve_lr_ranges(opts, self.lr_range, self.lr_ranges))
        if self.lr_range is not None:
            object.__setattr__(self, "lr_range", tuple(float(v) for v in self.lr_range))
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if self.search not in SEARCH_METHODS:
            raise ValueError(f"invalid search={self.search!r}: must be one of {SEARCH_METHODS}")
        if self.space not in SPACES:
            raise ValueError(f"invalid space={self.space!r}: must be one of {SPACES}")
        for name in ("budget", "steps", "seeds", "tune_seeds"):
            _positive_int(name, getattr(self, name))
        if isinstance(self.search_seed, bool) or not isinstance(self.search_seed, int) or self.search_seed < 0:
            raise ValueError(f"invalid search_seed={self.search_seed!r}: must be an integer >= 0")
        if self.tune_seeds > RERUN_SEED0:
            raise ValueError(f"invalid tune_seeds={self.tune_seeds}: at most {RERUN_SEED0}")
        for name in ("start_jitter", "grad_noise"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"invalid {name}={v!r}: must be a finite number >= 0")
        if not (isinstance(self.profile_tol, (int, float)) and 0 < self.profile_tol < 1):
            raise ValueError(f"invalid profile_tol={self.profile_tol!r}: must be in (0, 1)")
        if self.search == "grid":
            m = grid_multiple(list(opts), self.space)
            if self.budget % m:
                raise ValueError(
                    f"invalid budget={self.budget} for grid search: every optimizer must get the same number of "
                    f"configurations, so the budget must be a multiple of {m} (the grids of "
                    f"{', '.join(opts)}); or use random search"
                )
        # every table entry fits its optimizer (the ranges are checked above)
        for o in opts:
            sample_configs(o, 1, method="random", lr_range=self.lr_ranges[o], rng=np.random.default_rng(0),
                           space=self.space)
        for p in probs:
            self.options(p)

    # --- (de)serialisation ----------------------------------------------------

    def to_json(self) -> str:
        return canonical_json(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SweepSpec:
        data = json.loads(text)
        data["problems"], data["optimizers"] = tuple(data["problems"]), tuple(data["optimizers"])
        data["hidden"] = tuple(data["hidden"])
        if data.get("lr_range") is not None:
            data["lr_range"] = tuple(data["lr_range"])
        # stores made before per-optimizer ranges: their one lr_range was every optimizer's (as now)
        data["lr_ranges"] = {k: tuple(v) for k, v in (data.get("lr_ranges") or {}).items()}
        data.setdefault("npoptim_code", None)  # stores made before the fingerprint was recorded
        return cls(**data)

    def differences(self, other: SweepSpec) -> list[str]:
        a, b = asdict(self), asdict(other)
        out = [f"{k}: {a[k]!r} vs {b[k]!r}" for k in a if a[k] != b[k] and k != "lr_ranges"]
        ra, rb = self.lr_ranges, other.lr_ranges
        for o in ra:  # one line per optimizer of both whose range differs (other names: ``optimizers`` above)
            if o in rb and ra[o] != rb[o]:
                out.append(f"lr range of {o}: [{ra[o][0]:g}, {ra[o][1]:g}] vs [{rb[o][0]:g}, {rb[o][1]:g}]")
        return out

    # --- sizes ------------------------------------------------------------------

    @property
    def n_tuning_runs(self) -> int:
        return len(self.problems) * len(self.optimizers) * self.budget * self.tune_seeds

    @property
    def n_rerun_runs(self) -> int:
        return len(self.problems) * len(self.optimizers) * self.seeds

    @property
    def rerun_seeds(self) -> list[int]:
        return [RERUN_SEED0 + i for i in range(self.seeds)]

    def options(self, problem: str) -> dict[str, Any]:
        return problem_options(problem, start_jitter=self.start_jitter, grad_noise=self.grad_noise,
                               data_dir=self.data_dir, hidden=self.hidden, batch_size=self.batch_size)

    def config(self, problem: str, optimizer: str, tuned: Mapping[str, float], seed: int) -> dict[str, Any]:
        """The run configuration of one (problem, optimizer, setting, seed) of this sweep."""
        return make_config(problem, self.options(problem), optimizer, tuned, seed, self.steps,
                           version=self.npoptim_version, code=self.npoptim_code)


def _optimizer_rng(spec: SweepSpec, optimizer: str) -> np.random.Generator:
    h = int.from_bytes(hashlib.sha256(optimizer.encode()).digest()[:4], "little")
    return np.random.default_rng([spec.search_seed, h])


def search_configs(spec: SweepSpec) -> dict[str, list[dict[str, float]]]:
    """optimizer -> its ``budget`` tuned settings (the same on every problem)."""
    return {
        o: sample_configs(o, spec.budget, method=spec.search, lr_range=spec.lr_ranges[o],
                          rng=_optimizer_rng(spec, o), space=spec.space)
        for o in spec.optimizers
    }


@dataclass(frozen=True)
class TuningEntry:
    problem: str
    optimizer: str
    tuned: dict[str, float]
    configs: list[dict[str, Any]]  # one per tuning seed


def tuning_plan(spec: SweepSpec) -> list[TuningEntry]:
    """Every tuning configuration, grouped by (problem, optimizer, setting)."""
    out = []
    searched = search_configs(spec)
    for p in spec.problems:
        for o in spec.optimizers:
            for tuned in searched[o]:
                cfgs = [spec.config(p, o, tuned, s) for s in range(spec.tune_seeds)]
                out.append(TuningEntry(p, o, tuned, cfgs))
    return out


def _score(entry: TuningEntry, records: Mapping[str, RunRecord]) -> float:
    finals = []
    for cfg in entry.configs:
        rec = records.get(config_key(cfg))
        if rec is None or not rec.ok or not math.isfinite(rec.final):
            return math.inf
        finals.append(rec.final)
    return float(np.mean(finals))


def select_best(
    spec: SweepSpec, plan: Sequence[TuningEntry], records: Mapping[str, RunRecord]
) -> dict[tuple[str, str], tuple[TuningEntry, float]]:
    """(problem, optimizer) -> (best entry, its score); the first of least score wins ties."""
    best: dict[tuple[str, str], tuple[TuningEntry, float]] = {}
    for entry in plan:
        s = _score(entry, records)
        k = (entry.problem, entry.optimizer)
        if k not in best or s < best[k][1]:
            best[k] = (entry, s)
    return best


def rerun_plan(spec: SweepSpec, best: Mapping[tuple[str, str], tuple[TuningEntry, float]]) -> list[dict[str, Any]]:
    """The rerun configurations: each best setting with every rerun seed."""
    return [
        spec.config(p, o, best[(p, o)][0].tuned, s)
        for p in spec.problems
        for o in spec.optimizers
        for s in spec.rerun_seeds
    ]


def _all_records(store: Store, configs: Sequence[Mapping[str, Any]]) -> dict[str, RunRecord]:
    return store.get(config_key(c) for c in configs)


def open_sweep(store: Store, spec: SweepSpec) -> None:
    """Record ``spec`` in ``store``, or check that it is the one already there."""
    stored = store.get_meta("spec")
    if stored is None:
        store.set_meta("spec", spec.to_json())
        return
    old = SweepSpec.from_json(stored)
    diff = old.differences(spec)
    if diff:
        raise ValueError(
            f"sweep store {str(store.path)!r} holds a different sweep (differs in {'; '.join(diff)}); "
            "use another --db, or --resume to continue the stored one"
        )


def run_sweep(
    spec: SweepSpec,
    store: Store,
    backend: Backend,
    *,
    runner: Runner | None = None,
    retry_failed: bool = False,
    on_result: Callable[[Mapping[str, Any], dict[str, Any]], None] | None = None,
) -> int:
    """Run (or resume) the whole protocol; returns the number of runs executed now."""
    if spec.npoptim_version != __version__:
        raise ValueError(
            f"this sweep was made with npoptim {spec.npoptim_version}, this is npoptim {__version__}: a run's key "
            "includes the version, so continuing would mix versions; render it with --report, or start a new --db"
        )
    if spec.npoptim_code != code_fingerprint():
        made = "by code whose fingerprint was not recorded" if spec.npoptim_code is None else (
            f"by npoptim code {spec.npoptim_code}")
        raise ValueError(
            f"this sweep was made {made}, this is npoptim code {code_fingerprint()} (same version "
            f"{__version__}, other source files): a run's key includes every constructor argument, so "
            "continuing could store runs of the new code beside the old ones; render it with --report, "
            "or start a new --db"
        )
    open_sweep(store, spec)
    plan = tuning_plan(spec)
    tune_cfgs = [c for e in plan for c in e.configs]
    n = execute(tune_cfgs, store, backend, runner=runner, retry_failed=retry_failed, on_result=on_result)
    best = select_best(spec, plan, _all_records(store, tune_cfgs))
    n += execute(rerun_plan(spec, best), store, backend, runner=runner, retry_failed=retry_failed,
                 on_result=on_result)
    return n


def done_counts(spec: SweepSpec, store: Store) -> tuple[int, int]:
    """(runs of this sweep already stored, runs it has in all)."""
    plan = tuning_plan(spec)
    tune_keys = {config_key(c) for e in plan for c in e.configs}
    n_tune = len(store.statuses(tune_keys))
    n_rerun = 0
    if n_tune == len(tune_keys):
        recs = store.get(tune_keys)
        n_rerun = len(store.statuses({config_key(c) for c in rerun_plan(spec, select_best(spec, plan, recs))}))
    return n_tune + n_rerun, spec.n_tuning_runs + spec.n_rerun_runs


# --- summary ------------------------------------------------------------------------


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def lr_edge(tried: Sequence[float], best: float, score: float) -> str | None:
    """``"low"`` / ``"high"`` when the best setting's lr is the lowest / highest lr tried, else ``None``.

    For a grid those are the ends of the range; for random search the extreme draws.  Either way the
    score still improved towards that end, so the optimum may lie beyond it: widen the range there.
    ``None`` too when nothing finite was found (``score`` inf) or only one lr was tried.
    """
    if not math.isfinite(score) or len(set(tried)) < 2:
        return None
    return "low" if best == min(tried) else "high" if best == max(tried) else None


def summarise(spec: SweepSpec, store: Store) -> dict[str, Any]:
    """Every number of the report, from the store alone (JSON-ready: ``None`` stands for inf/missing)."""
    plan = tuning_plan(spec)
    tune_cfgs = [c for e in plan for c in e.configs]
    tune_recs = _all_records(store, tune_cfgs)
    best = select_best(spec, plan, tune_recs)
    reruns = rerun_plan(spec, best)
    rerun_recs = _all_records(store, reruns)
    n_failed = sum(1 for r in (*tune_recs.values(), *rerun_recs.values()) if not r.ok)
    complete = len(tune_recs) == len({config_key(c) for c in tune_cfgs}) and len(rerun_recs) == len(
        {config_key(c) for c in reruns}
    )
    problems: dict[str, Any] = {}
    mean_curves: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for p in spec.problems:
        per_opt: dict[str, Any] = {}
        sensitivity: dict[str, list[dict[str, Any]]] = {}
        for o in spec.optimizers:
            entry, score = best[(p, o)]
            entries = [e for e in plan if e.problem == p and e.optimizer == o]
            sensitivity[o] = [
                {"hyperparameters": e.tuned, "score": _finite_or_none(_score(e, tune_recs))} for e in entries
            ]
            recs = [
                rerun_recs.get(config_key(spec.config(p, o, entry.tuned, s)))
                for s in spec.rerun_seeds
            ]
            got = [r for r in recs if r is not None and r.ok]
            finals = np.array([r.final for r in got])
            with np.errstate(invalid="ignore"):
                f_mean, f_std = (float(finals.mean()), float(finals.std())) if got else (math.nan, math.nan)
            row: dict[str, Any] = {
                "best": entry.tuned,
                "lr_range": list(spec.lr_ranges[o]),
                "lr_at_edge": lr_edge([e.tuned["lr"] for e in entries], entry.tuned["lr"], score),
                "tuning_score": _finite_or_none(score),
                "tuning_diverged": sum(1 for s in sensitivity[o] if s["score"] is None),
                "reruns": len(got),
                "rerun_failed": sum(1 for r in recs if r is not None and not r.ok),
                "diverged": int(sum(1 for r in got if r.diverged)),
                "final_mean": _finite_or_none(f_mean),
                "final_std": _finite_or_none(f_std),
                "finals": [_finite_or_none(float(v)) for v in finals],
            }
            acc = [r.metrics.get("held_out_accuracy") for r in got if not r.diverged]
            if acc and all(a is not None for a in acc):
                row["held_out_accuracy_mean"] = float(np.mean(acc))
                row["held_out_accuracy_std"] = float(np.std(acc))
            if got:
                x = got[0].curve_x
                ys = np.stack([r.curve for r in got])
                with np.errstate(invalid="ignore"):
                    mean, std = ys.mean(axis=0), ys.std(axis=0)
                mean_curves[(p, o)] = (x, mean)
                row["curve"] = {"steps": x.tolist(), "mean": [_finite_or_none(v) for v in mean],
                                "std": [_finite_or_none(v) for v in std]}
            per_opt[o] = row
        # the target of the profile: f_L + tol (f(x0) - f_L)
        curves = [mean_curves[(p, o)] for o in spec.optimizers if (p, o) in mean_curves]
        target = None
        if curves:
            f0 = float(np.mean([c[1][0] for c in curves]))
            finite_min = [float(np.min(c[1][np.isfinite(c[1])])) for c in curves if np.isfinite(c[1]).any()]
            f_low = 0.0 if p not in TRAINING_PROBLEMS else (min(finite_min) if finite_min else math.inf)
            target = f_low + spec.profile_tol * (f0 - f_low) if math.isfinite(f_low) else None
        for o in spec.optimizers:
            c = mean_curves.get((p, o))
            t = steps_to_target(*c, target) if (c is not None and target is not None) else math.inf
            per_opt[o]["steps_to_target"] = _finite_or_none(t)
        problems[p] = {"optimizers": per_opt, "sensitivity": sensitivity, "target": target}
    costs = np.array([[problems[p]["optimizers"][o]["steps_to_target"] or math.inf for o in spec.optimizers]
                      for p in spec.problems])
    rho = performance_profile(costs, np.array(PROFILE_TAUS))
    return {
        "spec": json.loads(spec.to_json()),
        "complete": complete,
        "runs": {"tuning": spec.n_tuning_runs, "rerun": spec.n_rerun_runs,
                 "stored": len(tune_recs) + len(rerun_recs), "failed": n_failed},
        "lr_ranges": {o: {"range": list(r), "source": lr_range_source(o, r)} for o, r in spec.lr_ranges.items()},
        "problems": problems,
        "profile": {
            "measure": f"steps to reach f_L + {spec.profile_tol:g} (f(x0) - f_L) (mean curve over rerun seeds)",
            "solvers": list(spec.optimizers),
            "problems": list(spec.problems),
            "costs": [[_finite_or_none(v) for v in row] for row in costs],
            "taus": list(PROFILE_TAUS),
            "rho": rho.tolist(),
        },
    }


def check_tuned_names(spec: SweepSpec) -> dict[str, list[str]]:
    """optimizer -> the hyperparameters the sweep tunes (for the report)."""
    return {o: ["lr", *(d.name for d in tuned_dimensions(o, spec.space))] for o in spec.optimizers}
