r"""Search spaces: which hyperparameters a sweep tunes, per optimizer, and how.

One table, :data:`TUNED`, says which hyperparameters besides the learning rate
are tuned for an optimizer of the registry (:data:`npoptim.ALL_OPTIMIZERS`, and Muon).  An
optimizer that is not in the table (one added to the registry later) is tuned
on the learning rate only -- the documented fallback -- and keeps its
constructor's defaults for everything else.

Learning-rate ranges
--------------------
An optimizer's ``lr`` does not mean the same thing everywhere (Prodigy's is a
multiplier of its own estimate, Adafactor's a cap on a relative step, Rprop's
only the first step size), so each optimizer has its own range: by default
:data:`LR_DECADES` decades either side of its constructor's default ``lr``,
:math:`[\eta_0 10^{-k}, \eta_0 10^{k}]` (for the book's rules, default 0.01, that
is the old common range [1e-4, 1]), except where :data:`LR_RANGES` says
otherwise, each exception with its reason.  :func:`default_lr_range` is the one
place that answers; a sweep may override it for all optimizers or per optimizer
(:func:`resolve_lr_ranges`).

Distributions
-------------
* ``lr`` for every optimizer: log-uniform on its range ``[lr_low, lr_high]``,
  :math:`\log \eta \sim \mathcal{U}(\log \eta_{lo}, \log \eta_{hi})`
  (Bergstra & Bengio, 2012, "Random search for hyper-parameter optimization").
* Rates close to one (momentum, decay rates, betas) are drawn log-uniformly in
  :math:`1 - \beta`, so that 0.9, 0.99 and 0.999 are equally likely decades
  (the parameterisation of Schmidt, Schneider & Hennig, 2021, "Descending
  through a Crowded Valley", table 3).

Grid search
-----------
The grid of an optimizer is the Cartesian product of ``n_lr`` log-spaced
learning rates and each tuned dimension's fixed ``grid`` values below.  For
equal budgets every optimizer must get the same number of configurations, so
``budget`` must be a multiple of every optimizer's product of non-lr grid sizes
(4 for the default table); ``n_lr = budget / product``.  Random search gives
every optimizer exactly ``budget`` configurations, whatever its dimensions.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..optimizers import get_optimizer, registry_name

__all__ = [
    "Dimension",
    "TUNED",
    "LR_DECADES",
    "LR_RANGES",
    "default_lr_range",
    "lr_range_source",
    "resolve_lr_ranges",
    "SEARCH_METHODS",
    "SPACES",
    "tuned_dimensions",
    "sample_configs",
    "grid_multiple",
    "default_hyperparameters",
]

SEARCH_METHODS = ("random", "grid")
#: "full": lr plus the table's dimensions; "lr": the learning rate only, for every optimizer.
SPACES = ("full", "lr")


@dataclass(frozen=True)
class Dimension:
    """One tuned hyperparameter other than the learning rate.

    ``one_minus=True``: the value is :math:`1 - u` with :math:`u` log-uniform
    on ``[low, high]`` (``low``, ``high`` bound :math:`1-\\beta`).
    ``grid``: the values a grid search uses (the values themselves, not
    :math:`1-\\beta`).
    """

    name: str
    low: float
    high: float
    grid: tuple[float, ...]
    one_minus: bool = True

    def sample(self, rng: np.random.Generator) -> float:
        u = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return 1.0 - u if self.one_minus else u


_MOMENTUM = Dimension("momentum", 1e-3, 0.5, (0.9, 0.99))
_DECAY_RATE = Dimension("decay_rate", 1e-3, 0.5, (0.9, 0.99))
_ADAM_BETAS = (Dimension("beta1", 1e-2, 0.5, (0.5, 0.9)), Dimension("beta2", 1e-4, 1e-1, (0.99, 0.999)))

#: optimizer name -> the hyperparameters tuned besides ``lr``.
#: Names not listed here (and every optimizer under ``space="lr"``) tune ``lr`` only.
TUNED: dict[str, tuple[Dimension, ...]] = {
    "sgd": (),
    "momentum": (_MOMENTUM,),
    "nesterov": (_MOMENTUM,),
    "adagrad": (),
    "rmsprop": (_DECAY_RATE,),
    "adam": _ADAM_BETAS,
    "adamw": _ADAM_BETAS,
    "nadam": _ADAM_BETAS,
    "adamax": _ADAM_BETAS,
    "radam": _ADAM_BETAS,
    "adadelta": (_DECAY_RATE,),
    # Lion's interpolation rate beta1 and its momentum rate beta2 (Chen et al. 2023 use 0.9/0.99 and 0.95/0.98)
    "lion": (Dimension("beta1", 1e-2, 0.5, (0.9, 0.95)), Dimension("beta2", 1e-3, 1e-1, (0.98, 0.99))),
    # issue 15: Rprop's lr is only its initial step size (its etas adapt it); ASGD's lambd/t0 keep torch's defaults
    "rprop": (),
    "asgd": (),
    # schedule-free: the interpolation beta (Defazio et al. 2024 use 0.9); AdamW's beta2 as Adam's
    "schedulefreesgd": (_MOMENTUM,),
    "schedulefreeadamw": (Dimension("beta1", 1e-2, 0.5, (0.9, 0.95)), _ADAM_BETAS[1]),
    # the whole-tensor rules (TENSOR_OPTIMIZERS) and the composites: lr plus their main rates.
    # Adafactor's and Prodigy's step sizes adapt themselves (relative step, the d estimate): lr only.
    "adafactor": (),
    "prodigy": (),
    "lamb": _ADAM_BETAS,
    "lars": (_MOMENTUM,),
    "muon": (Dimension("momentum", 1e-2, 0.5, (0.9, 0.95)),),
    # muon+adamw: lr is AdamW's; Muon's is muon_lr_ratio * lr (log-uniform on [0.1, 10], see MuonAdamW)
    "muon+adamw": (Dimension("muon_lr_ratio", 0.1, 10.0, (1.0, 3.0), one_minus=False),),
}


#: Decades either side of an optimizer's default ``lr`` that its default range spans.
LR_DECADES = 2

#: optimizer name -> its default lr range where the rule above (:data:`LR_DECADES` decades either side of
#: the constructor's default lr) does not fit.  Optimizers not listed follow the rule: e.g. Adam
#: [1e-5, 0.1], ScheduleFreeSGD and LARS [0.01, 100] (their default lr is 1; LARS's step is lr times the
#: trust coefficient times ||w|| / ||g||), Rprop [1e-4, 1] (lr is only its first step size, which its
#: etas then adapt, so a wide range mostly changes the first steps).
LR_RANGES: dict[str, tuple[float, float]] = {
    # Prodigy's lr multiplies its own estimate d of the distance to the solution; the method is meant
    # to be run at lr = 1 (Mishchenko & Defazio 2024, "Prodigy", recommend keeping the default 1), so
    # a multiplier of 100 (the rule's upper end) is no setting anyone needs: one decade above 1.  Below,
    # the rule's two decades stay: on the book's network the 2024 study (docs/optimizers-2024.md, on
    # [1e-4, 10]) found its best lr at 0.02 - 0.84 and near-best accuracy from 0.01 to 4.6.
    "prodigy": (0.01, 10.0),
    # Adafactor's relative step is rho_t = min(lr, 1 / sqrt(t)) <= 1: every lr >= 1 gives the same run,
    # so the range stops at 1 (it is also what the rule gives for its default 0.01: explicit to say why).
    "adafactor": (1e-4, 1.0),
}


def _check_optimizer(name: str) -> str:
    return registry_name(name)  # raises ValueError naming the known ones


def tuned_dimensions(optimizer: str, space: str = "full") -> tuple[Dimension, ...]:
    """The non-lr dimensions tuned for ``optimizer`` (``()`` for the lr-only fallback)."""
    if space not in SPACES:
        raise ValueError(f"invalid space={space!r}: must be one of {SPACES}")
    name = _check_optimizer(optimizer)
    if space == "lr":
        return ()
    dims = TUNED.get(name, ())
    accepted = set(inspect.signature(get_optimizer(name)).parameters)
    for d in dims:
        if d.name not in accepted:
            raise ValueError(f"search-space table: optimizer {name!r} has no hyperparameter {d.name!r}")
    return dims


def default_hyperparameters(optimizer: str) -> dict[str, Any]:
    """The constructor's defaults, as a plain dict (what an untuned run uses)."""
    return get_optimizer(optimizer)().hyperparameters


