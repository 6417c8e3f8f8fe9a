"""A real browser for the explorer's tests: Debian's chromium driven by Selenium, nothing downloaded.

:func:`chrome` skips the calling test with a reason when chromium or chromedriver is missing,
except under ``CI=true``, where a missing browser fails the test (CI installs it: ``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1400, 1000)


def browser_missing() -> str | None:
    """Why no browser test can run here, or None."""
    if not (shutil.which("chromium") or os.path.exists("/usr/bin/chromium")):
        return "chromium is not installed (apt-get install chromium chromium-driver)"
    if not os.path.exists(CHROMEDRIVER):
        return f"{CHROMEDRIVER} is missing (apt-get install chromium-driver)"
    return None


def need_browser() -> None:
    """Skip (fail under CI=true) when there is no browser."""
    why = browser_missing()
    if why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {why}")
        pytest.skip(why)


@contextmanager
def serving(app: Any) -> Iterator[Any]:
    """The Dash ``app`` served on a free loopback port in a thread; yields the server (``.url``)."""
    from npoptim.explore.server import make_server

    server = make_server(app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chrome(downloads: str | None = None) -> Iterator[Any]:
    """Headless chromium (``--headless=new --no-sandbox``) with its console and network logs on.

    ``downloads``: the folder that files the page downloads go to.
    """
    need_browser()
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not look for drivers on the network
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--metrics-recording-only"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_window_size(*WINDOW)
    if downloads is not None:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "the page") -> Any:
    """Poll ``check()`` until it returns something truthy (and return that), or fail naming ``what``."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        try:
            last = check()
        except Exception as exc:  # the element may not exist yet  # noqa: BLE001
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")
