"""Optimizers made of optimizers (issue 15): :class:`Partition` (different rules for different parameters)
and :class:`Lookahead` (slow weights around any rule).

A wrapper keeps every guarantee of the rules it holds: it validates the *whole*
call with each rule's own validating walk (``Optimizer._prepare``, which writes
nothing) before any rule writes, so a bad key, shape, dtype or a NaN anywhere
changes nothing anywhere.  Its state dict has the format of every optimizer's
(``"state"`` maps each key to its step and arrays), so checkpoints
(:mod:`npoptim.checkpoint`) store it unchanged; the rules' own settings and
counters are plain data beside it.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import KeyMismatchError, StateDictError
from .base import Optimizer as _Optimizer
from .base import _check_policy
from .checking import _check_no_overlap, _skip_nonfinite
from .state import _READABLE_VERSIONS, STATE_DICT_VERSION

__all__ = ["Partition", "Lookahead"]


class Partition:
    r"""Different update rules for different parameters: ``Partition({pattern: optimizer, ...})``.

    Each key of ``params`` goes to the optimizer of the **first** pattern that
    matches it, in the order given; patterns are shell-style globs matched
    case-sensitively with :func:`fnmatch.fnmatchcase` (``*`` any run of
    characters, ``?`` one, ``[seq]`` one of ``seq``), so ``"*"`` last catches
    the rest.  A key that matches no pattern makes ``update`` raise
    :class:`~npoptim.errors.KeyMismatchError` naming it.  This is torch.optim's
    parameter groups, chosen by name.

    ``update`` is one atomic step across all groups: the routing, every group's
    validation (its optimizer's own checks: keys, shapes, dtypes, writeability,
    Muon's 2-D rule, the state's shapes) and aliasing across groups are checked
    first, then the gradients' finiteness according to ``on_nonfinite``
    (``"raise"``: a NaN/inf anywhere raises :class:`~npoptim.errors.NonFiniteGradientError`
    naming the keys and nothing is written anywhere; ``"skip"``: no group steps;
    ``"propagate"``: not checked, which needs every group's optimizer to propagate
    too, so no group can refuse after another has written).  Only then does each
    group's optimizer run its ``update`` on its keys.  Clipping (``clip_norm``,
    ``clip_value``) and schedules are each group's own, so a group's global norm is
    over its keys only.  Each optimizer keeps its own step counts.

    The example of issue 15, Muon for the weight matrices and AdamW for the rest:

    >>> import numpy as np
    >>> from npoptim import AdamW, Muon, Partition
    >>> opt = Partition({"W*": Muon(lr=0.02), "*": AdamW(lr=1e-3)})
    >>> params = {"W1": np.ones((3, 2)), "b1": np.zeros(2)}
    >>> opt.update(params, {"W1": np.full((3, 2), 0.1), "b1": np.array([1.0, -1.0])})
    >>> [opt.group_of(k) for k in params], params["b1"]
    (['W*', '*'], array([-0.001,  0.001]))
    >>> opt.update(params, {"W1": np.full((3, 2), np.nan), "b1": np.ones(2)})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    npoptim.errors.NonFiniteGradientError: Partition: non-finite gradient (NaN or inf) for key(s) ['W1'] at step 2; ...
    """

    def __init__(self, groups: Mapping[str, _Optimizer], *, on_nonfinite: str = "raise") -> None:
        if not isinstance(groups, Mapping) or not groups:
            raise TypeError(f"Partition: groups must be a non-empty mapping of pattern to optimizer, got {groups!r}")
        seen: dict[int, str] = {}
        for pattern, opt in groups.items():
            if not isinstance(pattern, str):
                raise TypeError(f"Partition: patterns must be str, got {pattern!r}")
            if not isinstance(opt, _Optimizer):
                raise TypeError(
                    f"Partition: groups[{pattern!r}] must be an npoptim optimizer, got {type(opt).__name__}"
                )
            if id(opt) in seen:
                raise ValueError(
                    f"Partition: groups[{pattern!r}] is the same optimizer as groups[{seen[id(opt)]!r}]; "
                    "give each group its own instance"
                )
            seen[id(opt)] = pattern
        self.on_nonfinite = _check_policy("Partition", "on_nonfinite", on_nonfinite)
        if self.on_nonfinite == "propagate":
            strict = [p for p, o in groups.items() if o.on_nonfinite != "propagate"]
            if strict:
                raise ValueError(
                    f"Partition: on_nonfinite='propagate' needs every group's optimizer to propagate too; "
                    f"group(s) {strict} would refuse a NaN after other groups had written"
                )
        #: ``(pattern, optimizer)`` pairs, in matching order.
        self.groups: tuple[tuple[str, _Optimizer], ...] = tuple(groups.items())
        #: Number of ``update`` calls that changed something; calls skipped for non-finite gradients.
        self.step_count = 0
        self.skipped_steps = 0

    def __repr__(self) -> str:
        inner = ", ".join(f"{p!r}: {o!r}" for p, o in self.groups)
        return f"Partition({{{inner}}}, on_nonfinite={self.on_nonfinite!r})"

    # --- routing -------------------------------------------------------------------

    def _index(self, key: Any) -> int | None:
        for i, (pattern, _) in enumerate(self.groups):
            if fnmatch.fnmatchcase(key, pattern):
                return i
        return None

    def group_of(self, key: str) -> str:
        """The pattern whose optimizer updates ``key`` (raises ``KeyMismatchError`` if none matches)."""
        i = self._index(key) if isinstance(key, str) else None
        if i is None:
            raise KeyMismatchError(
                f"Partition: key {key!r} matches no group pattern {[p for p, _ in self.groups]}; "
                "add a pattern for it (e.g. '*' last)"
            )
        return self.groups[i][0]

    def optimizer_of(self, key: str) -> _Optimizer:
        """The optimizer that updates ``key``."""
        return dict(self.groups)[self.group_of(key)]

    def _split(self, mapping: Mapping[str, Any]) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = [{} for _ in self.groups]
        for key, value in mapping.items():
            if not isinstance(key, str):
                raise TypeError(f"Partition.update: keys must be str, got {key!r}")
            self.group_of(key)  # raises naming the key
            parts[self._index(key)][key] = value
        return parts

    @property
    def state(self) -> dict[str, dict[str, Any]]:
        """Every group's per-key state in one dict (the optimizers' own entries, not copies)."""
        return {k: v for _, opt in self.groups for k, v in opt.state.items()}

    # --- update --------------------------------------------------------------------

    def update(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray | None]) -> None:
        """One step of every group on its keys; validated as a whole first (see the class docstring)."""
        for arg, value in (("params", params), ("grads", grads)):
            if not isinstance(value, Mapping):
                raise TypeError(
                    f"Partition.update: {arg} must be a mapping of str to np.ndarray, got {type(value).__name__}"
                )
        missing, extra = [k for k in params if k not in grads], [k for k in grads if k not in params]
        if missing or extra:
            raise KeyMismatchError(
                "Partition.update: params and grads must have the same keys; "
                f"missing from grads: {missing}, not in params: {extra}"
            )
        p_parts = self._split(params)
        g_parts = [{k: grads[k] for k in part} for part in p_parts]
        works = [opt._prepare(p, g) for (_, opt), p, g in zip(self.groups, p_parts, g_parts, strict=True)]
        if len(params) > 1:
            _check_no_overlap("Partition", params)  # across groups too
        if _skip_nonfinite("Partition", self.on_nonfinite, [w for work in works for w in work], self.step_count + 1):
            self.skipped_steps += 1
            return
        # everything is checked: no group can refuse now
        for (_, opt), p, g in zip(self.groups, p_parts, g_parts, strict=True):
            if p:
                opt.update(p, g)
        if any(works):
            self.step_count += 1

    # --- state dict ------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain data: each group's pattern and state dict (without its ``"state"``), and all keys' state.

        Format::

            {"optimizer": "Partition", "version": 2, "on_nonfinite": "raise",
             "groups": [{"pattern": "W*", "optimizer": "Muon", "version": 2,
                         "hyperparameters": {...}, "step_count": int, "skipped_steps": int}, ...],
             "step_count": int, "skipped_steps": int,
             "state": {key: {"step": int, slot: ndarray, ...}}}   # every group's keys

        ``"state"`` has the shape of every optimizer's, so :func:`npoptim.save_checkpoint` stores it as is.
        """
        groups, state = [], {}
        for pattern, opt in self.groups:
            sd = opt.state_dict()
            state.update(sd.pop("state"))
            groups.append({"pattern": pattern, **sd})
        return {
            "optimizer": "Partition",
            "version": STATE_DICT_VERSION,
            "on_nonfinite": self.on_nonfinite,
            "groups": groups,
            "step_count": self.step_count,
            "skipped_steps": self.skipped_steps,
            "state": state,
        }

    def _split_state_dict(self, state_dict: Mapping[str, Any], patterns: list[str] | None = None) -> list[dict]:
        """Check the outer format; return each group's own state dict (its ``"state"`` restored)."""
        expected = {"optimizer", "version", "on_nonfinite", "groups", "step_count", "skipped_steps", "state"}
        if not isinstance(state_dict, Mapping) or set(state_dict) != expected:
            got = sorted(state_dict) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            raise StateDictError(f"Partition.load_state_dict: keys {got} do not match the format's {sorted(expected)}")
        if state_dict["optimizer"] != "Partition":
            raise StateDictError(
                f"Partition.load_state_dict: state dict is for optimizer {state_dict['optimizer']!r}, not 'Partition'"
            )
        if isinstance(state_dict["version"], bool) or state_dict["version"] not in _READABLE_VERSIONS:
            version = state_dict["version"]
            raise StateDictError(f"Partition.load_state_dict: format version {version!r} is not supported")
        groups = state_dict["groups"]
        if not isinstance(groups, list) or not all(isinstance(g, Mapping) and "pattern" in g for g in groups):
            raise StateDictError("Partition.load_state_dict: 'groups' must be a list of {'pattern': ..., ...}")
        got = [g["pattern"] for g in groups]
        want = patterns if patterns is not None else [p for p, _ in self.groups]
        if got != want:
            raise StateDictError(f"Partition.load_state_dict: group patterns {got} do not match this one's {want}")
        if not isinstance(state_dict["state"], Mapping):
            raise StateDictError("Partition.load_state_dict: 'state' must be a mapping of key to slots")
        parts: list[dict[str, Any]] = [{} for _ in groups]
        for key, entry in state_dict["state"].items():
            i = next((i for i, p in enumerate(got) if isinstance(key, str) and fnmatch.fnmatchcase(key, p)), None)
            if i is None:
                raise StateDictError(f"Partition.load_state_dict: state key {key!r} matches no group pattern {got}")
            parts[i][key] = entry
        return [
            {**{k: v for k, v in g.items() if k != "pattern"}, "state": part}
            for g, part in zip(groups, parts, strict=True)
        ]

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Replace every group's settings and state by those of ``state_dict``; on error nothing changes."""
        inner = self._split_state_dict(state_dict)
        policy = _loaded_policy(state_dict)
        counters = [_loaded_count(state_dict, k) for k in ("step_count", "skipped_steps")]
        for (_, opt), sd in zip(self.groups, inner, strict=True):  # every group checked before any changes
            copy.deepcopy(opt).load_state_dict(sd)
        for (_, opt), sd in zip(self.groups, inner, strict=True):
            opt.load_state_dict(sd)
        self.on_nonfinite = policy
        self.step_count, self.skipped_steps = counters

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Any], build: Callable[[Mapping[str, Any]], Any]) -> Partition:
        """A new Partition with each group's optimizer rebuilt by ``build`` (``optimizer_from_state_dict``)."""
        groups = state_dict.get("groups") if isinstance(state_dict, Mapping) else None
        if not isinstance(groups, list) or not all(isinstance(g, Mapping) and "pattern" in g for g in groups):
            raise StateDictError("Partition.load_state_dict: 'groups' must be a list of {'pattern': ..., ...}")
        patterns = [g["pattern"] for g in groups]
        shell = cls.__new__(cls)
        shell.groups = tuple((p, None) for p in patterns)
        inner = shell._split_state_dict(state_dict, patterns)
        groups_built = {p: build(sd) for p, sd in zip(patterns, inner, strict=True)}
        out = cls(groups_built, on_nonfinite=_loaded_policy(state_dict))
        out.step_count, out.skipped_steps = (_loaded_count(state_dict, k) for k in ("step_count", "skipped_steps"))
        return out


