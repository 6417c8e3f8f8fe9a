"""Slider-to-redraw time of ``npoptim explore`` in a real browser: 6 optimizers x 300 steps.

    python benchmarks/bench_explore.py              # 15 moves of each kind (~40 s on 2 cores)
    python benchmarks/bench_explore.py --moves 30

The page is served in this process and driven by headless chromium (Debian's, through
/usr/bin/chromedriver).  One *move* is a key press on SGD's learning-rate slider (one slider
step, 0.001 in log10 lr, always to a new rate); its time runs from the browser's ``keydown``
event to the end of the Plotly redraw (``plotly_afterplot``) whose SGD path is the new one:
the callback round trip, :func:`~npoptim.explore.compute.compute_view`, the JSON both ways and
the drawing of all six paths, the contour and the loss panel.

Two kinds of move: ``one path`` (what a user's move costs: the other five paths come from the
view's cache of :func:`run_path` results) and ``all six paths`` (the cache cleared before each
move, so every path is run again).  Also printed: ``compute_view`` alone, in this process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

INSTALL = """
const gd = document.querySelector('#paths .js-plotly-plot');
const sgd = () => gd.data.find(t => t.meta === 'sgd').y[1];
window.__times = []; window.__t0 = null; window.__y = sgd();
document.addEventListener('keydown', () => { window.__t0 = performance.now(); }, true);
gd.on('plotly_afterplot', () => {
  if (window.__t0 === null) return;
  const y = sgd();
  if (y !== window.__y) { window.__times.push(performance.now() - window.__t0); window.__t0 = null; window.__y = y; }
});
"""


def _moves(driver, moves: int, before_each) -> list[float]:
    from selenium.webdriver.common.keys import Keys

    handle = driver.find_element("css selector", "#lr-sgd [role=slider]")
    for i in range(moves):
        before_each()
        handle.send_keys(Keys.ARROW_LEFT)
        end = time.monotonic() + 20
        while driver.execute_script("return window.__times.length") < i + 1:
            if time.monotonic() > end:
                raise RuntimeError("no redraw within 20 s")
            time.sleep(0.01)
        time.sleep(0.15)
    return driver.execute_script("return window.__times")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=15)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    from browser import browser_missing, chrome, serving, wait_for
    from npoptim.explore import compute
    from npoptim.explore.app import create_app
    from npoptim.explore.state import default_state

    if browser_missing():
        print(f"bench_explore: {browser_missing()}", file=sys.stderr)
        return 1
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
        driver.execute_script(INSTALL)
        one = _moves(driver, args.moves, lambda: None)
        driver.execute_script("window.__times = [];")
        six = _moves(driver, args.moves, compute._path.cache_clear)

    def row(what: str, ms: list[float]) -> str:
        ms = sorted(ms)
        return f"| {what} | {len(ms)} | {statistics.median(ms):.0f} | {ms[len(ms) // 10]:.0f} | {ms[-1]:.0f} |"

    print(f"slider-to-redraw, 6 optimizers x {args.steps} steps (ms, in the browser)\n")
    print("| move | n | median | p10 | max |\n|---|---|---|---|---|")
    print(row("one path recomputed (the others cached)", one))
    print(row("all six paths recomputed (cache cleared)", six))
    print(f"\ncompute_view alone: {cold * 1e3:.0f} ms (six paths), {warm * 1e3:.0f} ms (one new path)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
