"""Collection rules for the whole tree (the tests' fixtures live in tests/conftest.py).

``src/`` is collected for its doctests.  The compiled kernels' modules import numba at their top; where
numba is absent (the documented NumPy-only fallback) they are not collected, and the header says so.
They hold no doctest, and the tests of the compiled path skip themselves with a reason.
"""

import importlib.util

#: every module that imports numba at its top (tests/test_install.py checks this list is complete)
NUMBA_MODULES = [
    "src/npoptim/optimizers/fused/kernels.py",
    "src/npoptim/optimizers/fused/serial.py",
    "src/npoptim/optimizers/fused/rprop_asgd_sf.py",
    "src/npoptim/optimizers/fused/tensor.py",
]
collect_ignore = [] if importlib.util.find_spec("numba") else list(NUMBA_MODULES)


def pytest_report_header(config):
    return [f"numba absent: {', '.join(collect_ignore)} not collected"] if collect_ignore else []
