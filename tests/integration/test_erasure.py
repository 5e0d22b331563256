"""Nothing identifiable outlives support: `PURGE_AFTER` after a case ended, and once its
incident has settled, the colleague's e-mail, phone and pseudonym are in none of intake's,
notify's, matching's or reporting's collections; before, they are where the README says."""

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.integration.rig import Servers, until_true
from tests.integration.test_support_ends import Programme, ending_link, programme

pytestmark = pytest.mark.integration

PURGE_AFTER = timedelta(seconds=20)
"""Long enough to look at the case before it goes, on a loaded machine too."""
SETTLE_AFTER = timedelta(seconds=90)
"""Long enough to look at the incident's record after the colleague was supported."""


@pytest.fixture
async def erasing(servers: Servers) -> AsyncIterator[Programme]:
    quick = {"purge_after": PURGE_AFTER, "purge_scan_seconds": 0.5}
    settling = {"incidents_settle_after": SETTLE_AFTER, "settle_scan_seconds": 0.5}
    async with programme(servers, notify=quick, matching=quick, intake=settling) as ready:
        yield ready


async def holding(erasing: Programme, *secrets: str) -> dict[str, list[str]]:
    """Per secret, the `database.collection` names whose documents contain it."""
    found: dict[str, list[str]] = {secret: [] for secret in secrets}
    for service in ("intake", "notify", "matching", "reporting"):
        database = erasing.mongo[erasing.database(service)]
        for name in await database.list_collection_names():
            text = json.dumps([doc async for doc in database[name].find()], default=str)
            for secret in secrets:
                if secret in text:
                    found[secret].append(f"{service}.{name}")
    return found


async def test_a_colleague_is_erased_once_support_has_ended_long_enough(
    erasing: Programme,
) -> None:
    url = await ending_link(erasing, "X1")
    (offer,) = erasing.of("support.peer_assigned", "X1")
    case_id = offer["case_id"]
    notify = erasing.mongo[erasing.database("notify")]
    matching = erasing.mongo[erasing.database("matching")]
    contact = await notify["case_contacts"].find_one({"_id": case_id})
    case = await matching["cases"].find_one({"_id": case_id})
    assert contact is not None
    assert case is not None
    email, phone = contact["contact"]["email"], contact["contact"]["phone"]
    pseudonym = case["colleague"]["pseudonym"]
    before = await holding(erasing, email, phone, pseudonym)
    assert "notify.case_contacts" in before[email]
    assert "notify.case_contacts" in before[phone]
    assert "matching.cases" in before[pseudonym]
    assert "intake.incidents" in before[pseudonym]
    assert not [where for places in before.values() for where in places if "reporting" in where]

    form = {"choice": "end", "outcome": "completed", "referral": ""}
    ended = await erasing.browser.post(url, data=form)
    # 409: support lapsed meanwhile (nobody logged a contact in time); it ended either way.
    assert ended.status_code in (200, 409)
    await until_true(
        lambda: holding(erasing, email, phone, pseudonym),
        lambda found: not any(found.values()),
        "the colleague erased from every collection",
        within=SETTLE_AFTER.total_seconds() + 120,
    )
    erased = await matching["cases"].find_one({"_id": case_id})
    assert erased is not None
    assert erased["status"] == "ended", "the case stays, counted, without its colleague"
    assert "purged_at" in erased
    # A late redelivery of the colleague's contact brings nothing back.
    end = await notify["case_ends"].find_one({"_id": case_id})
    assert end is not None
    assert end["purged_at"] is not None
