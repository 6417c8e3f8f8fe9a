"""Parameters and optimizer state in one ``.npz`` file, written atomically.

File format (version :data:`CHECKPOINT_VERSION`): an uncompressed NumPy
``.npz`` archive holding only numeric arrays plus one unicode array
``__meta__`` with JSON text::

    {"format": "npoptim.checkpoint", "version": 1,
     "params": [key, ...],                      # array "p<i>" is params[key_i]
     "optimizer": null | {"optimizer": ..., "version": ..., "hyperparameters": ...,
                          "step_count": ..., "skipped_steps": ...,
                          "state": [[key, step], ...]},  # array "s<i>.<slot>"
     "metadata": any JSON value the caller passed}

Writing goes to a temporary file in the same directory, which is flushed,
``fsync``-ed and then renamed over the target (``os.replace``, atomic on POSIX
and Windows): a crash mid-write leaves the previous checkpoint intact.
Reading uses ``allow_pickle=False``, so a checkpoint can never run code.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .errors import CheckpointError
from .optimizers.base import Optimizer

__all__ = ["save_checkpoint", "load_checkpoint", "Checkpoint", "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 1
_FORMAT = "npoptim.checkpoint"


class Checkpoint(NamedTuple):
    params: dict[str, np.ndarray]
    #: A state dict for :meth:`Optimizer.load_state_dict`, or None if none was saved.
    optimizer_state: dict[str, Any] | None
    metadata: Any


def save_checkpoint(
    path: str | os.PathLike[str],
    params: Mapping[str, np.ndarray],
    optimizer: Optimizer | None = None,
    *,
    metadata: Any = None,
) -> None:
    """Write ``params`` and ``optimizer``'s state to ``path`` atomically.

    ``metadata`` is any JSON-serialisable value (epoch, seed, ...).
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    keys = list(params)
    for i, key in enumerate(keys):
        if not isinstance(key, str) or not isinstance(params[key], np.ndarray):
            raise TypeError(
                f"save_checkpoint: params must map str to np.ndarray; got {key!r}: {type(params[key]).__name__}"
            )
        arrays[f"p{i}"] = params[key]
    opt_meta = None
    if optimizer is not None:
        sd = optimizer.state_dict()
        state = sd.pop("state")
        sd["state"] = [[key, entry.pop("step")] for key, entry in state.items()]
        for i, entry in enumerate(state.values()):
            for slot, a in entry.items():
                arrays[f"s{i}.{slot}"] = a
        opt_meta = sd
    meta = {
        "format": _FORMAT,
        "version": CHECKPOINT_VERSION,
        "params": keys,
        "optimizer": opt_meta,
        "metadata": metadata,
    }
    try:
        meta_text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"save_checkpoint: metadata must be JSON-serialisable: {exc}") from None
    arrays["__meta__"] = np.array(meta_text)

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises :class:`~npoptim.errors.CheckpointError` (a ``ValueError``) naming
    the file and the problem if it is missing, truncated, corrupted or not an
    npoptim checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r}: no such file")
    # A damaged zip can make zipfile raise NotImplementedError (a flipped version,
    # method or flag field) or RuntimeError (a flipped "encrypted" bit).
    unreadable = (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, NotImplementedError, RuntimeError)
    try:
        npz = np.load(path, allow_pickle=False)
    except unreadable as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupted: {exc}") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):  # a bare .npy file loads as one array
        raise CheckpointError(f"checkpoint {str(path)!r} is not an .npz archive")
    try:
        with npz:
            arrays = {name: npz[name] for name in npz.files}
    except unreadable as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupted: {exc}") from None
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r}: missing or unreadable __meta__ record ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise CheckpointError(f"checkpoint {str(path)!r} is not an npoptim checkpoint")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {meta.get('version')!r}; "
            f"this npoptim reads {CHECKPOINT_VERSION}"
        )
    try:
        params = {key: arrays.pop(f"p{i}") for i, key in enumerate(meta["params"])}
        opt_state = None
        if meta["optimizer"] is not None:
            opt_state = dict(meta["optimizer"])
            state: dict[str, Any] = {}
            for i, (key, step) in enumerate(opt_state["state"]):
                prefix = f"s{i}."
                slots = {name[len(prefix):]: arrays.pop(name) for name in list(arrays) if name.startswith(prefix)}
                state[key] = {"step": step, **slots}
            opt_state["state"] = state
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r}: record does not match its arrays ({exc!r})") from None
    if arrays:
        raise CheckpointError(f"checkpoint {str(path)!r}: unexpected arrays {sorted(arrays)}")
    return Checkpoint(params, opt_state, meta.get("metadata"))
