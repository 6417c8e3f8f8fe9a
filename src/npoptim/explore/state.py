"""The explorer's view state: what the page shows, checked and clamped, to and from the URL's query.

Every value that reaches the computation passes through here, from the page's controls or from a
shared URL; a value that is not usable (NaN, a negative or huge rate, too many steps, an unknown
name) is replaced by the nearest usable one or by the default, and a message says so.  Nothing
here raises on bad input: :func:`from_query` and :func:`clamp` return the state *and* the messages.

>>> state, notes = from_query("?steps=5000&sgd.lr=nan&show=sgd,sgdd", ("sgd", "adam"))
>>> state.steps, state.lrs["sgd"], state.shown
(1000, 0.95, ('sgd',))
>>> for note in notes: print(note)
show: unknown optimizer(s) 'sgdd' ignored; offered: sgd, adam
steps=5000 is above the limit 1000: 1000 used
sgd.lr='nan' is not a finite number: 0.95 used
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlencode

__all__ = [
    "ViewState",
    "LR_MIN",
    "LR_MAX",
    "MAX_STEPS",
    "HYPER_MAX",
    "DEFAULT_STEPS",
    "main_hyperparameters",
    "default_state",
    "from_query",
    "to_query",
    "clamp",
    "round_lr",
]

#: The learning-rate sliders' range (log scale); a rate outside it is clamped.
LR_MIN, LR_MAX = 1e-4, 10.0
#: The most updates one path may take on the page (6 optimizers x 1000 steps stay interactive).
MAX_STEPS = 1000
DEFAULT_STEPS = 30
#: Momentum, betas and decay rates are clamped to [0, HYPER_MAX].
HYPER_MAX = 0.9999
#: The hyperparameters that get a control, where an optimizer's constructor has them.
_MAIN = ("momentum", "beta1", "beta2", "decay_rate")
#: ... except these (RMSprop's momentum changes its state slots; its decay rate is the main one).
_SKIP = {("rmsprop", "momentum")}


def round_lr(lr: float) -> float:
    """A rate to 4 significant digits, as the log sliders give it (``10**log10(0.95)`` is not 0.95)."""
    return float(f"{lr:.4g}")


def main_hyperparameters(name: str) -> dict[str, float]:
    """``{hyperparameter: default}`` of the controls the page gives optimizer ``name``."""
    from ..optimizers.registry import get_optimizer

    params = inspect.signature(get_optimizer(name)).parameters
    return {p: float(params[p].default) for p in _MAIN if p in params and (name, p) not in _SKIP}


@dataclass(frozen=True)
class ViewState:
    """Everything one view is computed from.  ``names``: the optimizers the page offers, in order."""

    function: str
    names: tuple[str, ...]
    shown: tuple[str, ...]
    lrs: dict[str, float]
    hyper: dict[str, dict[str, float]]
    start: tuple[float, float]
    steps: int = DEFAULT_STEPS
    inspect: str = ""
    #: The update the scrub slider shows (``None``: the last) and the optimizers of the last Tune, whose
    #: curves the page shows (re-run from the URL: the tuning is a function of the other values).
    at: int | None = None
    tuned: tuple[str, ...] = ()
    messages: tuple[str, ...] = field(default=(), compare=False)


def default_state(
    function: str = "anisotropic", names: tuple[str, ...] | None = None, shown: tuple[str, ...] | None = None
) -> ViewState:
    """The book's figure on ``function`` (its own start) with the optimizers ``names`` (default the book's six)."""
    from ..experiments.trajectories import default_lr
    from ..optimizers.registry import select_optimizers
    from ..problems.functions import get_function

    fn = get_function(function)
    if fn.dim != 2:
        raise ValueError(f"the explorer draws 2-D functions, but {fn.name!r} is {fn.dim}-dimensional")
    names = tuple(select_optimizers(list(names) if names is not None else None))
    shown = names if shown is None else tuple(n for n in names if n in shown)
    return ViewState(
        function=fn.name,
        names=names,
        shown=shown,
        lrs={n: min(max(round_lr(default_lr(n)), LR_MIN), LR_MAX) for n in names},
        hyper={n: main_hyperparameters(n) for n in names},
        start=(float(fn.start[0]), float(fn.start[1])),
        steps=DEFAULT_STEPS,
        inspect=shown[0] if shown else names[0],
    )


def _number(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _bounded(what: str, raw: object, low: float, high: float, default: float, notes: list[str]) -> float:
    value = _number(raw)
    if value is None:
        notes.append(f"{what}={raw!r} is not a finite number: {default:g} used")
        return default
    if value < low:
        notes.append(f"{what}={value:g} is below the limit {low:g}: {low:g} used")
        return low
    if value > high:
        notes.append(f"{what}={value:g} is above the limit {high:g}: {high:g} used")
        return high
    return value


def clamp(state: ViewState, base: ViewState | None = None) -> ViewState:
    """``state`` with every value usable: out-of-range values clamped, unusable ones from ``base``.

    ``base`` (default: the default state of ``state.function``) gives the fallbacks; the messages
    of the returned state say what was changed.
    """
    from ..problems.functions import get_function

    notes: list[str] = list(state.messages)
    try:
        fn = get_function(state.function)
        if fn.dim != 2:
            raise ValueError(f"the explorer draws 2-D functions, but {fn.name!r} is {fn.dim}-dimensional")
    except (ValueError, TypeError) as exc:
        fallback = base.function if base is not None else "anisotropic"
        notes.append(f"function: {exc}; {fallback} used")
        fn = get_function(fallback)
    base = base if base is not None and base.function == fn.name else default_state(fn.name, state.names)
    steps = int(_bounded("steps", state.steps, 1, MAX_STEPS, base.steps, notes))
    lrs, hyper = {}, {}
    for n in state.names:
        lrs[n] = round_lr(_bounded(f"{n}.lr", state.lrs.get(n, base.lrs[n]), LR_MIN, LR_MAX, base.lrs[n], notes))
        given = state.hyper.get(n, {})
        hyper[n] = {
            p: _bounded(f"{n}.{p}", given.get(p, d), 0.0, HYPER_MAX, d, notes) for p, d in base.hyper[n].items()
        }
    (xlo, xhi), (ylo, yhi) = fn.domain[:2]
    start = (
        _bounded("start x", state.start[0], xlo, xhi, base.start[0], notes),
        _bounded("start y", state.start[1], ylo, yhi, base.start[1], notes),
    )
    shown = tuple(n for n in state.names if n in state.shown)
    inspect_ = state.inspect if state.inspect in state.names else (shown[0] if shown else state.names[0])
    at = None if state.at is None else int(_bounded("at", state.at, 0, steps, steps, notes))
    tuned = tuple(n for n in state.names if n in state.tuned)
    return replace(
        state,
        function=fn.name,
        shown=shown,
        lrs=lrs,
        hyper=hyper,
        start=start,
        steps=steps,
        inspect=inspect_,
        at=None if at == steps else at,
        tuned=tuned,
        messages=tuple(notes),
    )


def to_query(state: ViewState) -> str:
    """The state as a URL query (``?function=...&steps=...``), read back by :func:`from_query`."""
    items: list[tuple[str, str]] = [
        ("function", state.function),
        ("steps", str(state.steps)),
        ("start", f"{state.start[0]:.6g},{state.start[1]:.6g}"),
        ("show", ",".join(state.shown)),
        ("inspect", state.inspect),
    ]
    for n in state.names:
        items.append((f"{n}.lr", f"{state.lrs[n]:.6g}"))
        items.extend((f"{n}.{p}", f"{v:.6g}") for p, v in state.hyper[n].items())
    if state.at is not None:
        items.append(("at", str(state.at)))
    if state.tuned:
        items.append(("tuned", ",".join(state.tuned)))
    return "?" + urlencode(items, safe=",:=")


def from_query(query: str, names: tuple[str, ...], function: str = "anisotropic") -> tuple[ViewState, list[str]]:
    """The state a URL query describes, clamped (:func:`clamp`), and the messages about what was not usable.

    Missing keys take the default state of the query's function (``function`` when it has none);
    ``names`` are the optimizers the page offers.
    """
    notes: list[str] = []
    pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    q = dict(pairs)
    base = default_state(function, names)
    fspec = q.pop("function", base.function)
    try:
        base = default_state(fspec, names)
    except (ValueError, TypeError) as exc:
        notes.append(f"function={fspec!r}: {exc}; {base.function} used")
        fspec = base.function
    lrs, hyper = dict(base.lrs), {n: dict(h) for n, h in base.hyper.items()}
    start = list(base.start)
    shown = base.shown
    if "show" in q:
        raw = q.pop("show")
        asked = [s.strip().lower() for s in raw.split(",") if s.strip()]
        unknown = [s for s in asked if s not in names]
        if unknown:
            notes.append(
                f"show: unknown optimizer(s) {', '.join(map(repr, unknown))} ignored; offered: {', '.join(names)}"
            )
        shown = tuple(n for n in names if n in asked)
    if "start" in q:
        raw = q.pop("start")
        parts = raw.split(",")
        if len(parts) != 2:
            notes.append(f"start={raw!r}: expected two numbers x,y; the function's start used")
        else:
            start = [_number(p.strip()) if _number(p.strip()) is not None else p for p in parts]
    steps: object = q.pop("steps", base.steps)
    at: object = q.pop("at", None)
    tuned: tuple[str, ...] = ()
    if "tuned" in q:
        asked = [s.strip().lower() for s in q.pop("tuned").split(",") if s.strip()]
        if [s for s in asked if s not in names]:
            notes.append(f"tuned: unknown optimizer(s) {', '.join(repr(s) for s in asked if s not in names)} ignored")
        tuned = tuple(n for n in names if n in asked)
    inspect_ = q.pop("inspect", base.inspect).lower()
    if inspect_ not in names:
        notes.append(f"inspect={inspect_!r}: unknown optimizer; {base.inspect} used")
        inspect_ = base.inspect
    for key, raw in q.items():
        name, dot, param = key.partition(".")
        if not dot or name not in names or (param != "lr" and param not in hyper[name]):
            notes.append(f"unknown URL parameter {key!r} ignored")
        elif param == "lr":
            lrs[name] = raw  # type: ignore[assignment]  (checked by clamp)
        else:
            hyper[name][param] = raw  # type: ignore[assignment]
    state = ViewState(
        function=fspec,
        names=base.names,
        shown=shown,
        lrs=lrs,
        hyper=hyper,
        start=(start[0], start[1]),
        steps=steps,
        inspect=inspect_,  # type: ignore[arg-type]
        at=at,  # type: ignore[arg-type]
        tuned=tuned,
        messages=tuple(notes),
    )
    out = clamp(state, base)
    return out, list(out.messages)
