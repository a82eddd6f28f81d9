"""A real headless browser for the HTML page tests: Debian's chromium driven by selenium.

The browser starts once per session with the flags that keep it off the network and out of the
user's profile. When chromium, chromedriver or selenium is missing the tests skip and say why;
in CI (CI=true) they fail instead, since CI installs all three (`make test`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver",)
# Network off, no first-run UI, no GPU, no component or sync traffic, throwaway profile.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-dev-shm-usage",  # containers often give /dev/shm only 64 MB
    "--window-size=1400,1000",
)
LOCAL = ("file:", "data:", "blob:", "about:", "chrome:", "chrome-extension:", "devtools:")


def _unavailable(reason: str, install: str = "make browser") -> None:
    """Skip locally, fail in CI: CI must run the browser tests. install: the fix to suggest."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(f"browser tests skipped: {reason} (install with `{install}`)",
                allow_module_level=True)


def _which(names: tuple[str, ...]) -> str | None:
    for n in names:
        path = shutil.which(n)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless chromium (selenium WebDriver) shared by the session's browser tests."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("the selenium package is not installed (pip install -e '.[test]')")
    binary, driver = _which(BROWSERS), _which(DRIVERS)
    if binary is None:
        _unavailable("no chromium executable on PATH (apt-get install chromium)")
    if driver is None:
        _unavailable("no chromedriver on PATH (apt-get install chromium-driver)")
    profile = tempfile.mkdtemp(prefix="tinygraph-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    # Console messages and DevTools network events, read back by page_log().
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    try:
        # An explicit driver path keeps selenium from looking for (downloading) one.
        drv = webdriver.Chrome(service=Service(driver), options=opts)
    except Exception as e:  # noqa: BLE001 - any start-up failure means "no browser here"
        shutil.rmtree(profile, ignore_errors=True)
        _unavailable(f"chromium did not start ({type(e).__name__}: {str(e).splitlines()[0]})")
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def page_log(drv: Any) -> tuple[list[str], list[str]]:
    """(console errors, URLs of network requests) since the last call.

    Local schemes (file:, data:, blob:, about:) and the browser's own chrome:// pages are not
    network requests; anything else (http, https, ws, ftp, ...) is."""
    errors = [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"]
    urls = []
    for entry in drv.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            url = msg["params"]["request"]["url"]
            if not url.startswith(LOCAL):
                urls.append(url)
    return errors, urls


def open_page(drv: Any, path: Path) -> tuple[list[str], list[str]]:
    """Load a local HTML file from file:// and return page_log() for the load."""
    page_log(drv)  # drop what earlier pages left in the logs
    drv.get(path.resolve().as_uri())
    drv.execute_script("return document.readyState")
    return page_log(drv)


@pytest.fixture
def load(browser: Any) -> Any:
    """load(path) -> (console errors, network URLs) after opening path in the browser."""
    return lambda path: open_page(browser, Path(path))
