"""One rig for every integration test: topics, consumer groups and databases of its own, the
services under test running in this process, a producer to feed them and a log of what they
publish. Each test module asks for the services and topics it needs."""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager
from pymongo import AsyncMongoClient

from deploy.localservers import LocalServers, free_port
from shared.events import Envelope
from shared.kafka import ensure_topics
from shared.mongo import Document
from shared.settings import Topics, dead_letter_topic


@dataclass(frozen=True)
class Servers:
    kafka_bootstrap_servers: str
    mongodb_url: str
    local: LocalServers | None = None
    """Set when the tests started the servers themselves (and so may pause them)."""


async def until(condition: Callable[[], object], within: float = 60.0, what: str = "") -> None:
    """Wait for a condition, never for a fixed time; fail saying what did not happen."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:.0f}s: {what or condition}")
        await asyncio.sleep(0.1)


T = TypeVar("T")


async def until_true(
    read: Callable[[], Awaitable[T]], holds: Callable[[T], object], what: str, within: float = 60.0
) -> T:
    """Wait until what `read` finds (a page, a store) `holds`, and return it; fail saying
    what did not."""
    deadline = time.monotonic() + within
    while not holds(found := await read()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:.0f}s: {what}")
        await asyncio.sleep(0.2)
    return found


class MailSink:
    """An SMTP server in this process that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


@dataclass
class EventLog:
    """Every record on the followed topics, as it arrives."""

    records: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)

    def on(self, topic: str, key: str | None = None) -> list[ConsumerRecord[bytes, bytes]]:
        return [
            r
            for r in self.records
            if r.topic == topic and (key is None or (r.key or b"").decode() == key)
        ]

    def events(self, topic: str, key: str | None = None) -> list[dict[str, Any]]:
        return [json.loads(r.value or b"") for r in self.on(topic, key)]

    def at(self, topic: str, hospital_id: str) -> list[ConsumerRecord[bytes, bytes]]:
        """A hospital's records on a topic. After intake no event names the incident it came
        from (records are keyed by their case), so a test gives its incident a hospital of
        its own and follows that."""
        return [r for r in self.on(topic) if _hospital_of(r) == hospital_id]

    def events_at(self, topic: str, hospital_id: str) -> list[dict[str, Any]]:
        return [json.loads(r.value or b"") for r in self.at(topic, hospital_id)]

    def next_offset(self, partition: TopicPartition) -> int:
        """One past the last offset seen on the partition (0 when none was)."""
        offsets = [
            r.offset
            for r in self.records
            if r.topic == partition.topic and r.partition == partition.partition
        ]
        return max(offsets, default=-1) + 1


@dataclass(frozen=True)
class Isolation:
    """Names of a rig's own: its topics, consumer groups and databases."""

    servers: Servers
    label: str
    run: str
    topics: Topics

    @property
    def database_prefix(self) -> str:
        return f"{self.label}_{self.run}_"

    @property
    def group_prefix(self) -> str:
        return f"{self.label}-{self.run}."

    def settings(self) -> dict[str, Any]:
        """What every service under test is configured with, as settings fields."""
        return {**self._connections(), "topics": self.topics}

    def environment(self) -> dict[str, str]:
        """The same, as the environment of a service run as its own process."""
        return {
            **{name.upper(): value for name, value in self._connections().items()},
            **{f"TOPIC_{name.upper()}": t for name, t in self.topics.model_dump().items()},
        }

    def _connections(self) -> dict[str, str]:
        return {
            "kafka_bootstrap_servers": self.servers.kafka_bootstrap_servers,
            "mongodb_url": self.servers.mongodb_url,
            "mongodb_database_prefix": self.database_prefix,
            "kafka_group_prefix": self.group_prefix,
        }


async def isolated(servers: Servers, label: str) -> Isolation:
    run = uuid.uuid4().hex[:8]
    topics = Topics.model_validate(
        {name: f"{label}-{run}.{default}" for name, default in Topics().model_dump().items()}
    )
    await ensure_topics(servers.kafka_bootstrap_servers, topics.all(), ingress=topics.ingress())
    return Isolation(servers, label, run, topics)


@dataclass
class Rig:
    isolation: Isolation
    producer: AIOKafkaProducer
    mongo: AsyncMongoClient[Document]
    log: EventLog

    @property
    def topics(self) -> Topics:
        return self.isolation.topics

    def database(self, service: str) -> str:
        return f"{self.isolation.database_prefix}{service}"

    async def publish(self, topic: str, event: Envelope) -> None:
        """An event as the service that owns it publishes it: keyed by its incident."""
        key = event.correlation_id.encode()
        await self.producer.send_and_wait(topic, event.model_dump_json().encode(), key=key)

    async def send(self, topic: str, event: dict[str, Any], key: str) -> None:
        await self.producer.send_and_wait(topic, json.dumps(event).encode(), key=key.encode())


@contextlib.asynccontextmanager
async def running(
    isolation: Isolation, apps: Sequence[Any], follow: Sequence[str]
) -> AsyncIterator[Rig]:
    """The apps running (their lifespans), `follow`'s topics logged, a producer ready."""
    bootstrap = isolation.servers.kafka_bootstrap_servers
    log = EventLog()
    follower = AIOKafkaConsumer(
        *follow, bootstrap_servers=bootstrap, auto_offset_reset="earliest", metadata_max_age_ms=1000
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(
        isolation.servers.mongodb_url, tz_aware=True
    )
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(mongo.close)
        for app in apps:
            await stack.enter_async_context(
                LifespanManager(app, startup_timeout=60, shutdown_timeout=60)
            )
        await follower.start()
        stack.push_async_callback(follower.stop)
        following = asyncio.create_task(_follow(follower, log))
        stack.callback(following.cancel)
        await producer.start()
        stack.push_async_callback(producer.stop)
        yield Rig(isolation, producer, mongo, log)


async def retained(isolation: Isolation, *, keys: bool = False) -> dict[str, list[bytes]]:
    """What every topic of the rig (dead letters included) still holds, by topic: what
    anyone with topic access could read, or replay; with `keys`, the records' keys too."""
    names = [t for topic in isolation.topics.all() for t in (topic, dead_letter_topic(topic))]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=isolation.servers.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or ()
        ]
        ends = {tp: end for tp, end in (await consumer.end_offsets(partitions)).items() if end}
        held: dict[str, list[bytes]] = {name: [] for name in names}
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                held[tp.topic] += [r.value for r in records if r.value is not None]
                held[tp.topic] += [r.key for r in records if keys and r.key is not None]
        return held
    finally:
        await consumer.stop()


async def _follow(consumer: AIOKafkaConsumer, log: EventLog) -> None:
    async for record in consumer:
        log.records.append(record)


def _hospital_of(record: ConsumerRecord[bytes, bytes]) -> object:
    """The hospital a record names, if it is a JSON object that does: a dead letter need not
    be JSON, nor JSON that Python can decode (one hostile event nests thousands deep)."""
    try:
        value = json.loads(record.value or b"{}")
    except (ValueError, RecursionError):
        return None
    return value.get("hospital_id") if isinstance(value, dict) else None
