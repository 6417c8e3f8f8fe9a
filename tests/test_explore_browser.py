"""The explorer in a real browser (headless chromium): what the page draws is what the library computes.

One app server and one browser for the module.  Every path is read back from the drawn figure
(``gd.data`` of the Plotly graph) and compared with :func:`npoptim.engine.run_path`: the numbers
travel as JSON (Python's ``repr`` of a double parses back to the same double in JavaScript and
again in Python), so the comparison is exact.  Skipped without chromium, failed under ``CI=true``.
"""

from __future__ import annotations

import io
import json
import time
from urllib.parse import urlsplit

import numpy as np
import pytest

from browser import WINDOW, chrome, need_browser, serving, wait_for

pytest.importorskip("dash")
pytest.importorskip("selenium")

from npoptim.engine.paths import run_path  # noqa: E402
from npoptim.explore.state import default_state, from_query, round_lr  # noqa: E402
from npoptim.optimizers.registry import create_optimizer  # noqa: E402

pytestmark = pytest.mark.slow

PATHS = """const g = document.querySelector('#paths .js-plotly-plot');
return g && g.data ? g.data.filter(t => t.meta).map(t => [t.meta, t.x, t.y]) : null;"""


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def page(downloads):
    need_browser()
    from npoptim.explore.app import create_app

    with serving(create_app()) as server, chrome(downloads) as driver:
        yield driver, server


def load(driver, server, query: str = "", count: int | None = 6) -> dict[str, np.ndarray]:
    """Open the page at ``query``; wait for ``count`` drawn paths; return ``{name: (k+1, 2) points}``."""
    driver.get(server.url + query)
    got = wait_for(
        lambda: (lambda p: p if p and (count is None or len(p) == count) else None)(driver.execute_script(PATHS)),
        what=f"{count} paths drawn",
    )
    return {name: np.column_stack([x, y]) for name, x, y in got}


def drawn(driver) -> dict[str, np.ndarray]:
    return {name: np.column_stack([x, y]) for name, x, y in driver.execute_script(PATHS)}


def readout_lr(driver, name: str) -> float:
    return float(driver.find_element("id", f"readout-{name}").text.split("·")[0].split()[1])


