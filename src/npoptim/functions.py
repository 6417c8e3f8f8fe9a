"""The public name of :mod:`npoptim.problems.functions`: the same module object, under its documented name.

``import npoptim.functions`` and ``from npoptim import functions`` give :mod:`npoptim.problems.functions` itself (not a
copy of its names), so attribute lookups, monkeypatching and pickling see one module.
"""

import sys

from .problems import functions as _module

sys.modules[__name__] = _module
