"""The consumer-lag watch: what operators graph and what readiness reports."""

import asyncio
import re
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from shared.kafka import ensure_topics
from shared.lag import LagWatch, Subscription
from shared.settings import TopicLayout
from tests.integration.rig import Servers

pytestmark = pytest.mark.integration


async def test_messages_nobody_handles_show_as_lag_and_then_as_a_stall(servers: Servers) -> None:
    topic = f"lag-{uuid.uuid4().hex[:8]}"
    await ensure_topics(servers.kafka_bootstrap_servers, [topic], TopicLayout(partitions=1))
    registry = CollectorRegistry()
    watch = LagWatch(
        servers.kafka_bootstrap_servers,
        [Subscription(f"idle-{topic}", (topic,))],
        registry,
        stall_after=1.0,
    )
    assert await watch.check() == []
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap_servers)
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(topic, f"event {n}".encode())
    finally:
        await producer.stop()

    labels = {"group": f"idle-{topic}", "topic": topic, "partition": "0"}
    deadline = time.monotonic() + 60
    while not (problems := await watch.check()):
        assert time.monotonic() < deadline, "no stall reported within 60 s"
        await asyncio.sleep(0.5)
    (problem,) = problems
    assert re.fullmatch(rf"idle-{topic} stalled on {topic}/0 at offset 0 for \d+s", problem)
    assert (registry.get_sample_value("peer_support_consumer_lag_messages", labels) or 0) >= 1
    assert (registry.get_sample_value("peer_support_consumer_lag_seconds", labels) or 0) > 0


async def test_a_topic_the_broker_lost_makes_the_service_not_ready(servers: Servers) -> None:
    watch = LagWatch(
        servers.kafka_bootstrap_servers,
        [Subscription("lost", ("incidents-never-created",))],
        CollectorRegistry(),
    )
    assert await watch.check() == [
        "topic incidents-never-created is missing: was the broker restarted without its data?"
    ]
