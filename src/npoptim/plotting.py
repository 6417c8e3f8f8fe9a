"""The public name of :mod:`npoptim.report.plotting`: the same module object, under its former name."""

import sys

from .report import plotting as _module

sys.modules[__name__] = _module
