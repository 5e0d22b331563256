"""What a crash or a failed publish between commit and publish leaves in the outbox goes out:
at the next start, and within seconds by the relay while the service runs."""

import asyncio
import json
import os
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession

from shared.errors import RejectedEvent
from shared.events import SupportCaseOpened
from shared.kafka import ensure_topics
from shared.mongo import (
    Announcements,
    Document,
    Outbox,
    Step,
    UnitOfWork,
    Work,
    in_transaction,
    outbox_entries,
)
from shared.settings import TopicLayout, Topics
from tests.factories import opened_cases
from tests.integration.rig import Servers

pytestmark = pytest.mark.integration


async def test_events_left_in_the_outbox_are_published_at_the_next_start(
    servers: Servers,
) -> None:
    topic, _, mongo = await _fresh_topic_and_store(servers)
    database = mongo[f"outbox_{uuid.uuid4().hex[:8]}"]
    cases = opened_cases()
    broker = KafkaBroker(servers.kafka_bootstrap_servers)
    try:
        # The handler committed its transaction, then its process died before publishing.
        await in_transaction(
            mongo,
            lambda session: Outbox(database, broker).put(
                session, outbox_entries([(topic, case) for case in cases], datetime.now(UTC))
            ),
        )
        await broker.start()
        published = await Outbox(database, broker).flush()  # what a service does at startup
        assert published == 2
        assert await database["outbox"].count_documents({}) == 0
        assert await Outbox(database, broker).flush() == 0
    finally:
        await broker.stop()
        await mongo.close()

    records = await first_records(servers, topic, 2)
    assert [json.loads(r.value)["case_id"] for r in records] == [str(c.case_id) for c in cases]
    assert [r.key for r in records] == [str(c.case_id).encode() for c in cases], "by case"


async def test_events_whose_publish_failed_after_the_commit_are_relayed_without_a_restart(
    servers: Servers,
) -> None:
    local = servers.local
    if local is None:
        pytest.skip("pausing the broker needs the local servers")
    kafka = next(p for p in local.processes if p.name.startswith("kafka"))
    topic, counts, mongo = await _fresh_topic_and_store(servers)
    database = mongo[f"outbox_{uuid.uuid4().hex[:8]}"]
    broker = KafkaBroker(servers.kafka_bootstrap_servers, request_timeout_ms=1500)
    outbox = Outbox(database, broker, relay_after=60)
    cases = opened_cases()
    await broker.start()
    await outbox.drain()  # as at start: nothing is behind
    relay = asyncio.create_task(outbox.relay(every=0.2))
    try:
        os.killpg(kafka.pid, signal.SIGSTOP)
        try:
            published = await UnitOfWork(mongo, outbox, counts).run(
                lambda session, now: _announce(topic, cases)
            )
        finally:
            os.killpg(kafka.pid, signal.SIGCONT)
        each_with_its_count = [str(e.event_id) for c in cases for e in (c, c.counted())]
        assert [doc["_id"] for doc in published] == each_with_its_count
        assert outbox.behind, "the publish failed while the broker was paused"

        deadline = time.monotonic() + 60
        while await database["outbox"].count_documents({}):
            assert time.monotonic() < deadline, "the relay did not publish within 60 s"
            await asyncio.sleep(0.2)
    finally:
        relay.cancel()
        await broker.stop()
        await mongo.close()

    records = await first_records(servers, topic, 2)
    assert [json.loads(r.value)["case_id"] for r in records] == [str(c.case_id) for c in cases]


