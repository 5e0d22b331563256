"""Allowances counted in the real store: two replicas of a service share one count, and a
window that has passed starts afresh."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from shared.allowances import Allowance, Allowances
from shared.mongo import Document
from tests.integration.rig import Servers

pytestmark = pytest.mark.integration

NOON = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


async def test_two_replicas_do_not_double_an_allowance(servers: Servers) -> None:
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(servers.mongodb_url, tz_aware=True)
    database = mongo[f"allowances_{uuid.uuid4().hex[:8]}"]
    one, two = (Allowances(database, "allowances", timedelta(hours=1)) for _ in range(2))
    await one.ensure_indexes()
    address, hospital = Allowance("address-key", 3), Allowance("hospital-key", 4)
    try:
        used = [
            await replica.spend([address, hospital], NOON + timedelta(minutes=n))
            for n, replica in enumerate([one, two, one, two])
        ]
        assert used == [None, None, None, address], "three uses in all, whichever replica"
        other = Allowance("other-address-key", 3)
        assert await two.spend([other, hospital], NOON) is hospital, "the hospital's fifth"
        assert await one.spend([address], NOON + timedelta(hours=1)) is None, "a new hour"
    finally:
        await mongo.drop_database(database.name)
        await mongo.close()
