"""intake's incident records in the real store: once an incident settles, a late change to it
is still recognised as that incident's, under today's key or a retired one, while nothing
stored names the incident any more."""

import json
import uuid
from datetime import timedelta

import pytest
from pymongo import AsyncMongoClient

from services.intake.cases import IncidentRecord
from services.intake.store import IncidentRecords
from shared.mongo import Document, in_transaction
from shared.pseudonyms import PseudonymKeys
from tests.factories import NOW, reconciled
from tests.integration.rig import Servers

pytestmark = pytest.mark.integration

KEY = "ZH-A:INC-2026-000123"
OLD, NEW = b"o" * 32, b"n" * 32


async def test_a_settled_incident_is_recognised_yet_named_nowhere(servers: Servers) -> None:
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(servers.mongodb_url, tz_aware=True)
    database = mongo[f"incidents_{uuid.uuid4().hex[:8]}"]
    records = IncidentRecords(database, PseudonymKeys(OLD))
    try:
        record = reconciled().record
        await in_transaction(mongo, lambda s: records.save(s, KEY, record, None, NOW))
        assert await records.settle(NOW + timedelta(seconds=1)) == 1

        async def found(keys: PseudonymKeys) -> IncidentRecord | None:
            rotated = IncidentRecords(database, keys)
            return await in_transaction(mongo, lambda s: rotated.get(s, KEY))

        for keys in (PseudonymKeys(OLD), PseudonymKeys(NEW, (OLD,))):
            settled = await found(keys)
            assert settled is not None
            assert (settled.settled, settled.cases, settled.reference) == (True, {}, None)
        assert await found(PseudonymKeys(NEW)) is None, "a dropped key recognises nothing"
        stored = json.dumps([doc async for doc in database["incidents"].find()], default=str)
        assert "INC-2026-000123" not in stored
        assert str(next(iter(record.cases.values())).case_id) not in stored
    finally:
        await mongo.drop_database(database.name)
        await mongo.close()
