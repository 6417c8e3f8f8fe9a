"""Serving the explorer: a threaded WSGI server on a free loopback port, and inline in Jupyter.

Nothing here prints: :func:`make_server` returns the server, whose ``url`` the caller shows
(``npoptim explore`` prints it), and ``serve_forever`` runs until Ctrl-C.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

__all__ = ["LOOPBACK", "is_loopback", "free_port", "make_server", "show"]

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str = LOOPBACK) -> int:
    """A port that is free on ``host`` now (the OS picks it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def make_server(app: Any, host: str = LOOPBACK, port: int | None = None) -> Any:
    """A threaded Werkzeug server for the Dash ``app`` bound to ``host``:``port`` (``None``: a free port).

    The server is bound when this returns (its ``server_port`` is the real port, and ``url`` the
    address to open); ``serve_forever()`` serves; ``shutdown()`` stops it from another thread.
    Werkzeug's per-request log lines are silenced (warnings and errors still show).
    """
    import logging

    from werkzeug.serving import make_server as _make

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = _make(host, 0 if port is None else int(port), app.server, threaded=True)
    shown = f"[{host}]" if ":" in host else host
    server.url = f"http://{shown}:{server.server_port}/"
    return server


def show(app: Any = None, *, height: int = 900, port: int | None = None, **options: Any) -> str:
    """Run ``app`` (default ``create_app(**options)``) inline in a Jupyter notebook, on a free loopback port.

    Returns the app's URL (``http://127.0.0.1:PORT/``); the server runs in a thread of the kernel.
    """
    if app is None:
        from .app import create_app

        app = create_app(**options)
    elif options:
        raise TypeError(f"show: options {sorted(options)} are for a new app, but an app was given")
    port = free_port() if port is None else int(port)
    app.run(jupyter_mode="inline", host=LOOPBACK, port=port, jupyter_height=height)
    return f"http://{LOOPBACK}:{port}/"
