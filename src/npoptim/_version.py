"""The package version, in a module of its own so that every floor can read it without importing the top."""

__version__ = "0.1.0"
