"""npoptim: the weight-update rules of neural-network training, in NumPy, done right.

>>> import numpy as np
>>> from npoptim import Adam
>>> params = {"W": np.ones((2, 2)), "b": np.zeros(2)}
>>> grads = {"W": np.full((2, 2), 0.5), "b": np.array([1.0, -1.0])}
>>> opt = Adam(lr=1e-3)
>>> opt.update(params, grads)   # in place; returns None
>>> params["b"]
array([-0.001,  0.001])
"""

from ._version import __version__
from .checkpoint import load_checkpoint, save_checkpoint
from .errors import CheckpointError, KeyMismatchError, NonFiniteGradientError, StateDictError
from .optimizers import (
    ALL_OPTIMIZERS,
    ASGD,
    BOOK_OPTIMIZERS,
    COMPOSITES,
    LAMB,
    LARS,
    OPTIMIZERS,
    SGD,
    TENSOR_OPTIMIZERS,
    WRAPPERS,
    Adadelta,
    Adafactor,
    AdaGrad,
    Adam,
    Adamax,
    AdamW,
    Lion,
    Lookahead,
    Momentum,
    Muon,
    MuonAdamW,
    Nadam,
    Nesterov,
    Optimizer,
    Partition,
    Prodigy,
    RAdam,
    RMSprop,
    Rprop,
    ScheduleFreeAdamW,
    ScheduleFreeSGD,
    create_optimizer,
    get_optimizer,
    optimizer_from_state_dict,
    select_optimizers,
)

__all__ = [
    "SGD",
    "Momentum",
    "Nesterov",
    "AdaGrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "Nadam",
    "Adamax",
    "Adadelta",
    "RAdam",
    "Lion",
    "Rprop",
    "ASGD",
    "ScheduleFreeSGD",
    "ScheduleFreeAdamW",
    "Muon",
    "Adafactor",
    "LAMB",
    "LARS",
    "Prodigy",
    "Partition",
    "Lookahead",
    "MuonAdamW",
    "Optimizer",
    "OPTIMIZERS",
    "BOOK_OPTIMIZERS",
    "TENSOR_OPTIMIZERS",
    "WRAPPERS",
    "COMPOSITES",
    "ALL_OPTIMIZERS",
    "select_optimizers",
    "get_optimizer",
    "create_optimizer",
    "optimizer_from_state_dict",
    "save_checkpoint",
    "load_checkpoint",
    "NonFiniteGradientError",
    "KeyMismatchError",
    "StateDictError",
    "CheckpointError",
    "__version__",
]
