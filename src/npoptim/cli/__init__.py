"""The ``npoptim`` command line: one sub-command per experiment.

Each sub-command lives in a module of this package that defines
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``; the
table :data:`COMMANDS` below is the only place that lists them.  Modules keep
heavy imports (matplotlib, ...) inside ``run`` so that ``--help`` stays fast.  This package is the only
one that parses command lines (``argparse``) and turns errors into exit status 2; what the commands
compute lives in :mod:`npoptim.experiments`, what they write in :mod:`npoptim.report`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..errors import CLIError

__all__ = ["main", "COMMANDS", "CLIError"]

#: sub-command -> module implementing it
COMMANDS: dict[str, str] = {
    "compare": "npoptim.cli.compare",
    "trajectories": "npoptim.cli.trajectories",
    "train": "npoptim.cli.train",
    "sweep": "npoptim.cli.sweep",
    "schedule": "npoptim.cli.schedule",
    "check": "npoptim.cli.check",
    "explore": "npoptim.cli.explore",
}


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="npoptim", description="Neural-network optimizers in NumPy, verified and pictured."
    )
    parser.add_argument("--version", action="version", version=f"npoptim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (CLIError, ValueError, TypeError, FileNotFoundError, NotADirectoryError) as exc:
        if args.debug:
            raise
        print(f"npoptim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("npoptim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
