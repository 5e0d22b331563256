"""The coordinator desk's notes in the document store: a message that did not get through
stays on the case until a later message of the same assignment does."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient

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
