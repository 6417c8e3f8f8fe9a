"""The public name of :mod:`npoptim.problems.nn`: the same module object, under its documented name.

``import npoptim.nn`` and ``from npoptim import nn`` give :mod:`npoptim.problems.nn` itself (not a
copy of its names), so attribute lookups, monkeypatching and pickling see one module.
"""

import sys

from .problems import nn as _module

sys.modules[__name__] = _module
