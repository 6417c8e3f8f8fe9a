"""``npoptim explore``: the optimizers to play with, in the browser and in Jupyter, computed by the library.

:mod:`~npoptim.explore.state` checks and clamps what the page and its URL ask for,
:mod:`~npoptim.explore.compute` computes a view's numbers with :func:`npoptim.engine.run_path`
(no Dash), :mod:`~npoptim.explore.app` is the Dash page (layout and callbacks; the client-side
JavaScript in :mod:`~npoptim.explore.draw` only draws), :mod:`~npoptim.explore.server` serves it.
Dash and Plotly are the ``explore`` extra: ``pip install "npoptim[explore]"``.

Library use (in Jupyter, ``show()`` puts the page inline)::

    from npoptim.explore import create_app, show
    app = create_app(function="rosenbrock", optimizers=["sgd", "momentum", "adam"])
    show(app)
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "show", "INSTALL_HINT"]

#: The one command that installs what the explorer needs.
INSTALL_HINT = 'pip install "npoptim[explore]"'


def create_app(**options: Any) -> Any:
    """The explorer's Dash app (:func:`npoptim.explore.app.create_app`)."""
    from .app import create_app as _create

    return _create(**options)


def show(app: Any = None, **options: Any) -> str:
    """Run ``app`` (default: a new one) inline in a Jupyter notebook; its URL (:func:`npoptim.explore.server.show`)."""
    from .server import show as _show

    return _show(app, **options)
