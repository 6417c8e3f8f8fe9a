"""The one registry of optimizers that the CLI, the tests and the benchmarks read.

Names are the class names in lower case (``"adam"``); lookups ignore case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import StateDictError
from . import fused
from .base import Optimizer
from .composite import MuonAdamW
from .extended import Adadelta, Adamax, AdamW, Lion, Nadam, RAdam
from .matrix import Adafactor, Muon
from .modern import ASGD, Rprop
from .prodigy import Prodigy
from .rules import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop
from .schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD
from .trust import LAMB, LARS
from .wrappers import Lookahead, Partition

__all__ = [
    "OPTIMIZERS",
    "BOOK_OPTIMIZERS",
    "get_optimizer",
    "select_optimizers",
    "create_optimizer",
    "optimizer_from_state_dict",
    "TENSOR_OPTIMIZERS",
    "WRAPPERS",
    "COMPOSITES",
    "ALIASES",
    "ALL_OPTIMIZERS",
    "registry_name",
    "display_name",
]

#: name -> optimizer class: the book's six in its order, then the rules of ``extended``.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.__name__.lower(): cls
    for cls in (SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam, AdamW, Nadam, Adamax, Adadelta, RAdam, Lion)
    + (Rprop, ASGD, ScheduleFreeSGD, ScheduleFreeAdamW)  # issue 15: element-wise, kernels in fused/rprop_asgd_sf.py
}
fused.declare_classes(OPTIMIZERS.values())  # the fast path learns the classes from here, never imports us

#: Rules that see a whole tensor at once (Newton--Schulz, factored moments, trust-ratio norms), so not
#: element-wise: the registry-wide battery's claims (complex = two real arrays, state slots of the
#: parameter's shape, the compiled kernels, "any dict of parameters") do not hold for them, and they are
#: not in :data:`OPTIMIZERS` (nor in ``--optimizers all``); each has its own tests.  Muon takes 2-D
#: matrices only: use it inside a :class:`~npoptim.optimizers.wrappers.Partition`.
TENSOR_OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.__name__.lower(): cls for cls in (Muon, Adafactor, LAMB, LARS, Prodigy)  # Prodigy: one d per call
}
#: Optimizers made of optimizers (built from other instances, not from hyperparameters alone).
WRAPPERS: dict[str, type] = {"partition": Partition, "lookahead": Lookahead}
#: Named composites (a :class:`Partition` built from hyperparameters alone, see :mod:`.composite`): their
#: registry name is not their class name.
COMPOSITES: dict[str, type] = {"muon+adamw": MuonAdamW}
#: Other spellings accepted for a registry name (issue 15's ``schedulefree-adamw``).
ALIASES: dict[str, str] = {"schedulefree-adamw": "schedulefreeadamw", "schedulefree-sgd": "schedulefreesgd"}
#: What ``--optimizers all`` selects in every experiment: every rule that updates any dict of real
#: parameters -- :data:`OPTIMIZERS`, the whole-tensor rules except Muon (2-D matrices only, so it cannot
#: take a bias or a test function's point alone) and the composites (where Muon gets the matrices).
ALL_OPTIMIZERS: tuple[str, ...] = (*OPTIMIZERS, *(n for n in TENSOR_OPTIMIZERS if n != "muon"), *COMPOSITES)


#: The six rules of "Deep Learning from Scratch" section 6.1, the experiments' default selection.
BOOK_OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def select_optimizers(names: Sequence[str] | str | None) -> list[str]:
    """A user's selection as registry names: ``None`` -> :data:`BOOK_OPTIMIZERS`; ``"all"`` -> every
    optimizer of :data:`ALL_OPTIMIZERS`; otherwise each name checked (case-insensitive), duplicates refused."""
    if names is None:
        return list(BOOK_OPTIMIZERS)
    if isinstance(names, str):
        names = [names]
    if [str(n).lower() for n in names] == ["all"]:
        return list(ALL_OPTIMIZERS)
    chosen = [registry_name(n) for n in names]  # raises naming an unknown one
    if not chosen:
        raise ValueError(f"no optimizer selected; known: {', '.join(_known())} (or 'all')")
    twice = sorted({n for n in chosen if chosen.count(n) > 1})
    if twice:
        raise ValueError(f"optimizer(s) listed twice: {', '.join(twice)}")
    return chosen


def _known() -> list[str]:
    return [*OPTIMIZERS, *TENSOR_OPTIMIZERS, *COMPOSITES]


def registry_name(name: str) -> str:
    """The registry's name for ``name``: lower case, an alias resolved (``"ScheduleFree-AdamW"`` ->
    ``"schedulefreeadamw"``); an unknown name raises ``ValueError`` listing the known ones."""
    key = str(name).lower()
    key = ALIASES.get(key, key)
    if key not in OPTIMIZERS and key not in TENSOR_OPTIMIZERS and key not in COMPOSITES:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(_known())}")
    return key


def display_name(name: str) -> str:
    """How reports and figures name an optimizer: its class name (``"adam"`` -> ``"Adam"``,
    ``"schedulefree-adamw"`` -> ``"ScheduleFreeAdamW"``), except a composite, whose registry spelling is
    what the user selected and says what it is made of (``"muon+adamw"``, not ``"MuonAdamW"``).

    >>> display_name("adam"), display_name("schedulefree-adamw"), display_name("Muon+AdamW")
    ('Adam', 'ScheduleFreeAdamW', 'muon+adamw')
    """
    key = registry_name(name)  # raises naming the known ones
    return key if key in COMPOSITES else get_optimizer(key).__name__


def get_optimizer(name: str) -> type[Optimizer]:
    """The optimizer class registered as ``name`` (case-insensitive, aliases accepted), in
    :data:`OPTIMIZERS`, :data:`TENSOR_OPTIMIZERS` or :data:`COMPOSITES`."""
    key = registry_name(name)
    return OPTIMIZERS.get(key) or TENSOR_OPTIMIZERS.get(key) or COMPOSITES[key]


def create_optimizer(name: str, **hyperparameters: Any) -> Optimizer:
    """``get_optimizer(name)(**hyperparameters)``; unknown arguments raise ``TypeError``."""
    return get_optimizer(name)(**hyperparameters)


def optimizer_from_state_dict(state_dict: Mapping[str, Any]) -> Optimizer:
    """A new optimizer of the class ``state_dict`` names, with its state loaded."""
    if not isinstance(state_dict, Mapping) or "optimizer" not in state_dict:
        raise StateDictError("optimizer_from_state_dict: not an npoptim state dict (no 'optimizer' entry)")
    name = str(state_dict["optimizer"]).lower()
    if name in WRAPPERS:  # its groups' optimizers are rebuilt from their own entries, recursively
        return WRAPPERS[name].from_state_dict(state_dict, optimizer_from_state_dict)
    try:
        opt = get_optimizer(state_dict["optimizer"])()
    except ValueError as exc:
        raise StateDictError(f"optimizer_from_state_dict: {exc}") from None
    opt.load_state_dict(state_dict)
    return opt
