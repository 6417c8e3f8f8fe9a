"""The explorer's client-side callbacks: JavaScript that only *draws* numbers the server computed.

No update rule, no gradient, no state is computed here: every number comes from the ``view``
store (:func:`npoptim.explore.compute.compute_view`), the ``contour`` store and the ``tuning``
store.  Drawing in the browser keeps scrubbing and playing free of server round trips.

The map is two graphs stacked: ``map`` (the heat map and level lines, drawn once per function, a
static plot) under ``paths`` (transparent: the paths, markers, start and minimisers, redrawn on a
change), with the same fixed margins and axis ranges.  A slider move so redraws only the cheap
scatter traces (Plotly recomputes and redraws every trace of a graph whose data change: the map
in the same graph tripled the redraw).  Presses and drags on the paths graph set the start
(:data:`DRAW` installs the handler; it converts pixels to data with Plotly's own axes).
"""

from __future__ import annotations

__all__ = ["MAP", "DRAW", "LOSS", "THEORY", "SENSITIVITY", "PLAYER", "PICK", "PNG"]

# The layout both stacked graphs share: fixed margins (no automargin, so they stay aligned), fixed ranges.
_AXES = r"""
  const margin = {l: 45, r: 10, t: 30, b: 55, autoexpand: false};
  const axis = (range, shown) => ({range: range, autorange: false, fixedrange: true, showgrid: shown, zeroline: false,
                                   showticklabels: shown, ticks: shown ? 'outside' : '', showline: false});
"""

# Inputs: contour.  Output: the map figure (heatmap + level lines on every other grid point: a filled
# 121 x 121 contour would double its drawing time).
MAP = r"""
function(contour) {
  if (!contour) { return window.dash_clientside.no_update; }
""" + _AXES + r"""
  const every2 = a => a.filter((_, i) => i % 2 === 0);
  return {data: [{type: 'heatmap', x: contour.x, y: contour.y, z: contour.z, colorscale: 'Greys', reversescale: true,
                  showscale: false, opacity: 0.35, hoverinfo: 'skip', name: 'f'},
                 {type: 'contour', x: every2(contour.x), y: every2(contour.y), z: every2(contour.z).map(every2),
                  ncontours: 15, showscale: false, contours: {coloring: 'lines'}, colorscale: 'Greys',
                  line: {width: 0.6}, opacity: 0.6, hoverinfo: 'skip', name: 'f levels'}],
          layout: {uirevision: contour.function, margin: margin, xaxis: axis(contour.domain[0], true),
                   yaxis: axis(contour.domain[1], true), showlegend: false, paper_bgcolor: 'white'}};
}
"""

# Installed once on the paths graph: a press or drag inside the plot area moves the start (the x marker
# follows the pointer; on release the point goes to the `picked` store, rounded to 1/1000 of the domain).
_PICK_HANDLER = r"""
function installPick(gd) {
  if (gd.__npoptimPick) { return; }
  gd.__npoptimPick = true;
  const round = (v, span) => Number(v.toFixed(Math.max(0, 3 - Math.floor(Math.log10(span)))));
  const toData = (ev, clampIt) => {
    const L = gd._fullLayout, r = gd.getBoundingClientRect(), s = L._size;
    let px = ev.clientX - r.left - s.l, py = ev.clientY - r.top - s.t;
    if (!clampIt && (px < 0 || py < 0 || px > s.w || py > s.h)) { return null; }
    px = Math.min(Math.max(px, 0), s.w); py = Math.min(Math.max(py, 0), s.h);
    const xr = L.xaxis.range, yr = L.yaxis.range;
    return [round(L.xaxis.p2d(px), xr[1] - xr[0]), round(L.yaxis.p2d(py), yr[1] - yr[0])];
  };
  let dragging = false, frame = null, last = null;
  const moveMarker = () => {
    frame = null;
    const i = gd.data.findIndex(t => t.name === 'start');
    if (i >= 0 && last) { window.Plotly.restyle(gd, {x: [[last[0]]], y: [[last[1]]]}, [i]); }
  };
  gd.addEventListener('mousedown', ev => {
    if (ev.button !== 0) { return; }
    const p = toData(ev, false);
    if (!p) { return; }  // the legend, the modebar: Plotly's own
    dragging = true; last = p; ev.preventDefault(); ev.stopPropagation();
  }, true);
  window.addEventListener('mousemove', ev => {
    if (!dragging) { return; }
    last = toData(ev, true);
    if (frame === null) { frame = window.requestAnimationFrame(moveMarker); }
  });
  window.addEventListener('mouseup', ev => {
    if (!dragging) { return; }
    dragging = false;
    last = toData(ev, true);
    window.dash_clientside.set_props('picked', {data: [last[0], last[1]]});
  });
}
"""

