"""The inspector page in a real browser (Debian's chromium + chromedriver, via selenium).

Its charts move while rows are written, a row written by SQL appears in its tail as a
raw frame and as parsed JSON, pause holds frames back and clear empties the tail; with
auth on the page takes the token out of the address bar and tails with it in a header.
A screenshot is kept in test-artifacts/inspector.png (not committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import jwt
from selenium import webdriver
from selenium.webdriver.common.by import By

from .conftest import RunningGateway, start_gateway
from .test_e2e_browser import ARTIFACTS, browser, eventually

__all__ = ["browser"]  # the fixture, shared with the todo page's test

SECRET = "test-secret-that-is-long-enough-for-hs256"


def js(driver: webdriver.Chrome, script: str, *args: object) -> object:
    return driver.execute_script(script, *args)


def chart(driver: webdriver.Chrome, name: str) -> tuple[float, str]:
    """A chart's newest value and its polyline's points."""
    box = driver.find_element(By.ID, "chart-" + name)
    return float(box.get_attribute("data-last") or 0), box.find_element(By.TAG_NAME, "polyline").get_attribute(
        "points"
    ) or ""


def frames(driver: webdriver.Chrome) -> list[dict[str, str]]:
    """The tail's frames, newest first: each one's label, raw text and parsed JSON, read in one call."""
    script = """return [...document.querySelectorAll('#frames .frame')].map((f) => ({
        label: f.querySelector('.meta b').textContent,
        raw: f.querySelector('pre.raw').textContent,
        json: (f.querySelector('pre.json') || {}).textContent || ''}))"""
    return list(js(driver, script))  # type: ignore[call-overload]


def tail_state(driver: webdriver.Chrome) -> str:
    return driver.find_element(By.ID, "tail-status").get_attribute("data-state") or ""


def tail(driver: webdriver.Chrome, url: str) -> bool:
    box = driver.find_element(By.ID, "tail-url")
    box.clear()
    box.send_keys(url)
    driver.find_element(By.ID, "tail-start").click()
    return True


@contextlib.asynccontextmanager
async def writing_rows(gw: RunningGateway) -> AsyncIterator[None]:
    """Insert a row every 20 ms until the block ends."""

    async def write() -> None:
        n = 0
        while True:
            n += 1
            await gw.sql("INSERT INTO todos (title) VALUES (%s)", (f"load {n}",))
            await asyncio.sleep(0.02)

    task = asyncio.create_task(write())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_charts_move_while_rows_are_written_and_the_tail_shows_an_sql_row(
    database: str, browser: webdriver.Chrome
) -> None:
    async with start_gateway(database, demo=True) as gw:
        await asyncio.to_thread(browser.set_window_size, 1280, 1000)
        await asyncio.to_thread(browser.get, gw.url + "/inspect")
        await eventually(lambda: "todos" in browser.find_element(By.ID, "tables").text)
        await asyncio.to_thread(tail, browser, "/events?topic=todos")
        await eventually(lambda: tail_state(browser) == "live")
        await eventually(lambda: "todos" in browser.find_element(By.ID, "topics").text)  # the tail's own stream

        # The charts move: the newest rates become positive and the lines change shape.
        await eventually(lambda: int(browser.find_element(By.ID, "chart-events").get_attribute("data-samples")) >= 2)
        _, events_before = await asyncio.to_thread(chart, browser, "events")
        async with writing_rows(gw):
            await eventually(lambda: chart(browser, "events")[0] > 0 and chart(browser, "deliveries")[0] > 0)
            await eventually(lambda: chart(browser, "events")[1] != events_before)

        # An event written by SQL appears in the tail: its raw frame and its JSON.
        (row_id,) = (await gw.sql("INSERT INTO todos (title) VALUES ('written by SQL') RETURNING id"))[0]

        def sql_row_shown() -> bool:
            return any('"title": "written by SQL"' in f["json"] for f in frames(browser))

        await eventually(sql_row_shown)
        frame = next(f for f in frames(browser) if '"title": "written by SQL"' in f["json"])
        assert frame["label"] == "insert"
        assert frame["raw"].startswith("id: ") and "\nevent: insert\ndata: {" in frame["raw"]
        assert json.loads(frame["json"])["row"]["id"] == row_id
        assert json.loads(frame["raw"].split("data: ", 1)[1]) == json.loads(frame["json"])

        ARTIFACTS.mkdir(exist_ok=True)
        await asyncio.to_thread(browser.save_screenshot, str(ARTIFACTS / "inspector.png"))
        assert (ARTIFACTS / "inspector.png").stat().st_size > 0

        # Pause holds frames back (counting them); resume shows them; clear empties the tail.
        await asyncio.to_thread(lambda: browser.find_element(By.ID, "tail-pause").click())
        await gw.sql("INSERT INTO todos (title) VALUES ('while paused')")
        pause = browser.find_element(By.ID, "tail-pause")
        await eventually(lambda: pause.text == "resume (1)")
        assert not any("while paused" in f["json"] for f in await asyncio.to_thread(frames, browser))
        await asyncio.to_thread(pause.click)
        await eventually(lambda: any("while paused" in f["json"] for f in frames(browser)))
        await asyncio.to_thread(lambda: browser.find_element(By.ID, "tail-clear").click())
        await eventually(lambda: frames(browser) == [])
        await gw.sql("INSERT INTO todos (title) VALUES ('after clear')")
        await eventually(lambda: [f["label"] for f in frames(browser)] == ["insert"])


async def test_with_auth_on_the_page_tails_with_its_token_in_a_header(database: str, browser: webdriver.Chrome) -> None:
    token = jwt.encode({"exp": time.time() + 120, "inspect": True, "topics": ["chat/*"]}, SECRET, "HS256")
    async with start_gateway(database, inspector="on", jwt_secret=SECRET) as gw:
        await asyncio.to_thread(browser.get, f"{gw.url}/inspect?access_token={token}")
        await eventually(lambda: "todos" in browser.find_element(By.ID, "tables").text)
        assert "access_token" not in browser.current_url  # taken out of the address bar (and history)

        await asyncio.to_thread(tail, browser, "/events?topic=chat/room-1")  # no token in the URL, no cookie
        await eventually(lambda: tail_state(browser) == "live")
        await gw.sql("""SELECT gateway.publish('chat/room-1', '{"text": "hello inspector"}')""")
        await eventually(lambda: any('"text": "hello inspector"' in f["json"] for f in frames(browser)))

        # A topic the token does not grant: the refusal is shown as the frame it is.
        await asyncio.to_thread(tail, browser, "/events?topic=todos")
        await eventually(lambda: tail_state(browser) == "ended")
        refused = (await asyncio.to_thread(frames, browser))[0]
        assert refused["label"] == "HTTP 403" and json.loads(refused["raw"])["code"] == "forbidden"

        # The tail never sends the token elsewhere.
        await asyncio.to_thread(tail, browser, "http://example.invalid/events?topic=chat/x")
        await eventually(lambda: "this gateway's /events URLs only" in browser.find_element(By.ID, "tail-status").text)
