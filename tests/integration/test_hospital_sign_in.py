"""Coordinators and analysts sign in to the desk and the dashboard at the hospital's identity
provider (OpenID Connect; oidc-provider-mock stands in for Entra ID), in a real browser: what
they may see comes from the provider's claim, someone the provider gives no scope is refused,
and a forged return from the provider opens nothing."""

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from oidc_provider_mock import User, run_server_in_thread
from playwright.async_api import Page

from services.matching.app import create_app as matching_app
from services.matching.settings import MatchingSettings
from services.reporting.app import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from tests.integration.conftest import served
from tests.integration.pipeline import Pipeline
from tests.integration.test_dashboard import browser

pytestmark = pytest.mark.integration

PEOPLE = [
    User(sub="coordinator-q1", claims={"name": "Coordinator Q1", "peer_support_scope": "Q1"}),
    User(sub="analyst", claims={"name": "Network Analyst", "peer_support_scope": "network"}),
    User(sub="no-role", claims={"name": "Someone Else"}),
]


@contextlib.contextmanager
def identity_provider() -> Iterator[str]:
    with run_server_in_thread(user_claims=PEOPLE) as server:
        yield f"http://localhost:{server.server_port}"


@contextlib.asynccontextmanager
async def pages_signing_in_at(
    issuer: str, pipeline: Pipeline, make: Any, kind: Any
) -> AsyncIterator[str]:
    """The pipeline's service, a second replica of its pages that signs in at `issuer`."""
    oidc = {"oidc_issuer": issuer, "oidc_client_id": "desk", "oidc_client_secret": "s3cret-x" * 3}
    app = make(kind(**pipeline.isolation.settings(), **oidc))
    async with served(app) as url:
        yield url


async def sign_in_as(page: Page, url: str, who: str) -> str:
    """What a coordinator does: open the page, choose the hospital's sign-in, be someone."""
    await page.goto(url)
    await page.get_by_role("link", name="Sign in with your hospital account").click()
    await page.get_by_role("button", name=who).click()
    await page.wait_for_load_state()
    return await page.locator("body").inner_text()


async def test_a_coordinator_signs_in_at_the_hospital_and_sees_their_hospital(
    pipeline: Pipeline,
) -> None:
    with identity_provider() as issuer:
        async with (
            pages_signing_in_at(issuer, pipeline, matching_app, MatchingSettings) as desk,
            browser() as chromium,
        ):
            page = await chromium.new_page()
            shown = await sign_in_as(page, desk, "coordinator-q1")
            assert "Coordinator Q1 (hospital sign-in), hospital Q1" in shown
            cookies = {c["name"]: c for c in await page.context.cookies()}
            assert cookies["peer_support_desk_session"]["httpOnly"]

            refused = await sign_in_as(await chromium.new_page(), desk, "no-role")
            assert "Your account is not given access here" in refused


async def test_an_analyst_signs_in_to_the_dashboard_with_the_network_scope(
    pipeline: Pipeline,
) -> None:
    with identity_provider() as issuer:
        async with (
            pages_signing_in_at(issuer, pipeline, reporting_app, ReportingSettings) as dashboard,
            browser() as chromium,
        ):
            shown = await sign_in_as(await chromium.new_page(), dashboard, "analyst")
            assert "the whole network" in shown
            assert "Sign in with your hospital account" not in shown


async def test_a_forged_return_from_the_provider_opens_no_session(pipeline: Pipeline) -> None:
    with identity_provider() as issuer:
        async with (
            pages_signing_in_at(issuer, pipeline, matching_app, MatchingSettings) as desk,
            browser() as chromium,
        ):
            page = await chromium.new_page()
            answer = await page.goto(f"{desk}/session/hospital/back?code=made-up&state=forged")
            assert answer is not None
            assert answer.status == 401
            assert "did not complete" in await page.locator("body").inner_text()
            assert await page.context.cookies() == []
