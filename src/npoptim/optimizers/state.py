"""The state-dict format of every optimizer: writing it (:func:`dump`) and reading it back (:func:`load`).

:meth:`Optimizer.state_dict` and :meth:`Optimizer.load_state_dict` (which document the format) call these.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import StateDictError
from ..schedules import Schedule, schedule_from_dict

__all__ = ["STATE_DICT_VERSION", "dump", "load"]

#: Version of the :meth:`Optimizer.state_dict` format; bumped on any change.
STATE_DICT_VERSION = 2
#: Older formats :meth:`Optimizer.load_state_dict` still reads (version 1 had no clipping arguments).
_READABLE_VERSIONS = (1, 2)


def dump(opt: Any) -> dict[str, Any]:
    """``opt.state_dict()``."""
    hyper = {k: _plain(v) for k, v in opt._hyper.items()}
    return {
        "optimizer": type(opt).__name__,
        "version": STATE_DICT_VERSION,
        "hyperparameters": hyper,
        "step_count": opt.step_count,
        "skipped_steps": opt.skipped_steps,
        "state": {
            key: {"step": s["step"], **{slot: s[slot].copy() for slot in opt.slots}}
            for key, s in opt.state.items()
        },
    }


def _plain(value: Any) -> Any:
    """A hyperparameter as plain data: a schedule as its ``to_dict()``, a tuple (Rprop's ``etas``) as a list
    (what JSON, and so a checkpoint, gives back; the checks accept both)."""
    if isinstance(value, Schedule):
        return value.to_dict()
    return list(value) if isinstance(value, tuple) else value


def load(opt: Any, state_dict: Mapping[str, Any]) -> None:
    """``opt.load_state_dict(state_dict)``: check everything first, then commit."""
    name = type(opt).__name__
    if not isinstance(state_dict, Mapping):
        raise StateDictError(f"{name}.load_state_dict: expected a mapping, got {type(state_dict).__name__}")
    expected = {"optimizer", "version", "hyperparameters", "step_count", "skipped_steps", "state"}
    if set(state_dict) != expected:
        raise StateDictError(
            f"{name}.load_state_dict: keys {sorted(state_dict)} do not match the format's {sorted(expected)}"
        )
    if state_dict["optimizer"] != name:
        raise StateDictError(
            f"{name}.load_state_dict: state dict is for optimizer {state_dict['optimizer']!r}, not {name!r}"
        )
    version = state_dict["version"]
    if isinstance(version, bool) or version not in _READABLE_VERSIONS:
        raise StateDictError(
            f"{name}.load_state_dict: format version {version!r} is not supported "
            f"(this npoptim reads versions {_READABLE_VERSIONS})"
        )
    hyper = state_dict["hyperparameters"]
    if version == 1 and isinstance(hyper, Mapping):  # version 1 predates clipping: it was off
        hyper = {"clip_norm": None, "clip_value": None, **hyper}
    known = opt._all_checks()
    if not isinstance(hyper, Mapping) or set(hyper) != set(known):
        got = sorted(hyper) if isinstance(hyper, Mapping) else hyper
        raise StateDictError(f"{name}.load_state_dict: hyperparameters {got} do not match {sorted(known)}")
    try:
        checked = {
            k: known[k](name, k, schedule_from_dict(v) if k == "lr" and isinstance(v, Mapping) else v)
            for k, v in hyper.items()
        }
    except (TypeError, ValueError) as exc:
        raise StateDictError(f"{name}.load_state_dict: bad hyperparameter: {exc}") from None
    counters = {k: _count(name, k, state_dict[k]) for k in ("step_count", "skipped_steps")}
    if not isinstance(state_dict["state"], Mapping):
        raise StateDictError(f"{name}.load_state_dict: 'state' must be a mapping of key to slots")
    slots = opt._slots_for(checked)  # the state dict's configuration may have other slots than ours
    state = {key: _check_entry(name, key, entry, slots) for key, entry in state_dict["state"].items()}
    # all checked: now commit
    for k, v in checked.items():  # already checked, and possibly another configuration: set directly
        opt._hyper[k] = v
        object.__setattr__(opt, k, v)
    opt._configure(slots)
    opt.step_count, opt.skipped_steps = counters["step_count"], counters["skipped_steps"]
    opt.state = state


def _check_entry(name: str, key: Any, entry: Any, slots: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(key, str):
        raise StateDictError(f"{name}.load_state_dict: state keys must be str, got {key!r}")
    expected = {"step", *slots}
    if not isinstance(entry, Mapping) or set(entry) != expected:
        got = sorted(entry) if isinstance(entry, Mapping) else type(entry).__name__
        raise StateDictError(f"{name}.load_state_dict: state[{key!r}] has {got}, expected {sorted(expected)}")
    out: dict[str, Any] = {"step": _count(name, f"state[{key!r}]['step']", entry["step"])}
    ref = None
    for slot in slots:
        a = entry[slot]
        where = f"state[{key!r}][{slot!r}]"
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "fc":
            what = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
            raise StateDictError(f"{name}.load_state_dict: {where} must be a floating np.ndarray, got {what}")
        if ref is not None and (a.shape != ref.shape or a.dtype != ref.dtype):
            raise StateDictError(
                f"{name}.load_state_dict: {where} is {a.dtype}{list(a.shape)} but "
                f"state[{key!r}][{slots[0]!r}] is {ref.dtype}{list(ref.shape)}"
            )
        ref = a
        out[slot] = np.array(a, order="C", copy=True)
    return out


def _count(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise StateDictError(f"{owner}.load_state_dict: {name} must be a non-negative integer, got {value!r}")
    return int(value)
