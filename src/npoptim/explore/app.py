"""The explorer's Dash page: layout and callbacks.  Every number comes from :mod:`npoptim.explore.compute`.

The page is built from its URL (:func:`npoptim.explore.state.from_query`), so a shared link shows
the same view; every change writes the state back to the URL.  Server callbacks compute
(:func:`~npoptim.explore.compute.compute_view`, :func:`~npoptim.explore.compute.tune`); the
client-side callbacks of :mod:`npoptim.explore.draw` only draw.  A callback never raises: an
unexpected error becomes one line on the page, and the server keeps serving.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from . import draw
from .compute import color_of, compute_view, contour, tune
from .state import LR_MAX, LR_MIN, ViewState, clamp, default_state, from_query, round_lr, to_query

__all__ = ["create_app"]

_LAYER = {"position": "absolute", "left": 0, "top": 0, "width": "100%", "height": "100%"}
_BOX = {"border": "1px solid #ddd", "borderRadius": "4px", "padding": "6px", "margin": "4px"}


def _controls(state: ViewState, functions: list[str]) -> list[Any]:
    """The controls of ``state``: function, steps, start, and per optimizer its checkbox, lr slider, hyperparameters."""
    from dash import dcc, html

    from ..optimizers.registry import get_optimizer

    options = list(dict.fromkeys([*functions, state.function]))
    top = html.Div(
        [
            html.Label("function "),
            dcc.Dropdown(
                id="function",
                options=options,
                value=state.function,
                clearable=False,
                style={"width": "220px", "display": "inline-block", "verticalAlign": "middle"},
            ),
            html.Label(" steps "),
            dcc.Input(
                id="steps",
                type="number",
                step="any",
                value=state.steps,
                debounce=True,
                style={"width": "70px"},
            ),
            html.Label(" start x "),
            dcc.Input(id="x0", type="number", value=state.start[0], debounce=True, style={"width": "80px"}),
            html.Label(" y "),
            dcc.Input(id="y0", type="number", value=state.start[1], debounce=True, style={"width": "80px"}),
            html.Span(" (or press or drag on the map)", style={"color": "#666"}),
            html.Label(" inspect "),
            dcc.Dropdown(
                id="inspect",
                options=[{"label": get_optimizer(n).__name__, "value": n} for n in state.names],
                value=state.inspect,
                clearable=False,
                style={"width": "140px", "display": "inline-block", "verticalAlign": "middle"},
            ),
        ]
    )
    rows = []
    marks = {e: f"1e{e}" for e in range(round(math.log10(LR_MIN)), round(math.log10(LR_MAX)) + 1)}
    for n in state.names:
        hyper = [
            html.Span(
                [
                    f" {p} ",
                    dcc.Input(
                        id=f"hp-{n}-{p}",
                        type="number",
                        step="any",
                        value=v,
                        debounce=True,
                        style={"width": "70px"},
                    ),
                ]
            )
            for p, v in state.hyper[n].items()
        ]
        rows.append(
            html.Div(
                [
                    dcc.Checklist(
                        id=f"show-{n}",
                        options=[{"label": get_optimizer(n).__name__, "value": n}],
                        value=[n] if n in state.shown else [],
                        inline=True,
                        style={"color": color_of(n), "fontWeight": "bold", "width": "110px", "display": "inline-block"},
                    ),
                    html.Div(
                        dcc.Slider(
                            id=f"lr-{n}",
                            min=math.log10(LR_MIN),
                            max=math.log10(LR_MAX),
                            step=0.001,
                            value=math.log10(state.lrs[n]),
                            marks=marks,
                            updatemode="mouseup",
                            allow_direct_input=False,
                        ),
                        style={"width": "300px", "display": "inline-block", "verticalAlign": "middle"},
                    ),
                    *hyper,
                    html.Div(
                        id=f"readout-{n}", style={"fontFamily": "monospace", "fontSize": "12px", "marginLeft": "110px"}
                    ),
                ],
                style={"borderBottom": "1px solid #eee", "padding": "2px"},
            )
        )
    return [top, html.Div(rows, style={"marginTop": "6px"})]


def _state_inputs(names: Sequence[str], hyper: dict[str, dict[str, float]]) -> list[Any]:
    from dash import Input

    items = [
        Input("function", "value"),
        Input("steps", "value"),
        Input("x0", "value"),
        Input("y0", "value"),
        Input("inspect", "value"),
    ]
    for n in names:
        items += [Input(f"show-{n}", "value"), Input(f"lr-{n}", "value")]
        items += [Input(f"hp-{n}-{p}", "value") for p in hyper[n]]
    return items


def _state_from(values: Sequence[Any], base: ViewState) -> ViewState:
    """The clamped state of the controls' ``values`` (in :func:`_state_inputs` order)."""
    function, steps, x0, y0, inspect_, *rest = values
    shown, lrs, hyper = [], {}, {}
    it = iter(rest)
    for n in base.names:
        if n in (next(it) or []):
            shown.append(n)
        v = next(it)
        try:
            lrs[n] = round_lr(10.0 ** float(v))
        except (TypeError, ValueError, OverflowError):
            lrs[n] = v
        hyper[n] = {p: next(it) for p in base.hyper[n]}
    raw = replace(
        base,
        function=function if isinstance(function, str) else base.function,
        shown=tuple(shown),
        lrs=lrs,
        hyper=hyper,
        start=(x0, y0),
        steps=steps,
        inspect=inspect_ or "",
        messages=(),
    )
    fallback = base if raw.function == base.function else None
    return clamp(raw, fallback)


