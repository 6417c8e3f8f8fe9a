"""Child processes that a test stops with Ctrl-C (SIGINT), whatever the process running the suite ignores.

A shell runs a background job (``pytest ... &``, ``nohup``, many CI runners) with SIGINT ignored, and an
ignored signal stays ignored in every child: Python then installs no KeyboardInterrupt handler, and the
Ctrl-C a test sends is dropped (seen: an ``npoptim explore`` server that never stopped, once under a
suite started by ``nohup ... &`` and once, it seemed, after an earlier test in the same xdist worker). Respecting an
inherited SIG_IGN is right for the product (a background job is not meant to be stopped by the terminal's
Ctrl-C), so it is the tests' children that get SIGINT back: as a user's terminal would start them.
"""

from __future__ import annotations

import signal


def interruptible() -> None:
    """``preexec_fn`` for :class:`subprocess.Popen`: SIGINT to its default, so Python turns it into Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
