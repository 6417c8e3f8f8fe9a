"""Write docs/img/explore.png: the explorer's default view after Tune, in headless chromium.

.venv/bin/python docs/img/explore_screenshot.py
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from browser import chrome, serving, wait_for  # noqa: E402
from npoptim.explore.app import create_app  # noqa: E402

with serving(create_app()) as server, chrome() as driver:
    driver.set_window_size(1400, 1330)
    driver.get(server.url + "?inspect=adagrad")
    wait_for(
        lambda: driver.execute_script(
            "const g = document.querySelector('#paths .js-plotly-plot'); return g && g.data && g.data.length >= 9"
        )
    )
    driver.find_element("id", "tune").click()
    wait_for(
        lambda: driver.execute_script("return document.querySelector('#sensitivity .js-plotly-plot').data.length") == 12
    )
    driver.find_element("id", "step").find_element("css selector", "[role=slider]").send_keys(
        *["\ue012"] * 18
    )  # left x18
    wait_for(lambda: "update 12 / 30" in driver.find_element("id", "step-label").text)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(ROOT / "docs" / "img" / "explore.png"))
