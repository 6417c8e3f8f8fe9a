"""Placeholder for `npoptim trajectories` (being written)."""

HELP = "(trajectories: not implemented yet)"


def add_arguments(parser):
    pass


def run(args):
    raise NotImplementedError("npoptim trajectories is not implemented yet")
