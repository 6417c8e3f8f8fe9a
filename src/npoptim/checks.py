"""Argument checks shared by the optimizers and the schedules.

Each takes the owner (a class name), the argument's name and its value, and
returns the value normalised (a Python ``float`` or ``bool``) or raises
``TypeError`` (wrong type) / ``ValueError`` (wrong value) with a message of the
form ``"<Owner>: invalid <name>=<value>: <what is allowed>"``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["real", "nonnegative", "positive", "unit_interval", "flag"]


def real(owner: str, name: str, value: Any) -> float:
    """A finite real number (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be finite")
    return value


def nonnegative(owner: str, name: str, value: Any) -> float:
    """A finite real number >= 0: learning rates, eps, weight decay."""
    value = real(owner, name, value)
    if value < 0:
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be >= 0")
    return value


def positive(owner: str, name: str, value: Any) -> float:
    """A finite real number > 0."""
    value = real(owner, name, value)
    if value <= 0:
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be > 0")
    return value


def unit_interval(owner: str, name: str, value: Any) -> float:
    """A rate in [0, 1): momentum, decay rates, betas."""
    value = real(owner, name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}: invalid {name}={value!r}: must be in [0, 1)")
    return value


def flag(owner: str, name: str, value: Any) -> bool:
    """A switch: exactly ``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)
