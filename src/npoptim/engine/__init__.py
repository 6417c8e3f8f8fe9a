"""The engine: runs optimizers on problems and returns plain records; every experiment, sweep and face calls it.

:mod:`.paths` -- :func:`run_path` (an optimizer on a test function), the lr grid and its tuning;
:mod:`.training` -- :func:`train` (the MLP on a data set), the seeding and the batch order;
:mod:`.theory` -- what linear theory predicts for GD, heavy ball and Nesterov on quadratics, and measured rates.
"""

from .paths import TUNING_OBJECTIVE, Run, lr_grid, run_path, tune_lr
from .training import TrainRun, batch_order, initial_state, moving_average, train

__all__ = [
    "Run",
    "run_path",
    "lr_grid",
    "tune_lr",
    "TUNING_OBJECTIVE",
    "TrainRun",
    "train",
    "initial_state",
    "batch_order",
    "moving_average",
]