# Inputs: view, step.  Outputs: the paths figure, the inspect text, the step label.  Also moves the loss
# panel's update line (a relayout, no redraw of its traces) and, on a scrub, writes `at` into the URL.
# Markers on the iterates only up to 100 steps: 6 x 300 SVG markers would double the redraw time.
DRAW = r"""
function(view, step) {
  const nu = window.dash_clientside.no_update;
  if (!view) { return [nu, nu, nu]; }
""" + _AXES + _PICK_HANDLER + r"""
  const k = (step === null || step === undefined) ? view.steps : Math.min(step, view.steps);
  const trig = (window.dash_clientside.callback_context.triggered || []).map(t => t.prop_id || '');
  const tryInstall = n => {  // the graph may not be mounted yet (Dash loads it lazily)
    const g = document.querySelector('#paths .js-plotly-plot');
    if (g && g._fullLayout && g._fullLayout._size) { installPick(g); } else if (n > 0) { setTimeout(() => tryInstall(n - 1), 100); }
  };
  tryInstall(100);
  if (trig.length && trig.every(t => t.startsWith('step.'))) {  // a scrub: the loss panel's line, the URL's `at`
    const lossGd = document.querySelector('#loss .js-plotly-plot');
    if (lossGd && lossGd.layout && lossGd.layout.shapes && lossGd.layout.shapes.length) {
      window.Plotly.relayout(lossGd, {'shapes[0].x0': k, 'shapes[0].x1': k});
    }
    const q = new URLSearchParams(window.location.search);
    if (k < view.steps) { q.set('at', String(k)); } else { q.delete('at'); }
    const s = q.toString().replace(/%2C/g, ',');
    window.history.replaceState(window.history.state, '', window.location.pathname + (s ? '?' + s : ''));
  }
  const traces = [], heads = {x: [], y: [], c: []};
  for (const name of view.shown) {
    const o = view.optimizers[name];
    const n = Math.min(k, o.path.length - 1);
    const pts = o.path.slice(0, n + 1);
    traces.push({type: 'scatter', mode: view.steps <= 100 ? 'lines+markers' : 'lines', name: o.display, x: pts.map(p => p[0]),
                 y: pts.map(p => p[1]), line: {color: o.color, width: 2}, marker: {size: 4, color: o.color},
                 meta: name, hovertemplate: o.display + ' %{x:.4g}, %{y:.4g}<extra></extra>'});
    heads.x.push(pts[n][0]); heads.y.push(pts[n][1]); heads.c.push(o.color);
  }
  traces.push({type: 'scatter', mode: 'markers', showlegend: false, name: 'iterates', x: heads.x, y: heads.y,
               marker: {size: 11, color: heads.c, line: {color: 'black', width: 1}}, hoverinfo: 'skip'});
  traces.push({type: 'scatter', mode: 'markers', name: 'minimum', x: view.minimizers.map(m => m[0]),
               y: view.minimizers.map(m => m[1]), marker: {symbol: 'star', size: 14, color: 'gold',
               line: {color: 'black', width: 1}}});
  traces.push({type: 'scatter', mode: 'markers', name: 'start', x: [view.start[0]], y: [view.start[1]],
               marker: {symbol: 'x', size: 12, color: 'black'}});
  const fig = {data: traces, layout: {
    uirevision: view.function, margin: margin, dragmode: false, hovermode: 'closest',
    paper_bgcolor: 'rgba(0,0,0,0)', plot_bgcolor: 'rgba(0,0,0,0)',
    title: {text: view.function + ' — update ' + k + ' of ' + view.steps, font: {size: 14}},
    xaxis: axis(view.domain[0], false), yaxis: axis(view.domain[1], false),
    showlegend: false}};
  const fmt = v => (v === null || v === undefined) ? '—' : Number(v).toPrecision(4);
  const vec = a => a ? '(' + a.map(fmt).join(', ') + ')' : '—';
  let text = '';
  const ins = view.inspect;
  if (ins && view.optimizers[ins.name]) {
    const o = view.optimizers[ins.name];
    const n = Math.min(k, o.path.length - 1);
    text = o.display + ' at update ' + n + '\nx_k            ' + vec(o.path[n]) + '\nf - f*         ' + fmt(o.loss[n]);
    if (n >= 1) {
      text += '\ngradient g_k   ' + vec(ins.grad[n - 1]);
      for (const s of Object.keys(ins.state)) { text += '\nstate ' + (s + '        ').slice(0, 9) + vec(ins.state[s][n - 1]); }
      text += '\neffective lr   ' + vec(ins.effective_lr[n - 1]) + '   (x_{k-1} - x_k) / g_k per coordinate';
    }
  }
  return [fig, text, 'update ' + k + ' / ' + view.steps];
}
"""

