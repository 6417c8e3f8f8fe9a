"""A fingerprint of the code itself: which npoptim computed a stored result, finer than its version.

A sweep's run key includes every constructor argument of the optimizer (``hyperparameters``), so code
that adds or changes a default changes the keys even when the version string does not move; a sweep
resumed by other code would then store runs beside the old ones instead of finishing them. The sweep
records this fingerprint and refuses to continue, or to run a configuration, under different code.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__all__ = ["code_fingerprint", "tree_fingerprint"]


@functools.cache
def code_fingerprint() -> str:
    """:func:`tree_fingerprint` of the installed package (computed once per process).

    >>> len(code_fingerprint()), code_fingerprint() == code_fingerprint()
    (16, True)
    """
    return tree_fingerprint(Path(__file__).resolve().parent)


def tree_fingerprint(root: Path) -> str:
    """The first 16 hex digits of SHA-256 over every ``.py`` file under ``root``.

    Each file contributes its path relative to ``root`` (POSIX form) and its bytes, each prefixed with
    its length, in sorted path order: an editable checkout and a wheel built from it agree, and any
    edit (a comment included), added, removed or renamed file gives another fingerprint.
    """
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        rel = path.relative_to(root).as_posix().encode()
        data = path.read_bytes()
        h.update(len(rel).to_bytes(8, "little") + rel + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()[:16]
