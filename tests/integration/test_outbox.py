"""What a crash between commit and publish leaves in the outbox goes out at the next start."""

import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from shared.kafka import ensure_topics
from shared.mongo import Document, Outbox, in_transaction
from tests.factories import opened_cases
from tests.integration.conftest import Servers

pytestmark = pytest.mark.integration


async def test_events_left_in_the_outbox_are_published_at_the_next_start(
    servers: Servers,
) -> None:
    topic = f"outbox-{uuid.uuid4().hex[:8]}"
    await ensure_topics(servers.kafka_bootstrap_servers, [topic], partitions=1)
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(servers.mongodb_url, tz_aware=True)
    database = mongo[f"outbox_{uuid.uuid4().hex[:8]}"]
    cases = opened_cases()
    broker = KafkaBroker(servers.kafka_bootstrap_servers)
    try:
        # The handler committed its transaction, then its process died before publishing.
        await in_transaction(
            mongo,
            lambda session: Outbox(database, broker).put(
                session, [(topic, case) for case in cases]
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

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=servers.kafka_bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records = [await consumer.getone() for _ in range(2)]
    finally:
        await consumer.stop()
    assert [json.loads(r.value)["case_id"] for r in records] == [str(c.case_id) for c in cases]
    assert {r.key for r in records} == {b"ZH-A:INC-2026-000123"}
