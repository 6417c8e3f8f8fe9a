"""Experiments behind the CLI's sub-commands; each is also usable as a library."""
