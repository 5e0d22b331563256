"""The dashboard as an analyst sees it: signed in with a token, in a real (headless) browser."""

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.async_api import Browser, Page, async_playwright

from shared.tokens import ApiTokens
from tests.factories import incident_json, participant
from tests.integration.pipeline import Pipeline
from tests.integration.test_pipeline import roster

pytestmark = pytest.mark.integration

MONTH = "2022-06-12T10:00:00+02:00"
"""A year of its own: no other test's hospital sits beside D1 in it."""
INCIDENTS = {"mild": 7, "severe": 6, "death": 2}
MILD_BLUE = (0x6B, 0xAE, 0xD6)
HEADER_BLUE = (0x2C, 0x3E, 0x50)


@pytest.fixture(scope="module")
async def dashboard_url(pipeline: Pipeline, reporting_url: str) -> str:
    """Reporting served over HTTP, with D1's cases counted."""
    await pipeline.load_roster(roster("D1"))
    for n, (harm, size) in enumerate(INCIDENTS.items()):
        people = [participant(f"E7{n}{i}") for i in range(size)]
        await pipeline.report(
            incident_json(f"INC-D{n}", people, hospital_id="D1", harm=harm, occurred_at=MONTH)
        )
    cases = sum(INCIDENTS.values())
    for _ in range(600):
        counted = await pipeline.counted("D1")
        if counted["peers_assigned"] + counted["escalated"] >= cases:
            break
        await asyncio.sleep(0.1)
    await pipeline.idle()
    await pipeline.release()
    return reporting_url


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    """Debian's chromium, headless, driven by Playwright (its own download is not reachable)."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed: `make browser` installs it"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            await launched.close()


async def signed_in(browser: Browser, url: str, token: str) -> Page:
    """What an analyst does: open the dashboard, type the token, press Sign in."""
    page = await browser.new_page(viewport={"width": 1280, "height": 1400})
    await page.goto(url)
    await page.fill("input[name=token]", token)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    return page


async def photographed(page: Page, path: Path) -> tuple[dict[Any, int], Any]:
    """A screenshot of the page as the browser drew it (1280 x 1400), as the number of
    pixels of each colour; and the browser's cookies."""
    await page.screenshot(path=str(path))
    image = Image.open(path).convert("RGB")
    assert image.size == (1280, 1400)
    colours = {colour: n for n, colour in image.getcolors(maxcolors=1 << 20) or []}
    return colours, await page.context.cookies()


async def test_a_hospitals_analyst_sees_its_charts_with_small_groups_hidden(
    pipeline: Pipeline, dashboard_url: str, tmp_path: Path
) -> None:
    tokens = ApiTokens(pipeline.mongo[f"{pipeline.database_prefix}reporting"])
    token = await tokens.issue("D1", "dashboard test", datetime.now(UTC))
    async with browser() as chromium:
        page = await signed_in(chromium, dashboard_url, token)
        dom = await page.content()
        colours, cookies = await photographed(page, tmp_path / "dashboard.png")
    assert "hospital D1" in dom
    assert "as released: 2022-06 to 2022-06, 0 of 1 hospital-months corrected since" in dom
    assert "Cases opened per month, by harm level" in dom
    assert "Time to first contact (days)" in dom
    assert "How support ended" in dom
    assert "2022-06 mild: 7 cases" in dom
    # Death (2 cases) is under this test's minimum of 5, and severe is hidden beside it.
    assert "death:" not in dom
    assert "severe:" not in dom
    assert "2022-06: hidden to protect small groups" in dom
    assert token not in str(cookies), "the cookie holds a session, never the token"

    assert colours.get(HEADER_BLUE, 0) > 20_000, "the header is drawn"
    assert colours.get(MILD_BLUE, 0) > 500, "the mild cases' bar is drawn"


async def test_without_a_token_the_browser_gets_the_sign_in_page_only(dashboard_url: str) -> None:
    async with browser() as chromium:
        page = await chromium.new_page()
        await page.goto(dashboard_url)
        dom = await page.content()
    assert "Sign in with your API token" in dom
    assert "Cases opened" not in dom


async def test_a_sign_in_sent_from_another_site_is_refused(
    pipeline: Pipeline, dashboard_url: str, tmp_path: Path
) -> None:
    """A page elsewhere that posts a token (login CSRF) gets 403, and no session."""
    tokens = ApiTokens(pipeline.mongo[f"{pipeline.database_prefix}reporting"])
    token = await tokens.issue("D1", "cross-site test", datetime.now(UTC))
    elsewhere = tmp_path / "elsewhere.html"
    elsewhere.write_text(
        f'<form method="post" action="{dashboard_url}/session">'
        f'<input name="token" value="{escape(token)}"></form>'
        "<script>document.forms[0].submit()</script>"
    )
    async with browser() as chromium:
        page = await chromium.new_page()
        async with page.expect_response(f"{dashboard_url}/session") as answer:
            await page.goto(elsewhere.as_uri())
        assert (await answer.value).status == 403
        assert await page.context.cookies() == []


async def test_an_unknown_token_is_refused_at_sign_in(pipeline: Pipeline) -> None:
    response = await pipeline.reporting.post("/session", data={"token": "ps_not-a-token"})
    assert response.status_code == 401
    assert "That token is not known." in response.text
    assert "set-cookie" not in response.headers
