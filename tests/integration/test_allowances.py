"""Allowances counted in the real store, in a sliding window: two replicas of a service
share one count, a refused use is not counted, and a use leaves the window an hour after it."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from shared.allowances import Allowance, Allowances
from shared.mongo import Document
from tests.integration.rig import Servers

pytestmark = pytest.mark.integration

NOON = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return NOON + timedelta(minutes=minutes)


async def test_two_replicas_do_not_double_an_allowance(servers: Servers) -> None:
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(servers.mongodb_url, tz_aware=True)
    database = mongo[f"allowances_{uuid.uuid4().hex[:8]}"]
    one, two = (Allowances(database, "allowances", timedelta(hours=1)) for _ in range(2))
    await one.ensure_indexes()
    address, hospital = Allowance("address-key", 3), Allowance("hospital-key", 4)
    try:
        used = [
            await replica.spend([address, hospital], at(n))
            for n, replica in enumerate([one, two, one, two])
        ]
        assert used == [None, None, None, address], "three uses in all, whichever replica"
        other, third = Allowance("other-address-key", 3), Allowance("third-address-key", 3)
        assert await two.spend([other, hospital], at(5)) is None, "the refused use not counted"
        assert await one.spend([third, hospital], at(6)) is hospital, "the hospital's four"
        assert await one.retry_after(address, at(10)) == 50 * 60 + 1, "when the first use leaves"
        assert await one.spend([address], at(61)) is None, "the first use left the window"
    finally:
        await mongo.drop_database(database.name)
        await mongo.close()