# The side panels are drawn in a task of their own, after the map: the map is painted one panel-redraw sooner.
_LATER = r"""
  const later = (id, fig) => { setTimeout(() => window.dash_clientside.set_props(id, {figure: fig}), 0);
                               return window.dash_clientside.no_update; };
"""

# Inputs: view.  State: step.  Output: the loss panel (redrawn for a new view only; DRAW moves its line).
LOSS = r"""
function(view, step) {""" + _LATER + r"""
  if (!view) { return window.dash_clientside.no_update; }
  const k = (step === null || step === undefined) ? view.steps : Math.min(step, view.steps);
  const loss = view.shown.map(name => {
    const o = view.optimizers[name];
    return {type: 'scatter', mode: 'lines', name: o.display, y: o.loss.map(v => (v > 0 ? v : null)), line: {color: o.color}};
  });
  return later('loss', {data: loss, layout: {showlegend: false,
    margin: {l: 50, r: 10, t: 30, b: 40}, title: {text: 'f − f* per update', font: {size: 12}, x: 0.02},
    yaxis: {type: 'log', exponentformat: 'power'}, xaxis: {title: {text: 'update'}},
    shapes: [{type: 'line', x0: k, x1: k, yref: 'paper', y0: 0, y1: 1, line: {dash: 'dot', color: 'grey'}}]}});
}
"""

# Inputs: view.  Output: the theory figure (quadratics: rho(lr) predicted, current setting, measured rate);
# not redrawn when its numbers are those already drawn (a move of Adam's slider leaves it as it is).
THEORY = r"""
function(view) {""" + _LATER + r"""
  const th = view && view.theory;
  const key = JSON.stringify(th ? [th.rows, view.shown] : null);
  if (window.__npoptimTheory === key) { return window.dash_clientside.no_update; }
  window.__npoptimTheory = key;
  if (!th || th.rows.length === 0) {
    return {data: [], layout: {margin: {l: 40, r: 10, t: 30, b: 30}, title: {text: 'theory: quadratics, SGD / Momentum / Nesterov only', font: {size: 13}},
            xaxis: {visible: false}, yaxis: {visible: false}}};
  }
  const data = [];
  for (const r of th.rows) {
    const o = view.optimizers[r.optimizer];
    data.push({type: 'scatter', mode: 'lines', name: o.display + ' ρ(η)', x: r.curve_lr, y: r.curve_rate,
               line: {color: o.color}});
    data.push({type: 'scatter', mode: 'markers', name: o.display + ' predicted', x: [r.lr], y: [r.predicted_rate],
               marker: {color: o.color, size: 10}, showlegend: false});
    if (r.measured_rate !== null) {
      data.push({type: 'scatter', mode: 'markers', name: o.display + ' measured', x: [r.lr], y: [r.measured_rate],
                 marker: {color: o.color, size: 14, symbol: 'x-thin-open', line: {width: 2, color: o.color}}, showlegend: false});
    }
  }
  return later('theory', {data: data, layout: {margin: {l: 50, r: 10, t: 30, b: 40}, showlegend: false,
          title: {text: 'ρ(η): predicted ●, measured ×', font: {size: 12}, x: 0.02},
          xaxis: {type: 'log', title: {text: 'learning rate'}}, yaxis: {range: [0, 1.2]},
          shapes: [{type: 'line', xref: 'paper', x0: 0, x1: 1, y0: 1, y1: 1, line: {dash: 'dot', color: 'grey'}}]}});
}
"""

