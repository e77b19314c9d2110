"""The live todo page in a real browser (Debian's chromium + chromedriver, via selenium).

Two tabs with their own EventSource: a todo added in one appears in the other, a
row inserted by SQL appears in both, and after the gateway is stopped and started
again the page reconnects by itself and shows what it missed. A screenshot is kept
in test-artifacts/ (not committed).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator

import pytest

from .conftest import ROOT, run_sql, start_gateway

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = ROOT / "test-artifacts"

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("CI"):
        raise RuntimeError("browser tests need chromium and chromium-driver; .ci/run installs them with apt-get")
    pytest.skip("needs chromium and chromium-driver (apt-get install them)", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    profile = tempfile.mkdtemp(prefix="gw-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=900,700",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def titles(driver: webdriver.Chrome, selector: str = "#todos li span") -> list[str]:
    """Read the list in one script call: the page re-renders it on every event."""
    script = "return [...document.querySelectorAll(arguments[0])].map((el) => el.textContent)"
    return list(driver.execute_script(script, selector))


def state(driver: webdriver.Chrome) -> str:
    return driver.find_element(By.ID, "state").get_attribute("data-state") or ""


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_two_tabs_see_each_others_changes_sql_changes_and_survive_restart(
    database: str, browser: webdriver.Chrome
) -> None:
    # Heartbeats every 0.1 s: the page must see comment lines (and the goodbye) as nothing.
    async with start_gateway(database, demo=True, heartbeat=0.1) as gw:
        port = int(gw.url.rsplit(":", 1)[1])
        await asyncio.to_thread(browser.get, gw.url + "/")
        first = browser.current_window_handle
        await asyncio.to_thread(browser.switch_to.new_window, "tab")
        await asyncio.to_thread(browser.get, gw.url + "/")
        second = browser.current_window_handle
        tabs = (first, second)

        def in_tab(handle: str, check: Callable[[webdriver.Chrome], bool]) -> Callable[[], bool]:
            def run() -> bool:
                browser.switch_to.window(handle)
                return check(browser)

            return run

        for tab in tabs:
            await eventually(in_tab(tab, lambda d: state(d) == "live"))

        def add(d: webdriver.Chrome) -> bool:
            box = d.find_element(By.ID, "title")
            box.send_keys("from tab one")
            d.find_element(By.CSS_SELECTOR, "#add button").click()
            return True

        await asyncio.to_thread(in_tab(first, add))
        await eventually(in_tab(second, lambda d: "from tab one" in titles(d)))

        await gw.sql("INSERT INTO todos (title) VALUES ('row from SQL')")
        for tab in tabs:
            await eventually(in_tab(tab, lambda d: "row from SQL" in titles(d)))

        def tick(d: webdriver.Chrome) -> bool:
            try:  # the list re-renders on every event: an element found may go stale
                row = next(li for li in d.find_elements(By.CSS_SELECTOR, "#todos li") if "row from SQL" in li.text)
                row.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
            except StaleElementReferenceException:
                return False
            return True

        await eventually(in_tab(second, tick))
        await eventually(in_tab(first, lambda d: "row from SQL" in titles(d, "#todos li.done span")))

    # the gateway is down: the pages say so, and a row is written meanwhile
    for tab in tabs:
        await eventually(in_tab(tab, lambda d: state(d) == "reconnecting"))
    await run_sql(database, "INSERT INTO todos (title) VALUES ('while the gateway was down')")

    async with start_gateway(database, port=port, demo=True, heartbeat=0.1):
        for tab in tabs:
            await eventually(in_tab(tab, lambda d: state(d) == "live"), timeout=15)
            await eventually(in_tab(tab, lambda d: "while the gateway was down" in titles(d)), timeout=15)
        ARTIFACTS.mkdir(exist_ok=True)
        await asyncio.to_thread(in_tab(first, lambda d: d.save_screenshot(str(ARTIFACTS / "todo-page.png"))))
        assert (ARTIFACTS / "todo-page.png").stat().st_size > 0
        all_titles = await asyncio.to_thread(in_tab(first, titles))
        assert all_titles.count("row from SQL") == 1  # replays did not duplicate rows
