"""Slider-to-redraw time of ``npoptim explore`` in a real browser: 6 optimizers x 300 steps.

    python benchmarks/bench_explore.py              # 20 moves of each kind, interleaved (~40 s on 2 cores)
    python benchmarks/bench_explore.py --moves 30

The page is served in this process and driven by headless chromium (Debian's, through
/usr/bin/chromedriver).  One *move* is a key press on SGD's learning-rate slider (one slider
step, 0.001 in log10 lr, always to a new rate).  Times are the browser's own clocks
(``performance.now()``), from the ``keydown`` event to:

- ``map``: the end of the Plotly redraw (``plotly_afterplot``) of the paths graph whose SGD path
  is the new one: what the user watches;
- ``all panels``: the last redraw of any graph (paths, loss, theory) of that move, 400 ms after
  the map's redraw at the latest (the loss and theory panels draw after the map).

and the phases of a move: ``keydown -> request`` (Dash collects the inputs and posts them),
``request`` (the round trip: the callback, :func:`~npoptim.explore.compute.compute_view`, JSON),
``answer -> map drawn`` (the Dash renderer, the client-side callbacks, Plotly).

Two kinds of move, interleaved (one of each in turn, so a burst of load from other processes hits
both): ``one path`` (what a user's move costs: the other five paths come from the cache of
:func:`run_path` results) and ``all six paths`` (the cache cleared before the move).  Also printed:
``compute_view`` alone, in this process, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

INSTALL = """
const q = s => document.querySelector(s + ' .js-plotly-plot');
const gd = q('#paths');
const sgd = () => gd.data.find(t => t.meta === 'sgd').y[1];
window.__moves = []; window.__cur = null; window.__y = sgd();
document.addEventListener('keydown', () => { window.__cur = {t0: performance.now(), plots: []}; }, true);
const fetch0 = window.fetch;
window.fetch = function(...args) {
  const m = window.__cur, t = performance.now();
  const p = fetch0.apply(this, args);
  if (m && m.req === undefined) { m.req = t; p.then(() => { m.ans = performance.now(); }); }
  return p;
};
for (const id of ['#paths', '#loss', '#theory']) {
  q(id).on('plotly_afterplot', () => { if (window.__cur) { window.__cur.plots.push(performance.now()); } });
}
gd.on('plotly_afterplot', () => {
  const m = window.__cur;
  if (m === null || m.map !== undefined) return;
  const y = sgd();
  if (y !== window.__y) {
    m.map = performance.now(); window.__y = y;
    setTimeout(() => { window.__moves.push(m); if (window.__cur === m) { window.__cur = null; } }, 400);
  }
});
"""


def _moves(driver, moves: int, clear) -> tuple[list[dict], list[dict]]:
    from selenium.webdriver.common.keys import Keys

    handle = driver.find_element("css selector", "#lr-sgd [role=slider]")
    kinds = []
    for i in range(2 * moves):
        six = i % 2 == 1
        if six:
            clear()
        kinds.append(six)
        handle.send_keys(Keys.ARROW_LEFT)
        end = time.monotonic() + 20
        while driver.execute_script("return window.__moves.length") < i + 1:
            if time.monotonic() > end:
                raise RuntimeError("no redraw within 20 s")
            time.sleep(0.01)
        time.sleep(0.1)
    got = driver.execute_script("return window.__moves")
    pairs = list(zip(got, kinds, strict=True))
    return [m for m, six in pairs if not six], [m for m, six in pairs if six]


def _row(what: str, ms: list[float]) -> str:
    ms = sorted(ms)
    return f"| {what} | {len(ms)} | {statistics.median(ms):.0f} | {ms[len(ms) // 10]:.0f} | {ms[-1]:.0f} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    from browser import browser_missing, chrome, serving, wait_for
    from npoptim.explore import compute
    from npoptim.explore.app import create_app
    from npoptim.explore.state import default_state

    if browser_missing():
        print(f"bench_explore: {browser_missing()}", file=sys.stderr)
        return 1
    load0 = os.getloadavg()
    state = replace(default_state(), steps=args.steps)
    compute._path.cache_clear()
    t = time.perf_counter()
    compute.compute_view(state)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    compute.compute_view(replace(state, lrs={**state.lrs, "sgd": 0.5}))
    warm = time.perf_counter() - t

    with serving(create_app()) as server, chrome() as driver:
        driver.get(server.url + f"?steps={args.steps}")
        wait_for(lambda: driver.execute_script(
            "const g = document.querySelector('#paths .js-plotly-plot');"
            f"return g && g.data && g.data.filter(t => t.meta && t.x.length === {args.steps + 1}).length === 6"),
            timeout=60, what="six paths of 300 steps")
        time.sleep(1.0)
        driver.execute_script(INSTALL)
        one, six = _moves(driver, args.moves, compute._path.cache_clear)
    load1 = os.getloadavg()

    print(f"slider-to-redraw, 6 optimizers x {args.steps} steps (ms, in the browser; moves interleaved)\n")
    print("| move | n | median | p10 | max |\n|---|---|---|---|---|")
    for label, ms in (("one path recomputed", one), ("all six recomputed", six)):
        print(_row(f"{label}: map redrawn", [m["map"] - m["t0"] for m in ms]))
        print(_row(f"{label}: all panels redrawn", [max(m["plots"]) - m["t0"] for m in ms]))
    print("\nphases of a one-path move (median ms):")
    for what, a, b in (("keydown -> request", "t0", "req"), ("request (round trip)", "req", "ans"),
                       ("answer -> map drawn", "ans", "map")):
        vals = [m[b] - m[a] for m in one if a in m and b in m]
        print(f"  {what}: {statistics.median(vals):.0f}" if vals else f"  {what}: not measured")
    print(f"\ncompute_view alone: {cold * 1e3:.0f} ms (six paths), {warm * 1e3:.0f} ms (one new path)")
    print(f"load average (1 min) before {load0[0]:.1f}, after {load1[0]:.1f}; {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
