"""The analysts' API lets in only tokens, and a hospital's token sees only that hospital."""

import csv
import io
import subprocess
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared.tokens import ApiTokens
from tests.factories import incident_json, participant
from tests.integration.pipeline import Pipeline
from tests.integration.test_pipeline import report_and_wait, roster

pytestmark = pytest.mark.integration


async def operator(pipeline: Pipeline, *arguments: str) -> list[str]:
    """reporting's command, as `make token`, `make tokens` and `make revoke` run it."""
    return await pipeline.operator("reporting", *arguments)


async def issue(pipeline: Pipeline, scope: str, label: str = "") -> str:
    """A token as an operator issues one: `make token SCOPE=...`, last line of the output."""
    return (await operator(pipeline, "token", "--scope", scope, "--label", label))[-1]


MONTH_OF_K = "2024-04-10T10:00:00+02:00"


@pytest.fixture(scope="module")
async def two_hospitals(pipeline: Pipeline) -> None:
    for hospital in ("K1", "K2"):
        await pipeline.load_roster(roster(hospital))
        people = [participant(f"E5{n}", department="ED") for n in range(6)]
        # A year of their own, so that no other test's small hospital hides them beside it.
        event = incident_json("INC-K", people, hospital_id=hospital, occurred_at=MONTH_OF_K)
        await report_and_wait(pipeline, event, 6)
    await pipeline.idle()
    await pipeline.release()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_without_a_known_token_nothing_is_served(
    pipeline: Pipeline, two_hospitals: None
) -> None:
    url = "/api/v1/aggregates"
    missing = await pipeline.reporting.get(url, headers={"Authorization": ""})
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    unknown = await pipeline.reporting.get(url, headers=bearer("ps_not-a-token"))
    assert unknown.status_code == 401
    assert "rows" not in unknown.text


async def test_a_hospitals_token_reads_its_own_hospital_only(
    pipeline: Pipeline, two_hospitals: None
) -> None:
    token = await issue(pipeline, "K1")
    url = "/api/v1/aggregates"
    own = await pipeline.reporting.get(
        url, params={"group_by": "hospital_id"}, headers=bearer(token)
    )
    assert own.status_code == 200
    assert [row["hospital_id"] for row in own.json()["rows"]] == ["K1"]
    other = await pipeline.reporting.get(url, params={"hospital_id": "K2"}, headers=bearer(token))
    assert other.status_code == 403
    assert other.json()["detail"] == "a token for K1 cannot read K2"


async def test_a_network_token_reads_every_hospital_also_as_csv(
    pipeline: Pipeline, two_hospitals: None
) -> None:
    token = await issue(pipeline, "network")
    response = await pipeline.reporting.get(
        "/api/v1/aggregates",
        params={"group_by": "hospital_id,function", "format": "csv"},
        headers=bearer(token),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    ours = [r for r in rows if r["hospital_id"] in ("K1", "K2")]
    assert [(r["hospital_id"], r["cases_opened"], r["suppressed"]) for r in ours] == [
        ("K1", "6", "False"),
        ("K2", "6", "False"),
    ]
    assert list(rows[0])[:3] == ["hospital_id", "function", "cases_opened"]


async def test_an_invalid_scope_issues_no_token(pipeline: Pipeline) -> None:
    with pytest.raises(subprocess.CalledProcessError) as refused:
        await issue(pipeline, "not a hospital!")
    assert "scope must be 'network' or a hospital id" in refused.value.stderr


async def test_a_revoked_token_and_its_dashboard_session_are_refused_at_once(
    pipeline: Pipeline, two_hospitals: None
) -> None:
    token = await issue(pipeline, "K1", label="revocation test")
    signed_in = await pipeline.reporting.post("/session", data={"token": token})
    assert signed_in.status_code == 303
    session = signed_in.cookies["peer_support_session"]
    assert session != token, "the cookie holds a session, not the token"
    transport = httpx.ASGITransport(app=pipeline.reporting_app)
    cookies = {"peer_support_session": session}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://reporting", cookies=cookies
    ) as browser:
        assert "hospital K1" in (await browser.get("/")).text
        (listed,) = [
            line for line in await operator(pipeline, "tokens") if "revocation test" in line
        ]
        assert "valid until" in listed
        await operator(pipeline, "revoke", listed.split()[0])
        refused = await pipeline.reporting.get("/api/v1/aggregates", headers=bearer(token))
        assert refused.status_code == 401
        assert "Sign in with your API token" in (await browser.get("/")).text
    (listed,) = [line for line in await operator(pipeline, "tokens") if "revocation test" in line]
    assert "revoked" in listed


async def test_an_expired_token_is_refused(pipeline: Pipeline) -> None:
    database = pipeline.mongo[f"{pipeline.database_prefix}reporting"]
    token = await ApiTokens(database, valid_for=timedelta(0)).issue("K1", "old", datetime.now(UTC))
    response = await pipeline.reporting.get("/api/v1/aggregates", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == "unknown, expired or revoked API token"


async def test_guessing_tokens_is_refused_after_a_few_tries(pipeline: Pipeline) -> None:
    """From one address: past the allowance, even a good token waits; others are not held."""
    good = await issue(pipeline, "network")

    def client_at(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=pipeline.reporting_app, client=(address, 4000))
        return httpx.AsyncClient(transport=transport, base_url="http://reporting")

    async with client_at("10.66.0.1") as guesser, client_at("10.66.0.2") as neighbour:
        for n in range(10):
            # A forged proxy header each time: no proxy is trusted, so one address guesses.
            forged = {**bearer(f"ps_guess{n}"), "X-Forwarded-For": f"198.51.100.{n}"}
            wrong = await guesser.get("/api/v1/aggregates", headers=forged)
            assert wrong.status_code == 401
        held = await guesser.get("/api/v1/aggregates", headers=bearer(good))
        assert held.status_code == 429
        assert int(held.headers["Retry-After"]) > 0
        signing_in = await guesser.post("/session", data={"token": good})
        assert signing_in.status_code == 429
        neighbours = await neighbour.get("/api/v1/aggregates", headers=bearer(good))
        assert neighbours.status_code == 200
