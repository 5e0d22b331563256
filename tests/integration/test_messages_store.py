"""Notify's messages in the document store: a step is claimed by one sender at a time."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession

from services.notify.steps import OFFER, Scheduled, offer_steps
from services.notify.store import Messages, State
from shared.mongo import Document, in_transaction
from tests.factories import assignment_and_contacts
from tests.integration.rig import Servers

pytestmark = pytest.mark.integration

LEASE = timedelta(minutes=2)


@pytest.fixture
async def messages(servers: Servers) -> AsyncIterator[tuple[Messages, str]]:
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(servers.mongodb_url, tz_aware=True)
    store = Messages(mongo[f"messages_{uuid.uuid4().hex[:8]}"], LEASE)
    await store.ensure_indexes()
    assignment, _, _ = assignment_and_contacts()
    now = datetime.now(UTC)
    steps = [Scheduled(step.step, now - timedelta(seconds=1)) for step in offer_steps(now, now)]

    async def schedule(session: AsyncClientSession) -> None:
        await store.schedule(session, assignment, steps)

    await in_transaction(mongo, schedule)
    try:
        yield store, f"{assignment.assignment_id}/{steps[0].step}"
    finally:
        await mongo.close()


async def test_concurrent_claims_of_a_due_message_have_one_winner(
    messages: tuple[Messages, str],
) -> None:
    store, message_id = messages
    now = datetime.now(UTC)
    at = [now + timedelta(milliseconds=i) for i in range(12)]  # each sender's own clock
    claims = await asyncio.gather(*(store.claim(message_id, clock) for clock in at))
    winners = [claim for claim in claims if claim is not None]
    assert len(winners) == 1
    assert winners[0].state == State.SCHEDULED
    assert await store.state_of(message_id) == State.SENDING


async def test_a_claim_interrupted_while_sending_is_claimable_after_its_lease(
    messages: tuple[Messages, str],
) -> None:
    store, message_id = messages
    now = datetime.now(UTC)
    assert await store.claim(message_id, now) is not None
    assert await store.claim(message_id, now + LEASE / 2) is None
    again = await store.claim(message_id, now + LEASE + timedelta(seconds=1))
    assert again is not None
    assert again.state == State.SENDING  # the sender learns the first try may have gone out


async def test_a_settled_message_is_never_claimed(messages: tuple[Messages, str]) -> None:
    store, message_id = messages
    await store.settle(message_id, State.SKIPPED)
    assert await store.claim(message_id, datetime.now(UTC) + timedelta(days=30)) is None


async def test_an_offer_recorded_as_waiting_for_its_contact_is_claimed_once_it_arrives(
    servers: Servers,
) -> None:
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(servers.mongodb_url, tz_aware=True)
    store = Messages(mongo[f"messages_{uuid.uuid4().hex[:8]}"], LEASE)
    assignment, _, _ = assignment_and_contacts()
    now = datetime.now(UTC)
    steps = offer_steps(now - timedelta(seconds=1), now + timedelta(hours=1))

    async def schedule(session: AsyncClientSession) -> None:
        await store.schedule(session, assignment, steps, awaiting_contact=(OFFER,))

    try:
        await store.ensure_indexes()
        await in_transaction(mongo, schedule)
        offer_id = f"{assignment.assignment_id}/{OFFER}"
        assert await store.claim(offer_id, now) is None
        assert (await store.waiting())[State.AWAITING_CONTACT] == 1

        case_id = str(assignment.case_id)
        arrivals = await asyncio.gather(  # the contact, delivered twice at once
            *(store.arrived(State.AWAITING_CONTACT, [case_id], now) for _ in range(2))
        )
        ((key, claimed),) = [claim for claims in arrivals for claim in claims]
        assert (key, claimed.message_id, claimed.step) == (case_id, offer_id, OFFER)
        assert claimed.interrupted_on is None
        assert await store.state_of(offer_id) == State.SENDING
    finally:
        await mongo.close()
