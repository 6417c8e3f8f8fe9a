"""Optimizers: the shared mechanism, the update rules and their registry."""

from .base import STATE_DICT_VERSION, Optimizer
from .composite import MuonAdamW
from .extended import Adadelta, Adamax, AdamW, Lion, Nadam, RAdam
from .matrix import Adafactor, Muon
from .modern import ASGD, Rprop
from .prodigy import Prodigy
from .registry import (
    ALIASES,
    ALL_OPTIMIZERS,
    BOOK_OPTIMIZERS,
    COMPOSITES,
    OPTIMIZERS,
    TENSOR_OPTIMIZERS,
    WRAPPERS,
    create_optimizer,
    display_name,
    get_optimizer,
    optimizer_from_state_dict,
    registry_name,
    select_optimizers,
)
from .rules import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop
from .schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD
from .trust import LAMB, LARS
from .wrappers import Lookahead, Partition

__all__ = [
    "Optimizer",
    "STATE_DICT_VERSION",
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
    "OPTIMIZERS",
    "ALL_OPTIMIZERS",
    "COMPOSITES",
    "ALIASES",
    "registry_name",
    "display_name",
    "TENSOR_OPTIMIZERS",
    "WRAPPERS",
    "BOOK_OPTIMIZERS",
    "select_optimizers",
    "get_optimizer",
    "create_optimizer",
    "optimizer_from_state_dict",
]