def severe_console(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_default_page_is_the_books_figure_offline_without_errors(page, tmp_path):
    driver, server = page
    driver.get_log("performance")  # drop what an earlier page logged
    paths = load(driver, server)
    sgd = paths["sgd"]
    # The book's SGD (lr 0.95) on x^2/20 + y^2: y <- (1 - 2 * 0.95) y = -0.9 y, a sign change every update.
    assert sgd.shape == (31, 2) and np.all(np.sign(sgd[1:, 1]) == -np.sign(sgd[:-1, 1]))
    for name, pts in paths.items():  # every drawn path is run_path's, exactly
        ref = run_path("anisotropic", create_optimizer(name, lr=default_state().lrs[name]), (-7.0, 2.0), 30)
        np.testing.assert_array_equal(pts, ref.points, err_msg=name)
    assert driver.find_element("id", "messages").text == ""
    assert severe_console(driver) == []
    # Offline: every request the browser made went to the app's own host and port.
    host = urlsplit(server.url).netloc
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    web = [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    assert web and all(urlsplit(u).netloc == host for u in web), sorted({urlsplit(u).netloc for u in web})
    # A screenshot of the default view: a real PNG of the viewport's size, with SGD's blue path in it.
    from PIL import Image

    png = driver.get_screenshot_as_png()
    (tmp_path / "explore.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    w, h, ratio = driver.execute_script("return [window.innerWidth, window.innerHeight, window.devicePixelRatio]")
    assert image.size == (round(w * ratio), round(h * ratio)) and image.size[0] >= WINDOW[0] * 0.9
    pixels = np.asarray(image).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 50  # not a blank page
    assert np.any(np.all(pixels == (0x1F, 0x77, 0xB4), axis=1))  # SGD's colour is drawn


def test_a_slider_move_draws_run_paths_path_for_the_new_rate(page):
    from selenium.webdriver.common.keys import Keys

    driver, server = page
    load(driver, server)
    before = readout_lr(driver, "sgd")
    driver.find_element("css selector", "#lr-sgd [role=slider]").send_keys(Keys.ARROW_LEFT)
    lr = wait_for(lambda: (lambda v: v if v != before else None)(readout_lr(driver, "sgd")), what="a new SGD rate")
    assert lr < before
    ref = run_path("anisotropic", create_optimizer("sgd", lr=lr), (-7.0, 2.0), 30).points
    wait_for(lambda: np.array_equal(drawn(driver)["sgd"], ref), what="SGD's path redrawn for lr {lr}")
    assert f"sgd.lr={lr:g}" in driver.current_url  # the URL follows


RECORD = """window.__pointer = [];
for (const t of ['mousedown', 'mouseup']) {
  window.addEventListener(t, e => {
    const r = document.querySelector('#paths .nsewdrag').getBoundingClientRect();
    window.__pointer.push([t, (e.clientX - r.left) / r.width, (e.clientY - r.top) / r.height]);
  }, true);
}"""


def pointer_points(driver) -> dict[str, np.ndarray]:
    """Where the pointer went down and up, in data coordinates of the anisotropic map ([-10, 10] x [-5, 5]).

    Read from the browser's own mouse events and the plot area's on-screen box: the fraction of the
    box's width and height, mapped linearly onto the axis ranges (y grows upwards).
    """
    return {t: np.array([-10 + 20 * fx, 5 - 10 * fy]) for t, fx, fy in driver.execute_script("return window.__pointer")}


def pixel_tolerance(driver) -> np.ndarray:
    """One pixel in data units, plus the page's rounding of a picked point (2 decimals on this map)."""
    w, h = driver.execute_script(
        "const r = document.querySelector('#paths .nsewdrag').getBoundingClientRect(); return [r.width, r.height]"
    )
    return np.array([20 / w, 10 / h]) + 0.005 + 1e-9


def test_a_click_on_the_map_moves_the_start(page):
    from selenium.webdriver.common.action_chains import ActionChains

    driver, server = page
    load(driver, server)
    driver.execute_script(RECORD)
    drag = driver.find_element("css selector", "#paths .nsewdrag")
    ActionChains(driver).move_to_element_with_offset(drag, 60, 40).click().perform()
    paths = wait_for(
        lambda: (lambda p: p if abs(p["sgd"][0, 0] + 7.0) > 1e-9 else None)(drawn(driver)),
        what="paths from the clicked start",
    )
    start, want = paths["sgd"][0], pointer_points(driver)["mouseup"]
    assert np.all(np.abs(start - want) <= pixel_tolerance(driver)), (start, want)
    ref = run_path("anisotropic", create_optimizer("momentum", lr=0.1), tuple(start), 30).points
    np.testing.assert_array_equal(paths["momentum"], ref)
    assert f"start={start[0]:.6g},{start[1]:.6g}" in driver.current_url


def test_a_drag_on_the_map_moves_the_start_to_where_it_ends(page):
    from selenium.webdriver.common.action_chains import ActionChains

    driver, server = page
    load(driver, server)
    driver.execute_script(RECORD)
    drag = driver.find_element("css selector", "#paths .nsewdrag")
    chain = ActionChains(driver).move_to_element_with_offset(drag, -150, -60).click_and_hold()
    chain.move_by_offset(40, 20).move_by_offset(40, 20).perform()
    # While the button is down the x marker follows the pointer and nothing is recomputed.
    marker = wait_for(
        lambda: (lambda s: s if s[0] > -7.0 + 1e-9 else None)(
            driver.execute_script(
                "const g = document.querySelector('#paths .js-plotly-plot');"
                "const t = g.data.find(d => d.name === 'start'); return [t.x[0], t.y[0]]"
            )
        ),
        what="the start marker following the drag",
    )
    assert abs(drawn(driver)["sgd"][0, 0] + 7.0) < 1e-12  # the paths still start at (-7, 2)
    ActionChains(driver).release().perform()
    paths = wait_for(
        lambda: (lambda p: p if abs(p["sgd"][0, 0] + 7.0) > 1e-9 else None)(drawn(driver)),
        what="paths from the dragged start",
    )
    points = pointer_points(driver)
    start = paths["sgd"][0]
    assert np.all(np.abs(start - points["mouseup"]) <= pixel_tolerance(driver)), (start, points)
    assert np.linalg.norm(points["mouseup"] - points["mousedown"]) > 1.0  # a drag, not a click
    travel = np.abs(points["mouseup"] - points["mousedown"])
    assert np.all(np.abs(np.array(marker) - points["mousedown"]) <= travel + 0.1)  # on the way
    ref = run_path("anisotropic", create_optimizer("adagrad", lr=1.5), tuple(start), 30).points
    np.testing.assert_array_equal(paths["adagrad"], ref)


def test_play_pause_step_move_all_paths_together(page):
    driver, server = page
    load(driver, server)
    click = lambda name: driver.execute_script(f"document.getElementById('{name}').click()")  # noqa: E731
    click("play")  # from the last update, Play starts again at update 0
    mid = wait_for(lambda: (lambda p: p if 1 < len(p["sgd"]) < 25 else None)(drawn(driver)), what="a partial path")
    assert len({len(v) for v in mid.values()}) == 1  # all paths at the same update
    click("play")  # pause
    time.sleep(0.4)
    paused = len(drawn(driver)["sgd"])
    time.sleep(0.6)
    assert len(drawn(driver)["sgd"]) == paused < 31
    click("step-once")
    wait_for(lambda: len(drawn(driver)["sgd"]) == paused + 1, what="one step")
    assert driver.find_element("id", "step-label").text == f"update {paused} / 30"
    click("play")  # resume to the end
    wait_for(lambda: len(drawn(driver)["sgd"]) == 31, what="the play to reach the last update")
    assert "effective lr" in driver.find_element("id", "inspect-text").text


def test_tune_sets_the_rates_the_cli_finds(page):
    from npoptim.experiments.trajectories import compute_trajectories

    driver, server = page
    load(driver, server)
    cli = compute_trajectories(tune=True).result["tuning"]  # what `npoptim trajectories --tune` finds
    driver.find_element("id", "tune").click()
    expected = {n: round_lr(t["best_lr"]) for n, t in cli.items()}  # the sliders hold 4 significant digits
    wait_for(lambda: all(readout_lr(driver, n) == lr for n, lr in expected.items()), what=f"the tuned rates {expected}")
    wait_for(
        lambda: (
            driver.execute_script("return document.querySelector('#sensitivity .js-plotly-plot').data.length") == 12
        ),
        what="the sensitivity curves",
    )
    wait_for(lambda: "tuned=sgd,momentum,nesterov,adagrad,rmsprop,adam" in driver.current_url, what="Tune in the URL")


def test_the_url_round_trips_the_state_and_bad_values_are_named_on_the_page(page):
    driver, server = page
    names = default_state().names
    query = "?function=booth&steps=50&start=2,1&show=sgd,adam&inspect=adam&sgd.lr=0.01&adam.lr=0.5&adam.beta1=0.8"
    paths = load(driver, server, query, count=2)
    asked, _ = from_query(query, names)
    np.testing.assert_array_equal(
        paths["sgd"], run_path("booth", create_optimizer("sgd", lr=0.01), (2.0, 1.0), 50).points
    )
    ref = run_path("booth", create_optimizer("adam", lr=0.5, beta1=0.8, beta2=0.999), (2.0, 1.0), 50).points
    np.testing.assert_array_equal(paths["adam"], ref)
    back, notes = from_query(urlsplit(driver.current_url).query, names)
    assert back == asked and notes == []
    assert "Adam at update 50" in driver.find_element("id", "inspect-text").text

    load(driver, server, "?steps=99999&sgd.lr=-3&show=sgd,bogus&adam.lr=nan&function=nope", count=1)
    text = driver.find_element("id", "url-messages").text
    for part in (
        "unknown function 'nope'",
        "steps=99999 is above the limit 1000",
        "sgd.lr=-3 is below the limit",
        "unknown optimizer(s) 'bogus'",
        "adam.lr='nan' is not a finite number",
    ):
        assert part in text, (part, text)
    assert "Traceback" not in driver.page_source
    assert severe_console(driver) == []


def test_bad_values_typed_on_the_page_are_clamped_with_a_message(page):
    from selenium.webdriver.common.keys import Keys

    driver, server = page
    load(driver, server)
    box = driver.find_element("id", "steps")
    box.clear()
    box.send_keys("5000", Keys.ENTER)
    wait_for(lambda: "steps=5000 is above the limit 1000: 1000 used" in driver.find_element("id", "messages").text,
             what="the message about steps")
    wait_for(lambda: len(drawn(driver)["sgd"]) == 1001, what="1000 steps drawn")
    box = driver.find_element("id", "hp-momentum-momentum")
    box.clear()
    box.send_keys("-3", Keys.ENTER)
    wait_for(lambda: "momentum.momentum" in driver.find_element("id", "messages").text, what="the message on momentum")
    assert severe_console(driver) == []


def test_export_png_and_json(page, downloads):
    from PIL import Image

    driver, server = page
    load(driver, server, "?steps=12")
    driver.find_element("id", "json").click()
    driver.find_element("id", "png").click()
    numbers = wait_for(
        lambda: (
            (downloads / "npoptim-explore.json").is_file()
            and json.loads((downloads / "npoptim-explore.json").read_text())
        ),
        what="the JSON download",
    )
    ref = run_path("anisotropic", create_optimizer("adam", lr=0.3), (-7.0, 2.0), 12)
    np.testing.assert_array_equal(numbers["optimizers"]["adam"]["path"], ref.points)
    assert numbers["steps"] == 12 and numbers["optimizers"]["adam"]["loss"] == ref.values.tolist()
    png = wait_for(
        lambda: (downloads / "npoptim-explore.png").is_file() and (downloads / "npoptim-explore.png"),
        what="the PNG download",
    )
    wait_for(lambda: png.stat().st_size > 1000, what="the PNG written")
    assert Image.open(png).size == (1000, 700)


SENSITIVITY = """const g = document.querySelector('#sensitivity .js-plotly-plot');
return g && g.data ? g.data.filter(t => t.name).map(t => [t.name, t.x, t.y]) : null;"""


def test_the_url_round_trips_the_scrub_position_and_the_tune(page):
    from npoptim.experiments.trajectories import compute_trajectories

    driver, server = page
    cli = compute_trajectories(tune=True).result["tuning"]  # `npoptim trajectories --tune` at the defaults
    paths = load(driver, server, "?at=12&tuned=sgd,adam")
    assert {len(p) for p in paths.values()} == {13}  # all paths at update 12
    assert driver.find_element("id", "step-label").text == "update 12 / 30"
    curves = wait_for(lambda: (lambda c: c if c and len(c) == 2 else None)(driver.execute_script(SENSITIVITY)),
                      what="the URL's Tune curves")
    for (display, grid, objective), name in zip(curves, ("sgd", "adam"), strict=True):
        assert grid == cli[name]["grid"] and display.lower() == name
        # +inf (a stopped run) travels as null; the log axis drops 0 as well.
        assert objective == [v if 0 < v < np.inf else None for v in cli[name]["objective"]]
    assert readout_lr(driver, "sgd") == default_state().lrs["sgd"]  # the URL's rates stay: Tune does not reset them
    assert driver.find_element("id", "url-messages").text == ""
    # Scrubbing writes the update into the URL; the URL read back is the same view.
    driver.execute_script("document.getElementById('step-once').click()")
    wait_for(lambda: "at=13" in driver.current_url, what="the scrub position in the URL")
    back, notes = from_query(urlsplit(driver.current_url).query, default_state().names)
    assert back.at == 13 and back.tuned == ("sgd", "adam") and notes == []
    paths = load(driver, server, "?" + urlsplit(driver.current_url).query)
    assert {len(p) for p in paths.values()} == {14}
    wait_for(lambda: len(driver.execute_script(SENSITIVITY) or []) == 2, what="the Tune curves after the reload")
    # A change the tuning depends on (the steps) drops it from the URL and the panel; a new view shows its end.
    box = driver.find_element("id", "steps")
    box.clear()
    from selenium.webdriver.common.keys import Keys

    box.send_keys("20", Keys.ENTER)
    wait_for(lambda: "steps=20" in driver.current_url and "tuned=" not in driver.current_url, what="tuned dropped")
    assert "at=" not in driver.current_url
    wait_for(lambda: driver.execute_script(SENSITIVITY) == [], what="the sensitivity panel cleared")
    assert severe_console(driver) == []
