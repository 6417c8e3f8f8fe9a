"""The explorer's client-side callbacks: JavaScript that only *draws* numbers the server computed.

No update rule, no gradient, no state is computed here: every number comes from the ``view``
store (:func:`npoptim.explore.compute.compute_view`), the ``contour`` store and the ``tuning``
store.  Drawing in the browser keeps scrubbing and playing free of server round trips.
"""

from __future__ import annotations

__all__ = ["DRAW", "THEORY", "SENSITIVITY", "PLAYER", "PNG"]

# Inputs: view, contour, step.  Outputs: the paths figure, the loss figure, the inspect text, the step label.
# Markers on the iterates only up to 100 steps: 6 x 300 SVG markers would double the redraw time.
DRAW = r"""
function(view, contour, step) {
  const nu = window.dash_clientside.no_update;
  if (!view || !contour) { return [nu, nu, nu, nu]; }
  const k = (step === null || step === undefined) ? view.steps : Math.min(step, view.steps);
  // Shading: a heatmap of the 121 x 121 grid (it also takes the clicks); level lines on every other grid
  // point: a filled 121 x 121 contour would double the redraw time of a slider move.
  const every2 = a => a.filter((_, i) => i % 2 === 0);
  const traces = [{type: 'heatmap', x: contour.x, y: contour.y, z: contour.z, colorscale: 'Greys',
                   reversescale: true, showscale: false, opacity: 0.35, hoverinfo: 'x+y', name: 'f'},
                  {type: 'contour', x: every2(contour.x), y: every2(contour.y), z: every2(contour.z).map(every2),
                   ncontours: 15, showscale: false, contours: {coloring: 'lines'}, colorscale: 'Greys',
                   line: {width: 0.6}, opacity: 0.6, hoverinfo: 'skip', name: 'f levels'}];
  const loss = [];
  for (const name of view.shown) {
    const o = view.optimizers[name];
    const n = Math.min(k, o.path.length - 1);
    const pts = o.path.slice(0, n + 1);
    traces.push({type: 'scatter', mode: view.steps <= 100 ? 'lines+markers' : 'lines', name: o.display, x: pts.map(p => p[0]),
                 y: pts.map(p => p[1]), line: {color: o.color, width: 2}, marker: {size: 4, color: o.color},
                 meta: name, hovertemplate: o.display + ' %{x:.4g}, %{y:.4g}<extra></extra>'});
    traces.push({type: 'scatter', mode: 'markers', showlegend: false, x: [pts[n][0]], y: [pts[n][1]],
                 marker: {size: 11, color: o.color, line: {color: 'black', width: 1}}, hoverinfo: 'skip'});
    loss.push({type: 'scatter', mode: 'lines', name: o.display, y: o.loss.map(v => (v > 0 ? v : null)),
               line: {color: o.color}});
  }
  traces.push({type: 'scatter', mode: 'markers', name: 'minimum', x: view.minimizers.map(m => m[0]),
               y: view.minimizers.map(m => m[1]), marker: {symbol: 'star', size: 14, color: 'gold',
               line: {color: 'black', width: 1}}});
  traces.push({type: 'scatter', mode: 'markers', name: 'start', x: [view.start[0]], y: [view.start[1]],
               marker: {symbol: 'x', size: 12, color: 'black'}});
  const fig = {data: traces, layout: {
    uirevision: view.function, margin: {l: 40, r: 10, t: 30, b: 30}, clickmode: 'event',
    title: {text: view.function + ' — update ' + k + ' of ' + view.steps, font: {size: 14}},
    xaxis: {range: view.domain[0], autorange: false}, yaxis: {range: view.domain[1], autorange: false},
    legend: {orientation: 'h', y: -0.08}}};
  const lossFig = {data: loss, layout: {
    margin: {l: 50, r: 10, t: 30, b: 40}, title: {text: 'f − f* per update', font: {size: 12}, x: 0.02},
    yaxis: {type: 'log', exponentformat: 'power'}, xaxis: {title: {text: 'update'}},
    shapes: [{type: 'line', x0: k, x1: k, yref: 'paper', y0: 0, y1: 1, line: {dash: 'dot', color: 'grey'}}]}};
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
  return [fig, lossFig, text, 'update ' + k + ' / ' + view.steps];
}
"""

# Inputs: view.  Output: the theory figure (quadratics: rho(lr) predicted, current setting, measured rate).
THEORY = r"""
function(view) {
  const th = view && view.theory;
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
  return {data: data, layout: {margin: {l: 50, r: 10, t: 30, b: 40}, title: {text: 'ρ: predicted ●, measured ×', font: {size: 12}, x: 0.02},
          xaxis: {type: 'log', title: {text: 'learning rate'}}, yaxis: {range: [0, 1.2]},
          shapes: [{type: 'line', xref: 'paper', x0: 0, x1: 1, y0: 1, y1: 1, line: {dash: 'dot', color: 'grey'}}]}};
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

# Inputs: the PNG button.  Downloads the paths figure as drawn.
PNG = r"""
function(n) {
  if (n) {
    const gd = document.querySelector('#paths .js-plotly-plot');
    if (gd) { window.Plotly.downloadImage(gd, {format: 'png', filename: 'npoptim-explore', width: 1000, height: 700}); }
  }
  return '';
}
"""
