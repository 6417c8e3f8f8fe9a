"""``npoptim check``: grade an optimizer class someone wrote against npoptim's reference, and name what is wrong.

::

    npoptim check PATH.py:ClassName [--rule adam] [--json] [--kwargs 'lr=0.1,momentum=0.5']
    npoptim check NOTEBOOK.ipynb:ClassName      # code cells are run in order
    npoptim check package.module:ClassName      # imported from the current directory

The class runs in a child process with a time limit (``--timeout``); exit status 0 when no finding
is a defect, 1 when one is, 2 when it cannot be graded (bad target, no such class, unknown rule,
code that does not load, the time limit).  docs/check.md lists the findings.
"""

from __future__ import annotations

import argparse
import math

from ..errors import CLIError

HELP = "grade an optimizer class you wrote (PATH.py:Class, NOTEBOOK.ipynb:Class, module:Class) and name its defects"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET", help="PATH.py:Class, NOTEBOOK.ipynb:Class or package.module:Class")
    parser.add_argument(
        "--rule",
        help="the reference rule: sgd, momentum, nesterov, adagrad, rmsprop, adam "
        "(default: read from the class name, MyAdam -> adam)",
    )
    parser.add_argument(
        "--kwargs",
        default="",
        metavar="K=V,...",
        help="hyperparameters to build the class with, the book's names (default: the book's values)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="time limit for the whole check, loading included (default 20)",
    )


def parse_kwargs(text: str) -> dict[str, float]:
    """``'lr=0.1,momentum=0.5'`` -> ``{"lr": 0.1, "momentum": 0.5}``; a bad item raises CLIError naming it."""
    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise CLIError(f"--kwargs {item!r}: expected NAME=VALUE, e.g. lr=0.1")
        if name in out:
            raise CLIError(f"--kwargs: {name!r} given twice")
        try:
            number = float(value)
        except ValueError:
            raise CLIError(f"--kwargs {item!r}: {value.strip()!r} is not a number") from None
        if not math.isfinite(number):
            raise CLIError(f"--kwargs {item!r}: must be finite")
        out[name] = number
    return out


def run(args: argparse.Namespace) -> int:
    from ..grading import DEFAULT_TIMEOUT, check_optimizer
    from ..report.check import render_json, render_text

    kwargs = parse_kwargs(args.kwargs)
    report = check_optimizer(
        args.target, rule=args.rule, kwargs=kwargs, timeout=DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    ).to_dict()
    print(render_json(report) if args.json else render_text(report), end="")
    return 1 if report["verdict"] == "fail" else 0
