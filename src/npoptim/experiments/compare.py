"""Placeholder for `npoptim compare` (being written)."""

HELP = "(compare: not implemented yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("npoptim compare is not implemented yet")
