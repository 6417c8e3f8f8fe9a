"""Collection rules for the whole tree (the tests' fixtures live in tests/conftest.py).

``src/`` is collected for its doctests.  The compiled kernels' module imports numba at its top; where
numba is absent (the documented NumPy-only fallback) it is not collected, and says so in the header.
It holds no doctest, and the tests of the compiled path skip themselves with a reason.
"""

import importlib.util

_KERNELS = "src/npoptim/optimizers/fused/kernels.py"
collect_ignore = [] if importlib.util.find_spec("numba") else [_KERNELS]


def pytest_report_header(config):
    return [f"numba absent: {_KERNELS} not collected"] if collect_ignore else []
