"""Argument types and helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["positive_int", "hidden_sizes", "parse_lrs", "split_names", "show_progress"]


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def hidden_sizes(text: str) -> tuple[int, ...]:
    """An argparse type: comma-separated hidden layer sizes, each >= 1."""
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"hidden layer sizes must be >= 1, got {text!r}")
    return sizes


def parse_lrs(items: Sequence[str] | None) -> dict[str, float]:
    """``["adam=0.001", "sgd=0.1"]`` -> ``{"adam": 0.001, "sgd": 0.1}``; bad items raise ValueError naming them."""
    lrs: dict[str, float] = {}
    for item in split_names(items) or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--lr {item!r}: expected NAME=VALUE, e.g. adam=0.001")
        try:
            lr = float(value)
        except ValueError:
            raise ValueError(f"--lr {item!r}: {value!r} is not a number") from None
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"--lr {item!r}: the learning rate must be a finite number > 0")
        lrs[name.lower()] = lr
    return lrs


def split_names(items: Sequence[str] | None) -> list[str] | None:
    """``["sgd,adam", "momentum"]`` -> ``["sgd", "adam", "momentum"]`` (None stays None)."""
    if items is None:
        return None
    return [name for item in items for name in item.split(",") if name]


def show_progress(args: Any) -> bool:
    """A progress bar only on a terminal and without ``--quiet``."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()
