"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: npoptim check's fixtures: classes to grade (one is a syntax error on purpose), not tests or doctests
collect_ignore = ["check_fixtures"]


def pytest_report_header(config) -> list[str]:
    """Which npoptim, Python, numba and BLAS this run tests, so that a configuration's log says what it was.

    Nothing is imported but threadpoolctl and NumPy: the order in which torch, npoptim and numba are
    first imported is the tests' own business (numba's threading layer).
    """
    import importlib.metadata
    import importlib.util
    import platform

    import numpy  # noqa: F401  (loads the BLAS that threadpoolctl then reports)
    from threadpoolctl import threadpool_info

    origin = Path(importlib.util.find_spec("npoptim").origin).parent
    numba = "numba " + importlib.metadata.version("numba") if importlib.util.find_spec("numba") else "numba absent"
    blas = ", ".join(
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture') or ''} x{i.get('num_threads')}"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    )
    names = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")
    env = {k: os.environ[k] for k in names if k in os.environ}
    return [
        f"npoptim {importlib.metadata.version('npoptim')} from {origin}",
        f"Python {platform.python_version()}; {numba}; BLAS: {blas or 'none found'}; {env or 'no OPENBLAS_* set'}",
    ]


def _shared_mnist_dir() -> Path:
    """$NPOPTIM_MNIST_DIR, else ../shared/data/mnist beside the repository root (where pyproject.toml is)."""
    if os.environ.get("NPOPTIM_MNIST_DIR"):
        return Path(os.environ["NPOPTIM_MNIST_DIR"])
    root = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
    return root.parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST test set's directory; the test is skipped, saying where it looked, when it is absent."""
    d = _shared_mnist_dir()
    if not all((d / f"t10k-{part}-idx{n}-ubyte.gz").is_file() for part, n in (("images", 3), ("labels", 1))):
        pytest.skip(f"MNIST test set not found in {d} (set NPOPTIM_MNIST_DIR)")
    return d


def _markdown_rows(markdown: str, header_start: str) -> list[list[str]]:
    """The cells of the body rows of the first markdown table whose header line starts with ``header_start``."""
    lines = markdown.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[i + 2 :]:  # skip the header and the |---| line
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


@pytest.fixture(scope="session")
def markdown_rows():
    """A parser of the tables in the reports the CLI writes: ``markdown_rows(text, header_start)``."""
    return _markdown_rows