def grid_multiple(optimizers: list[str], space: str = "full") -> int:
    """The budgets a grid search accepts are the multiples of this number."""
    m = 1
    for name in optimizers:
        m = math.lcm(m, math.prod(len(d.grid) for d in tuned_dimensions(name, space)))
    return m


def _check_range(lr_range: Any, optimizer: str | None = None) -> tuple[float, float]:
    of = f" for {optimizer}" if optimizer else ""
    try:
        lo, hi = (float(v) for v in lr_range)
    except (TypeError, ValueError):
        raise ValueError(f"invalid lr range{of} {lr_range!r}: need two numbers (low, high)") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
        raise ValueError(f"invalid lr range{of} {lr_range!r}: need 0 < low < high, both finite")
    return lo, hi


def _round(x: float) -> float:
    return float(f"{x:.12g}")  # as the configurations: the same JSON on every platform


def default_lr_range(optimizer: str) -> tuple[float, float]:
    """The lr range a sweep uses for ``optimizer`` unless told otherwise (see the module docstring).

    >>> default_lr_range("sgd"), default_lr_range("adam"), default_lr_range("prodigy")
    ((0.0001, 1.0), (1e-05, 0.1), (0.01, 10.0))
    """
    name = _check_optimizer(optimizer)
    if name in LR_RANGES:
        return _check_range(LR_RANGES[name], name)
    lr0 = inspect.signature(get_optimizer(name)).parameters["lr"].default
    if isinstance(lr0, bool) or not isinstance(lr0, (int, float)) or not (math.isfinite(lr0) and lr0 > 0):
        raise ValueError(f"lr-range table: optimizer {name!r} has no numeric default lr ({lr0!r}); "
                         "give it an entry in LR_RANGES")
    return _round(lr0 * 10.0**-LR_DECADES), _round(lr0 * 10.0**LR_DECADES)


