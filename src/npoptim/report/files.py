"""Writing results down: strict JSON, and the versions of what produced the numbers."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_json", "write_text", "versions"]


def versions() -> dict[str, str]:
    """Versions of what produced the numbers (for results.json)."""
    import matplotlib
    import sklearn

    from .._version import __version__

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "matplotlib": matplotlib.__version__,
        "npoptim": __version__,
        "platform": platform.platform(),
    }


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """``payload`` as indented JSON (strict: NaN is refused, we store None instead)."""
    path.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_text(path: Path, text: str) -> None:
    """``text`` into ``path`` as UTF-8 (the markdown reports)."""
    path.write_text(text, encoding="utf-8")
