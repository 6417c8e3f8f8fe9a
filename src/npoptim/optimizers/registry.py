"""The one registry of optimizers that the CLI, the tests and the benchmarks read.

Names are the class names in lower case (``"adam"``); lookups ignore case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import StateDictError
from .base import Optimizer
from .extended import Adadelta, Adamax, AdamW, Lion, Nadam, RAdam
from .rules import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop

__all__ = ["OPTIMIZERS", "get_optimizer", "create_optimizer", "optimizer_from_state_dict"]

#: name -> optimizer class: the book's six in its order, then the rules of ``extended``.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.__name__.lower(): cls
    for cls in (SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam, AdamW, Nadam, Adamax, Adadelta, RAdam, Lion)
}


def get_optimizer(name: str) -> type[Optimizer]:
    """The optimizer class registered as ``name`` (case-insensitive)."""
    cls = OPTIMIZERS.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    return cls


def create_optimizer(name: str, **hyperparameters: Any) -> Optimizer:
    """``get_optimizer(name)(**hyperparameters)``; unknown arguments raise ``TypeError``."""
    return get_optimizer(name)(**hyperparameters)


def optimizer_from_state_dict(state_dict: Mapping[str, Any]) -> Optimizer:
    """A new optimizer of the class ``state_dict`` names, with its state loaded."""
    if not isinstance(state_dict, Mapping) or "optimizer" not in state_dict:
        raise StateDictError("optimizer_from_state_dict: not an npoptim state dict (no 'optimizer' entry)")
    try:
        opt = get_optimizer(state_dict["optimizer"])()
    except ValueError as exc:
        raise StateDictError(f"optimizer_from_state_dict: {exc}") from None
    opt.load_state_dict(state_dict)
    return opt