def lr_range_source(optimizer: str, lr_range: tuple[float, float]) -> str:
    """Where ``lr_range`` comes from for ``optimizer``: the table's exception, the rule, or the user."""
    name = _check_optimizer(optimizer)
    if tuple(float(v) for v in lr_range) != default_lr_range(name):
        return "set for this sweep"
    return "table (LR_RANGES)" if name in LR_RANGES else f"default lr × 10^±{LR_DECADES}"


def resolve_lr_ranges(
    optimizers: list[str] | tuple[str, ...],
    lr_range: tuple[float, float] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, tuple[float, float]]:
    """optimizer -> the lr range it is tuned on, in the order of ``optimizers`` (registry names).

    Precedence: ``overrides[name]`` (per optimizer; any registry spelling), then ``lr_range`` (one range
    for all), then :func:`default_lr_range`.  An override for an optimizer that is not in
    ``optimizers``, one given twice (two spellings), or an invalid range raises ``ValueError`` naming
    the optimizer and the value.
    """
    names = [_check_optimizer(o) for o in optimizers]
    common = None if lr_range is None else _check_range(lr_range)
    per: dict[str, tuple[float, float]] = {}
    for key, value in dict(overrides or {}).items():
        try:
            name = _check_optimizer(key)
        except ValueError as exc:
            raise ValueError(f"lr range given for an unknown optimizer: {exc}") from None
        if name not in names:
            raise ValueError(f"lr range given for {key!r}, which is not among the sweep's optimizers {names}")
        if name in per:
            raise ValueError(f"lr range given twice for {name!r} (as {key!r} too)")
        per[name] = _check_range(value, name)
    return {n: per.get(n) or common or default_lr_range(n) for n in names}


def sample_configs(
    optimizer: str,
    budget: int,
    *,
    method: str,
    lr_range: tuple[float, float] | None = None,
    rng: np.random.Generator | None = None,
    space: str = "full",
    grid_budget_multiple: int | None = None,
) -> list[dict[str, float]]:
    """``budget`` hyperparameter settings for ``optimizer`` (only the tuned ones; the rest stay default).

    ``method="random"`` draws from the distributions above with ``rng`` (a
    ``np.random.Generator``, required); ``"grid"`` is deterministic and needs
    ``budget`` to be a multiple of the product of the non-lr grid sizes.
    ``lr_range=None``: the optimizer's :func:`default_lr_range`.  Values are rounded to 12
    significant digits so that a configuration's JSON, and thus its key in the store, is the same on
    every platform.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"invalid budget={budget!r}: must be a positive integer (configurations per optimizer)")
    if method not in SEARCH_METHODS:
        raise ValueError(f"invalid search method={method!r}: must be one of {SEARCH_METHODS}")
    lo, hi = default_lr_range(optimizer) if lr_range is None else _check_range(lr_range, optimizer)
    dims = tuned_dimensions(optimizer, space)
    out: list[dict[str, float]] = []
    if method == "random":
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"random search needs rng: a np.random.Generator, got {type(rng).__name__}")
        for _ in range(budget):
            cfg = {"lr": math.exp(rng.uniform(math.log(lo), math.log(hi)))}
            for d in dims:
                cfg[d.name] = d.sample(rng)
            out.append(cfg)
    else:
        per = math.prod(len(d.grid) for d in dims)
        if budget % per:
            hint = f"; a multiple of {grid_budget_multiple} fits every optimizer" if grid_budget_multiple else ""
            raise ValueError(
                f"grid search: budget={budget} is not a multiple of {per}, the number of non-lr grid points "
                f"of {optimizer!r} ({', '.join(d.name for d in dims)}){hint}"
            )
        n_lr = budget // per
        lrs = [math.sqrt(lo * hi)] if n_lr == 1 else list(np.geomspace(lo, hi, n_lr))
        combos: list[dict[str, float]] = [{}]
        for d in dims:
            combos = [{**c, d.name: v} for c in combos for v in d.grid]
        out = [{"lr": float(lr), **c} for lr in lrs for c in combos]
    return [{k: float(f"{v:.12g}") for k, v in cfg.items()} for cfg in out]
