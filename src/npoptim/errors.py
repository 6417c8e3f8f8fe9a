"""Exceptions raised by npoptim.

Every error names the culprit (the argument, the key, the value) so that a
user can fix the call without reading our source.
"""

from __future__ import annotations

__all__ = ["NonFiniteGradientError", "KeyMismatchError", "CheckpointError", "StateDictError", "CLIError"]


class NonFiniteGradientError(ValueError):
    """A gradient holds NaN or inf; raised before anything is written.

    Attributes
    ----------
    keys : list[str]
        The parameter keys whose gradients are not finite.
    step : int
        The update that was refused (1-based: the step it would have been).
    """

    def __init__(self, message: str, *, keys: list[str], step: int) -> None:
        super().__init__(message)
        self.keys = keys
        self.step = step


class KeyMismatchError(KeyError, ValueError):
    """``params`` and ``grads`` do not have the same keys.

    A ``KeyError`` (the lookup failed) and a ``ValueError`` (the call's
    arguments do not fit together), with a readable message (a plain
    ``KeyError`` would print its message in quotes).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StateDictError(ValueError):
    """A state dict does not fit the optimizer it is loaded into."""


class CheckpointError(ValueError):
    """A checkpoint file cannot be read: missing, truncated, corrupted or foreign."""


class CLIError(Exception):
    """A user error on the command line: ``npoptim`` prints it as one line and exits with status 2."""
