"""``npoptim explore``: the optimizers to play with in the browser (:mod:`npoptim.explore`)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import webbrowser

from ..errors import CLIError

HELP = "a local web page to play with the optimizers: paths, sliders, steps, tuning, theory (needs the explore extra)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``npoptim explore``."""
    parser.add_argument("--function", default="anisotropic", metavar="SPEC",
                        help="2-D test function to start with (default anisotropic: the book's x^2/20 + y^2)")
    parser.add_argument("--optimizers", default=None, metavar="A,B,...",
                        help="comma-separated optimizer names offered on the page, or all (default: the book's six)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser; just print the URL")


def _missing() -> list[str]:
    return [m for m in ("dash", "plotly", "werkzeug") if importlib.util.find_spec(m) is None]


def run(args: argparse.Namespace) -> int:
    """Serve the explorer until Ctrl-C; return the exit status."""
    from ..explore import INSTALL_HINT

    missing = _missing()
    if missing:
        raise CLIError(f"the explorer needs {', '.join(missing)}, which are not installed; install them with: "
                       f"{INSTALL_HINT}")
    if args.port is not None and not 0 < args.port < 65536:
        raise CLIError(f"--port {args.port}: must be from 1 to 65535")
    optimizers = None if args.optimizers is None else [s.strip() for s in args.optimizers.split(",") if s.strip()]
    if optimizers is not None and not optimizers:
        raise ValueError(f"--optimizers {args.optimizers!r}: no optimizer named")
    from ..explore.app import create_app
    from ..explore.server import is_loopback, make_server

    app = create_app(function=args.function, optimizers=optimizers)
    try:
        server = make_server(app, args.host, args.port)
    except (OSError, SystemExit) as exc:  # Werkzeug exits (SystemExit) on a port in use, after its own message
        raise CLIError(f"cannot listen on {args.host}:{args.port if args.port is not None else '(free port)'}: "
                       f"{exc if isinstance(exc, OSError) else 'address already in use or not available'}") from None
    try:
        if not is_loopback(args.host):
            print(f"npoptim explore: warning: listening on {args.host}: anyone who can reach this machine on that "
                  "network can open the page", file=sys.stderr, flush=True)
        print(f"npoptim explore: serving on {server.url}  (Ctrl-C stops)", flush=True)
        if not args.no_browser:
            webbrowser.open(server.url)
        server.serve_forever()  # Werkzeug's returns on Ctrl-C (KeyboardInterrupt)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print("npoptim explore: stopped", flush=True)
    return 0
