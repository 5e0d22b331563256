"""Nothing identifiable outlives support: `PURGE_AFTER` after a case ended, and once its
incident has settled, the colleague's e-mail, phone and pseudonym (and the case's tag of it)
are in none of intake's, notify's, matching's or reporting's collections, the contact sealed
on the contacts topic can no longer be opened, and no topic holds the pseudonym; before,
they are where the README says."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from services.notify.keyring import ContactKeys
from shared.events import CaseContactRecorded, CaseContactSealed
from shared.sealing import unseal
from shared.settings import dead_letter_topic
from tests.integration.rig import Servers, retained, until_true
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


async def on_topics(erasing: Programme, *secrets: str) -> dict[str, list[str]]:
    """Per secret, the retained topics (dead letters included) whose events or keys contain
    it."""
    held = await retained(erasing.isolation, keys=True)
    return {
        secret: [
            topic for topic, values in held.items() if any(secret.encode() in v for v in values)
        ]
        for secret in secrets
    }


async def sealed_contact(erasing: Programme, case_id: str) -> CaseContactSealed:
    """The colleague's contact as the contacts topic keeps it."""
    held = await retained(erasing.isolation)
    events = [CaseContactSealed.model_validate_json(v) for v in held[erasing.topics.contacts]]
    (sealed,) = [event for event in events if str(event.case_id) == case_id]
    return sealed


async def pseudonym_of(erasing: Programme, case_id: str) -> str:
    """The colleague's pseudonym, as intake records who is in the incident until it settles."""
    incidents = erasing.mongo[erasing.database("intake")]["incidents"]
    incident = await incidents.find_one({"cases.case_id": case_id})
    assert incident is not None
    (pseudonym,) = [c["pseudonym"] for c in incident["cases"] if c["case_id"] == case_id]
    return str(pseudonym)


@dataclass(frozen=True)
class Colleague:
    """What identifies the supported colleague, and where the README says it is kept."""

    email: str
    phone: str
    pseudonym: str
    tag: str
    """The pseudonym as the case's events carry it: tagged with the case's salt."""
    sealed: CaseContactSealed

    @property
    def secrets(self) -> tuple[str, str, str, str]:
        return self.email, self.phone, self.pseudonym, self.tag


async def where_it_is(erasing: Programme, case_id: str) -> Colleague:
    notify = erasing.mongo[erasing.database("notify")]
    contact = await notify["case_contacts"].find_one({"_id": case_id})
    case = await erasing.mongo[erasing.database("matching")]["cases"].find_one({"_id": case_id})
    assert contact is not None
    assert case is not None
    colleague = Colleague(
        contact["contact"]["email"],
        contact["contact"]["phone"],
        await pseudonym_of(erasing, case_id),
        case["colleague"]["pseudonym"],
        await sealed_contact(erasing, case_id),
    )
    assert colleague.tag != colleague.pseudonym, "matching knows them by this case's tag only"
    before = await holding(erasing, *colleague.secrets)
    assert "notify.case_contacts" in before[colleague.email]
    assert "notify.case_contacts" in before[colleague.phone]
    assert before[colleague.pseudonym] == ["intake.incidents"]
    assert before[colleague.tag] == ["matching.cases"]
    assert not [where for places in before.values() for where in places if "reporting" in where]
    topics = erasing.topics
    assert await on_topics(erasing, *colleague.secrets) == {
        colleague.email: [topics.incidents_reported],
        colleague.phone: [topics.incidents_reported],
        colleague.pseudonym: [],
        colleague.tag: [topics.cases],
    }, "the contact travels sealed, the pseudonym only tagged with the case's salt"
    private_key = (await ContactKeys(notify).private_keys([colleague.sealed.case_id])).get(
        colleague.sealed.case_id
    )
    assert private_key is not None
    sealed = colleague.sealed
    opened = CaseContactRecorded.model_validate_json(
        unseal(private_key, sealed.case_id, sealed.sealed)
    )
    assert (opened.email, opened.phone) == (colleague.email, colleague.phone)
    return colleague


async def test_a_colleague_is_erased_once_support_has_ended_long_enough(
    erasing: Programme,
) -> None:
    url = await ending_link(erasing, "X1")
    (offer,) = erasing.of("support.peer_assigned", "X1")
    case_id = offer["case_id"]
    colleague = await where_it_is(erasing, case_id)

    form = {"choice": "end", "outcome": "completed", "referral": ""}
    ended = await erasing.browser.post(url, data=form)
    # 409: support lapsed meanwhile (nobody logged a contact in time); it ended either way.
    assert ended.status_code in (200, 409)
    await until_true(
        lambda: holding(erasing, *colleague.secrets),
        lambda found: not any(found.values()),
        "the colleague erased from every collection",
        within=SETTLE_AFTER.total_seconds() + 120,
    )
    notify = erasing.mongo[erasing.database("notify")]
    erased = await erasing.mongo[erasing.database("matching")]["cases"].find_one({"_id": case_id})
    assert erased is not None
    assert erased["status"] == "ended", "the case stays, counted, without its colleague"
    assert "purged_at" in erased
    # A late redelivery of the colleague's contact brings nothing back.
    end = await notify["case_ends"].find_one({"_id": case_id})
    assert end is not None
    assert end["purged_at"] is not None
    # The sealed copy stays on the topic for its retention, but its key is gone with the case.
    assert await ContactKeys(notify).private_keys([colleague.sealed.case_id]) == {}
    assert await sealed_contact(erasing, case_id) == colleague.sealed
    # What the topics still hold names nobody: the tag stands for no pseudonym that is kept.
    assert (await on_topics(erasing, colleague.pseudonym))[colleague.pseudonym] == []
    await nothing_leads_back(erasing, colleague, offer)


async def nothing_leads_back(
    erasing: Programme, colleague: Colleague, offer: dict[str, str]
) -> None:
    """Who was in the incident is the incident system's to know; after the erasure nothing of
    ours ties the incident, or the colleague's staff id, e-mail or phone, to a case, to who
    supported it, or to how it went: no database, and no topic but the hospitals' own
    ingress (kept `TOPICS_INGRESS_RETENTION_DAYS`)."""
    reports = (await retained(erasing.isolation))[erasing.topics.incidents_reported]
    (reported,) = [e for e in map(json.loads, reports) if e["hospital_id"] == "X1"]
    (staff_id,) = [p["staff_id"] for p in reported["participants"]]
    traces = (reported["incident_id"], staff_id, colleague.email, colleague.phone)
    stored = await holding(erasing, *traces, offer["assignment_id"])
    assert {trace: found for trace, found in stored.items() if found} == {}
    topics = erasing.topics
    ingress = {topics.incidents_reported, topics.staff}
    ingress |= {dead_letter_topic(topic) for topic in ingress}
    ours = {
        trace: [topic for topic in held if topic not in ingress]
        for trace, held in (await on_topics(erasing, *traces)).items()
    }
    assert {trace: held for trace, held in ours.items() if held} == {}
