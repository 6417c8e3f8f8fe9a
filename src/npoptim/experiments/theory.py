"""The public name of :mod:`npoptim.engine.theory`: the same module object, under its documented name."""

import sys

from ..engine import theory as _module

sys.modules[__name__] = _module