def _loaded_policy(state_dict: Mapping[str, Any]) -> str:
    try:
        return _check_policy("Partition", "on_nonfinite", state_dict["on_nonfinite"])
    except ValueError as exc:
        raise StateDictError(f"Partition.load_state_dict: {exc}") from None


def _loaded_count(state_dict: Mapping[str, Any], name: str) -> int:
    value = state_dict[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StateDictError(f"Partition.load_state_dict: {name} must be a non-negative integer, got {value!r}")
    return value


class Lookahead:
    r"""Lookahead (Zhang, Lucas, Hinton & Ba, 2019, "Lookahead optimizer: k steps forward, 1 step back",
    Algorithm 1) around any npoptim optimizer (or :class:`Partition`).

    The inner optimizer moves the *fast* weights :math:`w` (the parameters); each key also keeps *slow*
    weights :math:`\phi` (slot ``slow``, :math:`\phi_0 = w` when the key first gets a gradient).  After every
    :math:`k`-th step of a key,

    .. math:: \phi \leftarrow \phi + \alpha (w - \phi), \qquad w \leftarrow \phi

    counted with the key's own step (a ``None`` gradient does not count), as
    ``pytorch_optimizer.Lookahead`` (whose counter is per group) and ``optax.lookahead``.  The inner
    optimizer's state is not touched at a synchronisation (pytorch_optimizer's ``pullback_momentum="none"``).
    ``update`` is atomic: the inner update validates and writes as a whole, and the slow weights are
    created and synchronised only after it succeeded.  Its state dict nests the inner one's.

    Example
    -------
    >>> import numpy as np
    >>> from npoptim import SGD, Lookahead
    >>> params, opt = {"w": np.array([1.0])}, Lookahead(SGD(lr=0.1), k=2, alpha=0.5)
    >>> opt.update(params, {"w": np.array([1.0])})
    >>> opt.update(params, {"w": np.array([1.0])})   # fast 0.8; slow 1 + 0.5 (0.8 - 1) = 0.9, and w <- 0.9
    >>> params["w"], opt.slow_weights()["w"]
    (array([0.9]), array([0.9]))
    """

    def __init__(self, inner: Any, *, k: int = 5, alpha: float = 0.5) -> None:
        if not isinstance(inner, (_Optimizer, Partition, Lookahead)):
            raise TypeError(f"Lookahead: inner must be an npoptim optimizer, got {type(inner).__name__}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"Lookahead: invalid k={k!r}: must be an integer >= 1")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"Lookahead: invalid alpha={alpha!r}: must be a real number in [0, 1]")
        self.inner, self.k, self.alpha = inner, k, float(alpha)
        #: Per key: ``{"slow": ndarray}`` (the inner optimizer keeps its own state).
        self.slow: dict[str, np.ndarray] = {}
        self.step_count = 0
        self.skipped_steps = 0

    def __repr__(self) -> str:
        return f"Lookahead({self.inner!r}, k={self.k}, alpha={self.alpha})"

    @property
    def state(self) -> dict[str, dict[str, Any]]:
        """The inner optimizer's per-key state (not copies)."""
        return self.inner.state

    def slow_weights(self) -> dict[str, np.ndarray]:
        """Copies of the slow weights, by key."""
        return {k: v.copy() for k, v in self.slow.items()}

    def update(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray | None]) -> None:
        """The inner step, then the slow/fast synchronisation of the keys whose step is a multiple of ``k``."""
        fresh = {}
        if isinstance(params, Mapping) and isinstance(grads, Mapping):
            fresh = {  # copies taken before the step; committed only if it succeeds
                k: np.array(p, copy=True) for k, p in params.items()
                if k not in self.slow and grads.get(k) is not None and isinstance(p, np.ndarray)
            }
        steps = {k: s["step"] for k, s in self.inner.state.items()}
        skipped = self.inner.skipped_steps
        self.inner.update(params, grads)  # raises before writing anything
        if self.inner.skipped_steps != skipped:
            self.skipped_steps += 1
            return
        self.slow.update(fresh)
        moved = False
        for key, s in self.inner.state.items():
            if s["step"] != steps.get(key, 0):
                moved = True
                if s["step"] % self.k == 0:
                    slow, fast = self.slow[key], params[key]
                    slow += self.alpha * (fast - slow)
                    fast[...] = slow
        if moved:
            self.step_count += 1

    def state_dict(self) -> dict[str, Any]:
        """``{"optimizer": "Lookahead", "version": 2, "k", "alpha", "inner": <inner state dict without
        its "state">, "step_count", "skipped_steps", "state": {key: {<inner entry>, "slow": ndarray}}}``
        (one ``"state"`` of every optimizer's shape, so checkpoints store it as is)."""
        sd = self.inner.state_dict()
        state = sd.pop("state")
        for key, slow in self.slow.items():
            state[key] = {**state.get(key, {}), "slow": slow.copy()}
        return {
            "optimizer": "Lookahead",
            "version": STATE_DICT_VERSION,
            "k": self.k,
            "alpha": self.alpha,
            "inner": sd,
            "step_count": self.step_count,
            "skipped_steps": self.skipped_steps,
            "state": state,
        }

    @staticmethod
    def _split(state_dict: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        expected = {"optimizer", "version", "k", "alpha", "inner", "step_count", "skipped_steps", "state"}
        if not isinstance(state_dict, Mapping) or set(state_dict) != expected:
            got = sorted(state_dict) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            raise StateDictError(f"Lookahead.load_state_dict: keys {got} do not match the format's {sorted(expected)}")
        if state_dict["optimizer"] != "Lookahead" or not isinstance(state_dict["inner"], Mapping):
            raise StateDictError("Lookahead.load_state_dict: not a Lookahead state dict")
        if not isinstance(state_dict["state"], Mapping):
            raise StateDictError("Lookahead.load_state_dict: 'state' must be a mapping of key to slots")
        inner_state, slow = {}, {}
        for key, entry in state_dict["state"].items():
            if not isinstance(entry, Mapping) or "slow" not in entry:
                raise StateDictError(f"Lookahead.load_state_dict: state[{key!r}] has no 'slow' weights")
            a = entry["slow"]
            if not isinstance(a, np.ndarray) or a.dtype.kind not in "fc":
                raise StateDictError(f"Lookahead.load_state_dict: state[{key!r}]['slow'] must be a floating array")
            slow[key] = np.array(a, order="C", copy=True)
            inner_state[key] = {k: v for k, v in entry.items() if k != "slow"}
        return {**state_dict["inner"], "state": inner_state}, slow

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Replace the settings, the slow weights and the inner optimizer's state; on error nothing changes."""
        inner_sd, slow = self._split(state_dict)
        try:
            probe = Lookahead(copy.deepcopy(self.inner), k=state_dict["k"], alpha=state_dict["alpha"])
        except (TypeError, ValueError) as exc:
            raise StateDictError(f"Lookahead.load_state_dict: {exc}") from None
        probe.inner.load_state_dict(inner_sd)  # checks the inner state dict
        counters = [_loaded_count(state_dict, n) for n in ("step_count", "skipped_steps")]
        self.inner.load_state_dict(inner_sd)
        self.k, self.alpha, self.slow = probe.k, probe.alpha, slow
        self.step_count, self.skipped_steps = counters

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Any], build: Callable[[Mapping[str, Any]], Any]) -> Lookahead:
        """A new Lookahead around ``build(inner state dict)`` (``optimizer_from_state_dict``)."""
        inner_sd, _ = cls._split(state_dict)
        out = cls(build(inner_sd), k=state_dict["k"], alpha=state_dict["alpha"])
        out.load_state_dict(state_dict)
        return out
