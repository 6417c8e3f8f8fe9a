"""The public name of :mod:`npoptim.problems.data`: the same module object, under its documented name.

``import npoptim.data`` and ``from npoptim import data`` give :mod:`npoptim.problems.data` itself (not a
copy of its names), so attribute lookups, monkeypatching and pickling see one module.
"""

import sys

from .problems import data as _module

sys.modules[__name__] = _module
