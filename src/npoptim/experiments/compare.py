"""`npoptim compare`: the project's main job, both experiments with their defaults, one directory.

1. Trajectories (:func:`npoptim.experiments.trajectories.run_trajectories`,
   defaults: the book's anisotropic bowl, 30 updates, the book's learning rates).
2. Training (:func:`npoptim.experiments.training.run_training`, defaults: the
   embedded digits, 4x100 network, batch 128, the book's six optimizers at
   lr 0.01, 3 seeds).

Writes into ``--out`` (default ``results``): the PNG figures of both,
``results.json`` (configuration, versions, seeds, every number of every table),
``report.md`` (figures, tables, one paragraph of interpretation per experiment,
written from the numbers), plus the trajectory experiment's own
``trajectories.json``/``trajectories.md`` and the per-step training losses.
The same command gives the same numbers (only ``timing`` differs).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_OUT = "results"

__all__ = ["run_compare", "DEFAULT_OUT"]


def run_compare(
    out_dir: Path,
    *,
    seeds: int | None = None,
    steps: int | None = None,
    optimizers: Sequence[str] | str | None = None,
    lrs: Mapping[str, float] | None = None,
    progress: bool = False,
    command: str = "npoptim compare",
) -> dict[str, Any]:
    """Run both experiments into ``out_dir``; return the payload written to ``results.json``.

    ``seeds`` and ``steps`` shrink (or grow) the training budget; ``None``
    keeps the defaults of :mod:`npoptim.experiments.training`.  ``optimizers``
    (registry names, aliases such as ``schedulefree-adamw``, composites such as
    ``muon+adamw``, or ``"all"``; default the book's six) go into both
    experiments; ``lrs`` are the training experiment's rates (the trajectories
    keep the book's rates, or each optimizer's default).
    """
    from ..problems.data import load_digits
    from ..report import markdown as report
    from ..report.files import versions, write_json, write_text
    from ..report.training import write_training
    from . import training
    from .trajectories import run_trajectories

    out_dir = Path(out_dir)
    training._resolve_optimizers(optimizers, lrs)  # names and rates checked before anything runs
    started = time.perf_counter()
    traj = run_trajectories(out_dir, optimizers=optimizers, progress=False)
    traj_seconds = time.perf_counter() - started
    result = training.run_training(
        load_digits(),
        seeds=training.DEFAULT_SEEDS if seeds is None else seeds,
        steps=training.DEFAULT_STEPS if steps is None else steps,
        optimizers=optimizers,
        lrs=lrs,
        progress=progress,
    )
    write_training(out_dir, result)
    total = time.perf_counter() - started
    payload = {
        "command": command,
        "versions": versions(),
        "trajectories": traj,
        "training": result.results,
        "timing": {"trajectories_seconds": round(traj_seconds, 2), "total_seconds": round(total, 2)},
    }
    write_json(out_dir / "results.json", payload)
    write_text(out_dir / "report.md", report.compare_report(payload))
    return payload