def _tune_key(state: ViewState, tuned: Sequence[str]) -> list[Any]:
    """What a Tune of ``tuned`` depends on (all but the rates): its curves are current while this is unchanged."""
    return [list(tuned), state.function, state.steps, list(state.start), [state.hyper[n] for n in tuned]]


def _readout(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "hidden"
    fmt = lambda v: "—" if v is None else f"{v:.3g}"  # noqa: E731
    tol = "not within tol" if entry["steps_to_tol"] is None else f"within tol at update {entry['steps_to_tol']}"
    status = " · DIVERGED" if entry["diverged"] else ""
    return (
        f"lr {entry['lr']:g} · f − f* {fmt(entry['suboptimality'])} · distance {fmt(entry['distance'])} · {tol}{status}"
    )


def _messages(lines: Sequence[str]) -> list[Any]:
    from dash import html

    return [html.Div(m, className="message", style={"color": "#a40"}) for m in lines]


def create_app(
    function: str = "anisotropic", optimizers: Sequence[str] | str | None = None, shown: Sequence[str] | None = None
) -> Any:
    """The Dash app of the explorer: ``function`` (a 2-D spec) with the optimizers ``optimizers`` offered.

    ``optimizers``: names from the registry or ``"all"`` (default the book's six); ``shown``: which
    are ticked at first (default all offered).  Raises ``ValueError`` for a bad name or a function
    that is not 2-D; everything asked for later through the page is clamped, never raised.
    """
    import dash
    from dash import Input, Output, State, dcc, html

    base = default_state(
        function,
        None if optimizers is None else tuple([optimizers] if isinstance(optimizers, str) else optimizers),
        None if shown is None else tuple(shown),
    )
    names = base.names
    from ..problems.functions import FUNCTIONS, get_function

    functions = [f for f in FUNCTIONS if get_function(f).dim == 2]
    app = dash.Dash(
        __name__, title="npoptim explore", update_title=None, suppress_callback_exceptions=True, serve_locally=True
    )
    graph_cfg = {"displaylogo": False, "toImageButtonOptions": {"filename": "npoptim-explore"}}
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh=False),
            dcc.Store(id="view"),
            dcc.Store(id="contour"),
            dcc.Store(id="contour-of"),
            dcc.Store(id="tuning"),
            dcc.Store(id="picked"),
            dcc.Store(id="pending-at"),  # the URL's scrub position, for the first view drawn
            dcc.Store(id="tuned-key"),  # what the last Tune was run on (see _tune_key)
            dcc.Store(id="drawn"),  # the read-outs and messages on the page (only changes are sent)
            dcc.Interval(id="ticker", interval=120, disabled=True),
            dcc.Download(id="download"),
            html.Div(
                [
                    html.B("npoptim explore"),
                    html.Span(" — every path computed by npoptim.engine.run_path  "),
                    html.Button("Tune", id="tune"),
                    html.Button("PNG", id="png"),
                    html.Button("JSON", id="json"),
                    html.Span(id="png-done"),
                ]
            ),
            html.Div(id="url-messages"),
            html.Div(id="messages"),
            html.Div(id="controls", style=_BOX),
            html.Div(
                [
                    html.Div(  # the map (drawn once per function) under the paths (redrawn on a change)
                        [
                            dcc.Graph(id="map", config={"staticPlot": True}, style=_LAYER),
                            dcc.Graph(id="paths", config={"displayModeBar": False, "doubleClick": False}, style=_LAYER),
                        ],
                        style={"height": "520px", "width": "62%", "display": "inline-block", "position": "relative"},
                    ),
                    html.Div(
                        [
                            html.Button("Play / Pause", id="play"),
                            html.Button("Step", id="step-once"),
                            html.Span(id="step-label", style={"marginLeft": "8px"}),
                            dcc.Slider(
                                id="step",
                                min=0,
                                max=base.steps,
                                step=1,
                                value=base.steps,
                                marks=None,
                                updatemode="drag",
                            ),
                            html.Pre(id="inspect-text", style={"fontSize": "12px", "whiteSpace": "pre-wrap"}),
                        ],
                        style={"width": "36%", "display": "inline-block", "verticalAlign": "top"},
                    ),
                ]
            ),
            html.Div(
                [
                    dcc.Graph(
                        id="loss",
                        config=graph_cfg,
                        style={"height": "330px", "width": "33%", "display": "inline-block"},
                    ),
                    dcc.Graph(
                        id="theory",
                        config=graph_cfg,
                        style={"height": "330px", "width": "33%", "display": "inline-block"},
                    ),
                    dcc.Graph(
                        id="sensitivity",
                        config=graph_cfg,
                        style={"height": "330px", "width": "33%", "display": "inline-block"},
                    ),
                ]
            ),
        ],
        style={"fontFamily": "sans-serif", "fontSize": "14px"},
    )

    from werkzeug.exceptions import HTTPException

    @app.server.errorhandler(Exception)
    def _refuse(exc: Exception) -> Any:  # a malformed request: one log line, a short answer, no traceback
        if isinstance(exc, HTTPException):
            return exc
        logging.getLogger("npoptim.explore").warning("refused a malformed request: %s: %s", type(exc).__name__, exc)
        return f"bad request ({type(exc).__name__})", 400

    @app.callback(
        Output("controls", "children"),
        Output("url-messages", "children"),
        Output("pending-at", "data"),
        Output("tuning", "data", allow_duplicate=True),
        Output("tuned-key", "data", allow_duplicate=True),
        Input("url", "pathname"),
        State("url", "search"),
        prevent_initial_call="initial_duplicate",
    )
    def render(_pathname: Any, search: Any) -> Any:
        tuning = key = None
        try:
            state, notes = from_query(search if isinstance(search, str) else "", names, base.function)
            if state.tuned:  # the URL's Tune curves: the tuning run again on the URL's settings (deterministic)
                tuning, key = tune(replace(state, shown=state.tuned)), _tune_key(state, state.tuned)
        except Exception as exc:  # never a traceback on the page
            state, notes = base, [f"the URL could not be read ({type(exc).__name__}: {exc}); the default view shown"]
        return _controls(state, functions), _messages([f"URL: {m}" for m in notes]), state.at, tuning, key

    readouts = [Output(f"readout-{n}", "children") for n in names]

    # The map's grid goes to the browser once per function; only its function's name comes back as State.
    @app.callback(
        Output("view", "data"),
        Output("contour", "data"),
        Output("contour-of", "data"),
        Output("url", "search"),
        Output("messages", "children"),
        Output("step", "value"),
        Output("step", "max"),
        Output("ticker", "disabled"),
        *readouts,
        Output("drawn", "data"),
        Output("pending-at", "data", allow_duplicate=True),
        Output("tuning", "data", allow_duplicate=True),
        Output("tuned-key", "data", allow_duplicate=True),
        *_state_inputs(names, base.hyper),
        State("contour-of", "data"),
        State("drawn", "data"),
        State("step", "value"),
        State("step", "max"),
        State("ticker", "disabled"),
        State("pending-at", "data"),
        State("tuned-key", "data"),
        prevent_initial_call="initial_duplicate",
    )
    def recompute(*values: Any) -> Any:
        *controls, current, shown_now, step, step_max, ticker_off, pending, tuned_key = values
        nu = dash.no_update
        try:
            state = _state_from(controls, base)
            view = compute_view(state)
            grid = nu if current == state.function else contour(state.function)
            # The scrub slider goes to the last update with the new view (one round of drawing, not two),
            # or to the URL's update for the first view.  Only what changed is sent (the renderer's time).
            at = None if pending is None else min(int(pending), state.steps)
            k = state.steps if at is None else at
            tuned = tuple(tuned_key[0]) if tuned_key and tuned_key == _tune_key(state, tuned_key[0]) else ()
            stale = tuned_key is not None and not tuned
            drawn = {"messages": view["messages"], "readouts": [_readout(view["optimizers"].get(n)) for n in names]}
            old = shown_now if isinstance(shown_now, dict) else {}
            was = old.get("readouts") if isinstance(old.get("readouts"), list) else []
            reads = [nu if i < len(was) and was[i] == r else r for i, r in enumerate(drawn["readouts"])]
            return (view, grid, state.function, to_query(replace(state, at=at if at != state.steps else None,
                                                                  tuned=tuned)),
                    nu if old.get("messages") == drawn["messages"] else _messages(drawn["messages"]),
                    nu if step == k else k, nu if step_max == state.steps else state.steps,
                    nu if ticker_off is True else True, *reads, drawn, nu if pending is None else None,
                    None if stale else nu, None if stale else nu)
        except Exception as exc:  # never a traceback on the page, never a dead server
            note = f"could not compute this view ({type(exc).__name__}: {exc}); change a setting"
            return (nu, nu, nu, nu, _messages([note]), *[nu] * (3 + len(names)), None, nu, nu, nu)

    @app.callback(
        Output("x0", "value"),
        Output("y0", "value"),
        Input("function", "value"),
        State("contour-of", "data"),
        prevent_initial_call=True,
    )
    def set_start(function_value: Any, current: Any) -> Any:  # a new function starts at its own start
        try:
            if current and current != function_value:
                fn = get_function(function_value)
                return float(fn.start[0]), float(fn.start[1])
        except Exception:  # a malformed function: keep the start
            pass
        return dash.no_update, dash.no_update

    lr_outputs = [Output(f"lr-{n}", "value") for n in names]

    @app.callback(
        *lr_outputs,
        Output("tuning", "data"),
        Output("tuned-key", "data"),
        Output("url", "search", allow_duplicate=True),
        Output("messages", "children", allow_duplicate=True),
        Input("tune", "n_clicks"),
        *[State(i.component_id, i.component_property) for i in _state_inputs(names, base.hyper)],
        prevent_initial_call=True,
    )
    def on_tune(_clicks: Any, *controls: Any) -> Any:
        try:
            state = _state_from(controls, base)
            result = tune(state)
            lrs = [
                math.log10(result["optimizers"][n]["best_lr"]) if n in result["optimizers"] else dash.no_update
                for n in names
            ]
            edge = [n for n, r in result["optimizers"].items() if r["at_grid_edge"]]
            note = [
                f"tuned on the grid of npoptim trajectories --tune ({len(result['grid'])} rates from "
                f"{result['grid'][0]:g} to {result['grid'][-1]:g}, {state.steps} updates): {result['objective']}"
            ]
            if edge:
                note.append(f"best rate at the grid's edge for: {', '.join(edge)}")
            best = {n: round_lr(r["best_lr"]) for n, r in result["optimizers"].items()}
            tuned = replace(state, lrs={**state.lrs, **best}, tuned=tuple(best))
            return (*lrs, result, _tune_key(state, tuned.tuned), to_query(tuned), _messages(note))
        except Exception as exc:
            return (
                *[dash.no_update] * (len(names) + 3),
                _messages([f"could not tune ({type(exc).__name__}: {exc})"]),
            )

    @app.callback(
        Output("download", "data"), Input("json", "n_clicks"), State("view", "data"), prevent_initial_call=True
    )
    def export_json(_clicks: Any, view: Any) -> Any:
        if not view:
            return dash.no_update
        return {
            "content": json.dumps(view, indent=1, allow_nan=False),
            "filename": "npoptim-explore.json",
            "type": "application/json",
            "base64": False,
        }

    app.clientside_callback(draw.MAP, Output("map", "figure"), Input("contour", "data"))
    app.clientside_callback(
        draw.DRAW,
        Output("paths", "figure"),
        Output("inspect-text", "children"),
        Output("step-label", "children"),
        Input("view", "data"),
        Input("step", "value"),
    )
    app.clientside_callback(draw.LOSS, Output("loss", "figure"), Input("view", "data"), State("step", "value"))
    app.clientside_callback(
        draw.PICK,
        Output("x0", "value", allow_duplicate=True),
        Output("y0", "value", allow_duplicate=True),
        Input("picked", "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(draw.THEORY, Output("theory", "figure"), Input("view", "data"))
    app.clientside_callback(draw.SENSITIVITY, Output("sensitivity", "figure"), Input("tuning", "data"))
    app.clientside_callback(
        draw.PLAYER,
        Output("step", "value", allow_duplicate=True),
        Output("ticker", "disabled", allow_duplicate=True),
        Input("play", "n_clicks"),
        Input("step-once", "n_clicks"),
        Input("ticker", "n_intervals"),
        State("step", "value"),
        State("step", "max"),
        State("ticker", "disabled"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        draw.PNG, Output("png-done", "children"), Input("png", "n_clicks"), prevent_initial_call=True
    )
    return app
