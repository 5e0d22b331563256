"""The roster in the document store: capacity holds under concurrent reservations."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession

from services.matching.roster import RosterEntry
from services.matching.store import Roster
from shared.mongo import Document, in_transaction
from tests.factories import KEYS
from tests.integration.rig import Servers

pytestmark = pytest.mark.integration

SUPPORTER = RosterEntry(
    supporter_id="P1",
    hospital_id="ZH-A",
    staff_id="E1",
    display_name="$ a name that looks like an operator",
    email="p1@zh-a.example",
    function="nurse",
    department="ICU",
    max_open_cases=2,
)


async def test_concurrent_reservations_never_exceed_capacity(servers: Servers) -> None:
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(servers.mongodb_url, tz_aware=True)
    roster = Roster(mongo[f"roster_{uuid.uuid4().hex[:8]}"])
    try:
        await roster.apply(SUPPORTER.profile(KEYS))

        async def reserve(case_id: str) -> bool:
            async def work(session: AsyncClientSession) -> bool:
                return await roster.reserve(session, "P1", case_id, datetime.now(UTC))

            return await in_transaction(mongo, work)

        results = await asyncio.gather(*(reserve(f"case-{i}") for i in range(10)))
        assert sum(results) == 2
        (supporter,) = await roster.available_in("ZH-A")
        assert supporter.open_cases == 2
        assert supporter.contact.display_name == "$ a name that looks like an operator"

        # The coordinator raises the maximum: open cases are kept, one more fits.
        raised = SUPPORTER.model_copy(update={"max_open_cases": 3})
        await roster.apply(raised.profile(KEYS))
        assert (await roster.available_in("ZH-A"))[0].open_cases == 2
        assert await reserve("case-10")
        assert not await reserve("case-11")
    finally:
        await mongo.close()
