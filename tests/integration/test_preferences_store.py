"""Staff's standing choices in the document store across a pseudonym key rotation: the
latest choice made under a retired key moves to today's pseudonym, never over a later one."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from services.intake.cases import Choice
from services.intake.store import Preferences
from shared.mongo import Document, in_transaction
from tests.integration.rig import Servers

pytestmark = pytest.mark.integration

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
OLD, OLDER, TODAY = "a" * 32, "b" * 32, "c" * 32
"""The same professional's pseudonym under two retired keys and under today's."""


async def test_a_choice_under_a_retired_key_moves_to_todays_pseudonym(servers: Servers) -> None:
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(servers.mongodb_url, tz_aware=True)
    preferences = Preferences(mongo[f"prefs_{uuid.uuid4().hex[:8]}"])
    try:
        await preferences.record(OLDER, "welcome", MONDAY, Choice("phone", "en"))
        await preferences.record(OLD, "declined", MONDAY + timedelta(days=1))
        await preferences.rekey([OLD, OLDER], TODAY)

        async def stated() -> tuple[set[str], dict[str, Choice]]:
            return await in_transaction(
                mongo, lambda session: preferences.stated(session, [OLD, OLDER, TODAY])
            )

        assert await stated() == ({TODAY}, {}), "the latest choice, under today's pseudonym only"

        await preferences.record(OLD, "declined", MONDAY + timedelta(days=2))
        await preferences.record(TODAY, "welcome", MONDAY + timedelta(days=3), Choice("email"))
        await preferences.rekey([OLD], TODAY)
        assert await stated() == (set(), {TODAY: Choice("email")}), "a later choice stands"
    finally:
        await mongo.close()
