"""``npoptim schedule``: plot learning-rate schedules over N updates.

Each ``--schedule`` is either ``NAME:ARG=VALUE,ARG=VALUE`` (arguments not
given take the schedule's defaults) or a JSON object in the form of
:meth:`npoptim.schedules.Schedule.to_dict`, which is how a warm-up wraps
another schedule::

    npoptim schedule --schedule cosine:lr=0.1,decay_steps=1000 \\
        --schedule onecycle:max_lr=0.1,total_steps=1000 --steps 1000 --out DIR
    npoptim schedule --schedule '{"name": "warmup", "args": {"steps": 100,
        "schedule": {"name": "cosine", "args": {"lr": 0.1, "decay_steps": 900}}}}' --out DIR

Writes ``DIR/schedules.png`` (rate against the 0-based update index ``t``),
``DIR/results.json`` (each schedule as plain data with its first, last, min
and max rate) and ``DIR/report.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from ..errors import CLIError
from ..schedules import SCHEDULES, Schedule

HELP = "plot learning-rate schedules over N updates into a PNG"

_MAX_STEPS = 10_000_000
_INT = re.compile(r"[+-]?\d+")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schedule",
        action="append",
        required=True,
        metavar="SPEC",
        help=f"NAME:ARG=VALUE,... or a JSON {{'name', 'args'}} object; repeatable. Names: {', '.join(SCHEDULES)}",
    )
    parser.add_argument("--steps", type=int, default=1000, help="number of updates to plot (default 1000)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    parser.add_argument("--log", action="store_true", help="logarithmic rate axis")


def _value(text: str) -> Any:
    if _INT.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def _build(name: Any, args: Any, where: str) -> Schedule:
    """A schedule from a name and arguments, defaults filled in, nested dicts built."""
    cls = SCHEDULES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise CLIError(f"{where}: unknown schedule {name!r}; known: {', '.join(SCHEDULES)}")
    if not isinstance(args, dict):
        raise CLIError(f"{where}: arguments of {name!r} must be an object, got {args!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(args) - set(fields))
    if unknown:
        raise CLIError(f"{where}: unknown argument(s) {unknown} for {name!r}; its arguments: {list(fields)}")
    required = [
        n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [n for n in required if n not in args]
    if missing:
        hint = " (a warm-up's inner schedule needs the JSON form)" if "schedule" in missing else ""
        raise CLIError(f"{where}: missing argument(s) {missing} for {name!r}{hint}")
    kwargs = dict(args)
    if "schedule" in kwargs:
        inner = kwargs["schedule"]
        if not isinstance(inner, dict) or set(inner) - {"name", "args"} or "name" not in inner:
            raise CLIError(f"{where}: 'schedule' of {name!r} must be an object {{'name': ..., 'args': {{...}}}}")
        kwargs["schedule"] = _build(inner["name"], inner.get("args", {}), where)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"{where}: {exc}") from None


def parse_schedule(spec: str) -> Schedule:
    """A schedule from one ``--schedule`` value (see the module docstring)."""
    where = f"--schedule {spec!r}"
    text = spec.strip()
    if text.startswith("{"):
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CLIError(f"{where}: invalid JSON: {exc}") from None
        if not isinstance(d, dict) or set(d) - {"name", "args"} or "name" not in d:
            raise CLIError(f"{where}: a JSON schedule is an object {{'name': ..., 'args': {{...}}}}")
        return _build(d["name"], d.get("args", {}), where)
    name, _, rest = text.partition(":")
    args: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise CLIError(f"{where}: expected ARG=VALUE, got {item!r}")
        if key.strip() in args:
            raise CLIError(f"{where}: argument {key.strip()!r} given twice")
        args[key.strip()] = _value(value.strip())
    return _build(name.strip(), args, where)


def run(args: argparse.Namespace) -> int:
    from ..report.schedules import write_schedules

    if not 1 <= args.steps <= _MAX_STEPS:
        raise CLIError(f"invalid --steps={args.steps}: must be between 1 and {_MAX_STEPS}")
    schedules = [(spec, parse_schedule(spec)) for spec in args.schedule]
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {str(out)!r} exists and is not a directory")
    write_schedules(out, schedules, args.steps, log=args.log)
    return 0