async def test_a_batch_of_steps_commits_and_publishes_together_or_not_at_all(
    servers: Servers,
) -> None:
    """Group commit: one step refused undoes the batch's state and outbox entries; a batch
    that commits publishes every step's events in order, each in its own step's trace."""
    topic, counts, mongo = await _fresh_topic_and_store(servers)
    database = mongo[f"outbox_{uuid.uuid4().hex[:8]}"]
    broker = KafkaBroker(servers.kafka_bootstrap_servers)
    outbox = Outbox(database, broker)
    unit_of_work = UnitOfWork(mongo, outbox, counts)
    cases = opened_cases()

    def opening(case: SupportCaseOpened) -> Work:
        async def work(session: AsyncClientSession, now: datetime) -> Announcements:
            await database["cases"].insert_one({"_id": str(case.case_id)}, session=session)
            return [(topic, case)]

        return work

    async def refused(session: AsyncClientSession, now: datetime) -> Announcements:
        raise RejectedEvent("the domain refuses this one")

    traces = [_trace(), _trace()]
    await broker.start()
    try:
        await outbox.drain()
        with pytest.raises(RejectedEvent):
            await unit_of_work.run_steps([Step(opening(cases[0])), Step(refused)])
        assert await database["cases"].count_documents({}) == 0
        assert await database["outbox"].count_documents({}) == 0

        published = await unit_of_work.run_steps(
            [Step(opening(case), trace) for case, trace in zip(cases, traces, strict=True)]
        )
        assert [[doc["_id"] for doc in docs] for docs in published] == [
            [str(case.event_id), str(case.counted().event_id)] for case in cases
        ]
        assert [[doc["trace"] for doc in docs] for docs in published] == [[t, t] for t in traces]
        assert await database["cases"].count_documents({}) == 2
        assert await database["outbox"].count_documents({}) == 0, "published at once"
    finally:
        await broker.stop()
        await mongo.close()

    records = await first_records(servers, topic, 2)
    assert [json.loads(r.value)["case_id"] for r in records] == [str(c.case_id) for c in cases]


async def test_the_relay_leaves_a_long_batchs_entries_to_their_own_publish(
    servers: Servers,
) -> None:
    """A batch's transaction may outlast the relay's wait: its entries are dated when put, and
    while they are being published the relay does not publish them a second time."""
    topic, _, mongo = await _fresh_topic_and_store(servers)
    database = mongo[f"outbox_{uuid.uuid4().hex[:8]}"]
    broker = KafkaBroker(servers.kafka_bootstrap_servers)
    outbox = Outbox(database, broker, relay_after=1)
    cases = opened_cases()
    began = datetime.now(UTC) - timedelta(minutes=10)  # when the long transaction began
    entries = outbox_entries([(topic, case) for case in cases], began)
    await broker.start()
    try:
        await outbox.drain()
        await in_transaction(mongo, lambda session: outbox.put(session, entries))
        async for doc in database["outbox"].find():
            assert datetime.now(UTC) - doc["created_at"] < timedelta(minutes=1)

        published, relayed = await asyncio.gather(outbox.flush(entries), outbox.drain())
        assert (published, relayed) == (2, 0)
        await broker.publish({"end": True}, topic=topic)
    finally:
        await broker.stop()
        await mongo.close()

    records = await first_records(servers, topic, 3)
    assert [json.loads(r.value).get("case_id") for r in records] == [
        *(str(c.case_id) for c in cases),
        None,
    ], "each event once, then the end"


def _trace() -> dict[str, str]:
    return {"traceparent": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"}


async def _fresh_topic_and_store(
    servers: Servers,
) -> tuple[str, Topics, AsyncMongoClient[Document]]:
    """A topic of its own (and its counts topic), so no other test's events are read."""
    topic = f"outbox-{uuid.uuid4().hex[:8]}"
    counts = Topics(case_counts=f"{topic}.counts")
    await ensure_topics(
        servers.kafka_bootstrap_servers, [topic, counts.case_counts], TopicLayout(partitions=1)
    )
    return topic, counts, AsyncMongoClient(servers.mongodb_url, tz_aware=True)


async def _announce(topic: str, cases: list[SupportCaseOpened]) -> Announcements:
    return [(topic, case) for case in cases]


async def first_records(
    servers: Servers, topic: str, count: int
) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=servers.kafka_bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        return [await asyncio.wait_for(consumer.getone(), 30) for _ in range(count)]
    finally:
        await consumer.stop()
