"""The coordinator desk's notes in the document store: a message that did not get through
stays on the case until a later message of the same assignment does."""

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from pymongo import AsyncMongoClient

from services.matching.desk import Debrief
from services.matching.desk_store import DeskRecords
from services.notify.messages import failed, notified
from shared.mongo import Document
from tests.factories import NOW, assignment_and_contacts
from tests.integration.rig import Servers

pytestmark = pytest.mark.integration


@pytest.fixture
async def records(servers: Servers) -> AsyncIterator[DeskRecords]:
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(servers.mongodb_url, tz_aware=True)
    try:
        yield DeskRecords(mongo[f"desk_{uuid.uuid4().hex[:8]}"], timedelta(days=365))
    finally:
        await mongo.close()


async def test_a_failed_offer_stays_on_the_desk_until_a_later_message_gets_through(
    records: DeskRecords,
) -> None:
    assignment, _, _ = assignment_and_contacts()
    case_id = str(assignment.case_id)
    refused = failed(assignment, "offer", "email", "mailbox unknown", NOW)
    await records.heard([refused])
    assert (await records.notes.of_cases([case_id]))[case_id].notice is not None

    reminded = notified(assignment, "reminder", "sms", NOW + timedelta(hours=1))
    await records.heard([reminded])
    assert (await records.notes.of_cases([case_id]))[case_id].notice is None


async def test_a_batch_keeps_the_order_of_a_failure_and_the_send_after_it(
    records: DeskRecords,
) -> None:
    assignment, _, _ = assignment_and_contacts()
    other, _, _ = assignment_and_contacts()
    other = other.model_copy(update={"case_id": uuid.uuid4(), "assignment_id": uuid.uuid4()})
    later = NOW + timedelta(hours=1)
    await records.heard(
        [
            failed(assignment, "offer", "email", "mailbox unknown", NOW),
            notified(assignment, "reminder", "sms", later),
            notified(other, "offer", "email", NOW),
            failed(other, "reminder", "email", "mailbox full", later),
        ]
    )
    notes = await records.notes.of_cases([str(assignment.case_id), str(other.case_id)])
    assert notes[str(assignment.case_id)].notice is None, "cleared by the send after it"
    kept = notes[str(other.case_id)].notice
    assert kept is not None
    assert kept.reason == "mailbox full", "a send before a failure does not clear it"


async def test_two_hospitals_debriefings_of_an_incident_numbered_alike_stay_apart(
    records: DeskRecords,
) -> None:
    for hospital in ("ZH-A", "ZH-B"):
        await records.debriefs.suggested(Debrief("INC-1", hospital, 7, NOW))
    async with records.debriefs.collection.database.client.start_session() as session:
        await records.debriefs.record(session, "ZH-A", "INC-1", planned_on=date(2026, 12, 10))
    zh_a = await records.debriefs.get("ZH-A", "INC-1")
    zh_b = await records.debriefs.get("ZH-B", "INC-1")
    assert zh_a is not None
    assert zh_b is not None
    assert (zh_a.planned_on, zh_b.planned_on) == (date(2026, 12, 10), None)
    assert [d.hospital_id for d in await records.debriefs.of_hospital("ZH-B")] == ["ZH-B"]


async def test_a_debriefing_suggested_before_hospitals_keyed_them_is_found_after_an_upgrade(
    records: DeskRecords,
) -> None:
    old = {"_id": "INC-9", "hospital_id": "ZH-A", "professionals_involved": 6, "suggested_at": NOW}
    await records.debriefs.collection.insert_one(old)
    await records.ensure_indexes()
    upgraded = await records.debriefs.get("ZH-A", "INC-9")
    assert upgraded == Debrief("INC-9", "ZH-A", 6, NOW)
    assert await records.debriefs.collection.count_documents({}) == 1
