"""The analysts' API lets in only tokens, and a hospital's token sees only that hospital."""

import asyncio
import csv
import io
import os
import subprocess
import sys

import pytest

from tests.factories import incident_json, participant
from tests.integration.pipeline import Pipeline
from tests.integration.test_pipeline import report_and_wait, roster

pytestmark = pytest.mark.integration


async def issue(pipeline: Pipeline, scope: str) -> str:
    """A token as an operator issues one: `make token SCOPE=...`, last line of the output."""
    env = {
        **os.environ,
        "MONGODB_URL": pipeline.servers.mongodb_url,
        "MONGODB_DATABASE_PREFIX": pipeline.database_prefix,
    }
    command = [sys.executable, "-m", "services.reporting.cli", "token", "--scope", scope]
    issued = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, check=True
    )
    return issued.stdout.strip().splitlines()[-1]


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
