"""Placeholder for `npoptim train` (being written)."""

HELP = "(train: not implemented yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("npoptim train is not implemented yet")
