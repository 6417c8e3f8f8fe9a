"""Optimizers: the shared mechanism, the update rules and their registry."""

from .base import STATE_DICT_VERSION, Optimizer
from .extended import Adadelta, Adamax, AdamW, Lion, Nadam, RAdam
from .registry import (
    BOOK_OPTIMIZERS,
    OPTIMIZERS,
    create_optimizer,
    get_optimizer,
    optimizer_from_state_dict,
    select_optimizers,
)
from .rules import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop

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
    "OPTIMIZERS",
    "BOOK_OPTIMIZERS",
    "select_optimizers",
    "get_optimizer",
    "create_optimizer",
    "optimizer_from_state_dict",
]
