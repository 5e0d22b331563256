"""How far each of a service's consumer groups is behind, and whether any partition is stuck.

Every `every` seconds the watch reads, per group and partition, the committed offset beside
the end offset (lag in messages) and the timestamp of the oldest message not yet handled (lag
in seconds). A partition whose committed offset has not moved for `stall_after` seconds while
messages wait is stalled; a subscribed topic the broker no longer has is missing (a broker
that lost its topics). Either makes the service report not ready, saying which.
"""

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry, Gauge

from shared.errors import describe
from shared.metrics import NAMESPACE

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Subscription:
    group: str
    topics: tuple[str, ...]


@dataclass
class _Progress:
    committed: int
    since: float


@dataclass
class LagWatch:
    bootstrap_servers: str
    subscriptions: Sequence[Subscription]
    registry: CollectorRegistry
    stall_after: float = 120.0
    options: Mapping[str, Any] = field(default_factory=dict)
    """How clients reach the broker (`client_options`)."""
    problems: list[str] = field(default_factory=list)
    """Why the service is not ready now; empty when all is well."""
    _progress: dict[tuple[str, TopicPartition], _Progress] = field(default_factory=dict)

    def __post_init__(self) -> None:
        labels = ["group", "topic", "partition"]
        self.messages = Gauge(
            "consumer_lag_messages",
            "Messages on a partition not yet handled by the consumer group",
            labels,
            registry=self.registry,
            namespace=NAMESPACE,
        )
        self.seconds = Gauge(
            "consumer_lag_seconds",
            "Age of the oldest message on a partition not yet handled (0 when none waits)",
            labels,
            registry=self.registry,
            namespace=NAMESPACE,
        )

    async def watch(self, every: float = 15.0) -> None:
        """Runs for the service's life."""
        while True:
            try:
                self.problems = await self.check()
            except Exception as error:
                self.problems = [f"consumer lag unknown: {describe(error)}"]
            if self.problems:
                log.warning("not ready", problems=self.problems)
            await asyncio.sleep(every)

    async def check(self) -> list[str]:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, request_timeout_ms=10000, **self.options
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, **self.options
        )
        try:
            await admin.start()
            await consumer.start()
            existing = set(await consumer.topics())
            problems = [
                f"topic {topic} is missing: was the broker restarted without its data?"
                for topic in sorted({t for s in self.subscriptions for t in s.topics} - existing)
            ]
            for subscription in self.subscriptions:
                problems += await self._check_group(admin, consumer, subscription, existing)
            return problems
        finally:
            await consumer.stop()
            await admin.close()

    async def _check_group(
        self,
        admin: AIOKafkaAdminClient,
        consumer: AIOKafkaConsumer,
        subscription: Subscription,
        existing: set[str],
    ) -> list[str]:
        partitions = [
            TopicPartition(topic, p)
            for topic in subscription.topics
            if topic in existing
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return []
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        offsets = await admin.list_consumer_group_offsets(subscription.group, partitions=partitions)
        committed = {
            tp: offsets[tp].offset if tp in offsets and offsets[tp].offset >= 0 else starts[tp]
            for tp in partitions
        }
        waiting = {tp: committed[tp] for tp in partitions if ends[tp] > committed[tp]}
        oldest = await _timestamps(consumer, waiting)
        now, problems = time.monotonic(), []
        for tp in partitions:
            labels = (subscription.group, tp.topic, str(tp.partition))
            self.messages.labels(*labels).set(max(0, ends[tp] - committed[tp]))
            age = max(0.0, time.time() - oldest[tp] / 1000) if tp in oldest else 0.0
            self.seconds.labels(*labels).set(age)
            progress = self._progress.get((subscription.group, tp))
            if progress is None or progress.committed != committed[tp] or tp not in waiting:
                self._progress[(subscription.group, tp)] = _Progress(committed[tp], now)
            elif now - progress.since > self.stall_after:
                problems.append(
                    f"{subscription.group} stalled on {tp.topic}/{tp.partition} at offset "
                    f"{committed[tp]} for {now - progress.since:.0f}s"
                )
        return problems


async def _timestamps(
    consumer: AIOKafkaConsumer, positions: dict[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """The timestamp (ms) of the record at each position, where it can be read quickly."""
    if not positions:
        return {}
    consumer.assign(list(positions))
    for tp, offset in positions.items():
        consumer.seek(tp, offset)
    found: dict[TopicPartition, int] = {}
    for _ in range(3):
        batches = await consumer.getmany(timeout_ms=1000)
        for tp, records in batches.items():
            if records and tp not in found:
                found[tp] = records[0].timestamp
                consumer.pause(tp)
        if len(found) == len(positions):
            break
    return found


def subscriptions_of(broker: object) -> list[Subscription]:
    """The consumer groups and topics a FastStream broker's subscribers use."""
    return [
        Subscription(subscriber.group_id, tuple(subscriber.topic_names))
        for subscriber in getattr(broker, "subscribers", ())
        if getattr(subscriber, "group_id", None)
    ]
