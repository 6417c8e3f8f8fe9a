"""Sweeps: fair, seeded, resumable optimizer comparisons on a process pool or a Dask cluster.

The pieces, each usable alone: :mod:`.space` (search spaces), :mod:`.store`
(the SQLite run store), :mod:`.execute` (joblib / Dask execution),
:mod:`.problems` (what one run does), :mod:`.protocol` (tune, rerun,
summarise), :mod:`.profiles` (performance profiles) and :mod:`.report`.
"""

from .execute import DaskBackend, JoblibBackend, execute
from .profiles import performance_profile, performance_ratios, steps_to_target
from .protocol import SweepSpec, run_sweep, summarise
from .space import TUNED, sample_configs, tuned_dimensions
from .store import Store, config_key

__all__ = [
    "SweepSpec",
    "run_sweep",
    "summarise",
    "Store",
    "config_key",
    "execute",
    "JoblibBackend",
    "DaskBackend",
    "performance_profile",
    "performance_ratios",
    "steps_to_target",
    "TUNED",
    "sample_configs",
    "tuned_dimensions",
]