# Inputs: tuning.  Output: the lr-sensitivity figure of the last Tune.
SENSITIVITY = r"""
function(tuning) {
  if (!tuning) {
    return {data: [], layout: {margin: {l: 40, r: 10, t: 30, b: 30}, title: {text: 'lr sensitivity: press Tune', font: {size: 13}},
            xaxis: {visible: false}, yaxis: {visible: false}}};
  }
  const data = [];
  for (const name of Object.keys(tuning.optimizers)) {
    const t = tuning.optimizers[name];
    data.push({type: 'scatter', mode: 'lines+markers', name: t.display, x: t.grid, y: t.objective.map(v => (v !== null && v > 0 ? v : null)),
               line: {color: t.color}, marker: {size: 4}});
    data.push({type: 'scatter', mode: 'markers', x: [t.best_lr], y: [t.best_objective > 0 ? t.best_objective : null], showlegend: false,
               marker: {color: t.color, size: 12, symbol: 'circle-open', line: {width: 2}}});
  }
  return {data: data, layout: {margin: {l: 50, r: 10, t: 30, b: 40}, title: {text: 'Tune: f(x_T) − f* per lr', font: {size: 12}, x: 0.02},
          xaxis: {type: 'log', title: {text: 'learning rate'}}, yaxis: {type: 'log', exponentformat: 'power'}}};
}
"""

# Inputs: play clicks, step clicks, interval ticks.  State: step, its max, interval disabled.  Outputs: step, disabled.
# (A new view sets the step to its last update on the server's answer itself: one round of drawing.)
PLAYER = r"""
function(play, stepClicks, ticks, step, steps, disabled) {
  const nu = window.dash_clientside.no_update;
  const ids = (window.dash_clientside.callback_context.triggered || []).map(t => t.prop_id || '');
  const trig = ids.find(i => i.startsWith('play.')) || ids.find(i => i.startsWith('step-once.')) || ids[0] || '';
  steps = steps || 0; step = step || 0;
  if (trig.startsWith('play.')) {
    if (!disabled) { return [nu, true]; }
    return [(step >= steps ? 0 : step), false];
  }
  if (trig.startsWith('step-once.')) { return [Math.min(step + 1, steps), true]; }
  if (trig.startsWith('ticker.')) {  // a tick never re-enables the ticker: a pause in between wins
    if (disabled) { return [nu, nu]; }
    if (step >= steps) { return [steps, true]; }
    return [step + 1, nu];
  }
  return [nu, nu];
}
"""

# Inputs: picked (a press or drag on the map).  Outputs: the start boxes (one recompute for both).
PICK = r"""
function(picked) {
  const nu = window.dash_clientside.no_update;
  if (!Array.isArray(picked) || picked.length !== 2) { return [nu, nu]; }
  return [picked[0], picked[1]];
}
"""

# Inputs: the PNG button.  Downloads the map as drawn (both stacked graphs in one figure), 1000 x 700.
PNG = r"""
function(n) {
  const top = document.querySelector('#paths .js-plotly-plot'), bottom = document.querySelector('#map .js-plotly-plot');
  if (n && top && bottom) {
    const layout = Object.assign({}, top.layout, {xaxis: bottom.layout.xaxis, yaxis: bottom.layout.yaxis,
                                                 paper_bgcolor: 'white', plot_bgcolor: 'white', showlegend: true,
                                                 legend: {orientation: 'h', x: 0, y: -0.07, yanchor: 'top'}});
    window.Plotly.downloadImage({data: bottom.data.concat(top.data), layout: layout},
                                {format: 'png', filename: 'npoptim-explore', width: 1000, height: 700});
  }
  return '';
}
"""
