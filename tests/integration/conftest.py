"""Real servers for the wiring tests, and the four services running against them in process.

Servers come, in this order, from `KAFKA_BOOTSTRAP_SERVERS` / `MONGODB_URL`, from
testcontainers when a Docker engine answers, or from the project's local servers. Each test
session uses topics and databases of its own, so a shared server is never polluted.
"""

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from deploy.localservers import LocalServers, free_port
from services.intake.app import create_app as intake_app
from services.intake.settings import IntakeSettings
from services.matching.app import create_app as matching_app
from services.matching.roster import RosterEntry, roster_changes
from services.matching.settings import MatchingSettings
from services.matching.store import Roster
from services.notify.app import create_app as notify_app
from services.notify.settings import NotifySettings
from services.reporting.access import NETWORK
from services.reporting.app import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from services.reporting.store import ApiTokens
from shared.kafka import ensure_topics
from shared.mongo import Document
from shared.settings import Topics, dead_letter_topic
from tests.factories import LINK_SECRET, PSEUDONYM_KEY

pytestmark = pytest.mark.integration

CONSUMER_GROUPS = {
    "intake.incidents": "incidents_reported",
    "intake.staff": "staff",
    "matching.cases": "cases",
    "matching.roster": "roster",
    "matching.responses": "responses",
    "notify.assignments": "assignments",
    "notify.contacts": "contacts",
    "reporting.case_events": "cases,assignments,responses,notifications",
}
"""Every consumer group of the pipeline and the topics (fields of `Topics`) it reads."""


@dataclass(frozen=True)
class Servers:
    kafka_bootstrap_servers: str
    mongodb_url: str
    local: LocalServers | None = None
    """Set when the tests started the servers themselves (and so may pause them)."""


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def _containers() -> Iterator[Servers]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.kafka import KafkaContainer

    # A one-node replica set: transactions need one, as in docker-compose.yml.
    mongo = DockerContainer("mongo:8.0").with_command("--replSet rs0 --bind_ip_all")
    with KafkaContainer().with_kraft() as kafka, mongo.with_exposed_ports(27017) as mongo:
        wait_for_logs(mongo, "Waiting for connections")
        address = f"{mongo.get_container_host_ip()}:{mongo.get_exposed_port(27017)}"
        url = f"mongodb://{address}/?directConnection=true"
        asyncio.run(_initiate_replica_set(url))
        yield Servers(kafka.get_bootstrap_server(), url)


async def _initiate_replica_set(url: str) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(url)
    try:
        config = {"_id": "rs0", "members": [{"_id": 0, "host": "localhost:27017"}]}
        await client.admin.command("replSetInitiate", config)
        while not (await client.admin.command("hello")).get("isWritablePrimary"):  # noqa: ASYNC110 - polling the server
            await asyncio.sleep(0.5)
    finally:
        await client.close()


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("MONGODB_URL"):
        yield Servers(os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["MONGODB_URL"])
    elif _docker_answers():
        with _containers() as containers:
            yield containers
    else:
        local = LocalServers(
            Path(tmp_path_factory.mktemp("servers")),
            free_port(),
            free_port(),
            smtp_port=None,
            tied=True,
        )
        local.start()
        try:
            yield Servers(local.kafka_bootstrap_servers, local.mongodb_url, local)
        finally:
            local.stop()


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
    """Every record on the pipeline's topics and their dead-letter topics, as it arrives."""

    records: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)

    def on(self, topic: str, key: str | None = None) -> list[ConsumerRecord[bytes, bytes]]:
        return [
            r
            for r in self.records
            if r.topic == topic and (key is None or (r.key or b"").decode() == key)
        ]

    def events(self, topic: str, key: str | None = None) -> list[dict[str, Any]]:
        return [json.loads(r.value or b"") for r in self.on(topic, key)]

    def next_offset(self, partition: TopicPartition) -> int:
        """One past the last offset seen on the partition (0 when none was)."""
        offsets = [
            r.offset
            for r in self.records
            if r.topic == partition.topic and r.partition == partition.partition
        ]
        return max(offsets, default=-1) + 1


@dataclass
class Pipeline:
    servers: Servers
    bootstrap_servers: str
    topics: Topics
    mongo: AsyncMongoClient[Document]
    database_prefix: str
    group_prefix: str
    reporting: httpx.AsyncClient
    supporter: httpx.AsyncClient
    """A supporter's browser: follows the links in their mail to notify."""
    mail: MailSink
    log: EventLog
    producer: AIOKafkaProducer
    reporting_app: Any
    """Reporting itself, for a test that serves it over real HTTP (to a browser)."""

    async def report(self, incident: dict[str, Any], partition: int | None = None) -> int:
        """Publish an incident as a hospital system does; returns the partition it went to."""
        key = f"{incident['hospital_id']}:{incident['incident_id']}".encode()
        return await self.send_raw(json.dumps(incident).encode(), key, partition)

    async def send_raw(
        self, value: bytes, key: bytes, partition: int | None = None, topic: str | None = None
    ) -> int:
        sent = await self.producer.send_and_wait(
            topic or self.topics.incidents_reported, value, key=key, partition=partition
        )
        return int(sent.partition)

    async def until(
        self, condition: Callable[[], object], within: float = 60.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {within:.0f}s: {what or condition}")
            await asyncio.sleep(0.1)

    async def idle(self, within: float = 60.0, quiet: float = 1.0) -> None:
        """Wait until every consumer group has committed every message on its topics, and
        nothing new has appeared for `quiet` seconds.

        Handlers publish what they cause before committing what caused it, so once the
        groups have committed all there is and the event log stays still, nothing is in
        flight. The event log's own offsets count too: the local broker (Tansu 0.6) reports
        an end offset one past the first record of the last batch, not past its last record.
        """
        deadline = time.monotonic() + within
        quiet_since: float | None = None
        seen = -1
        while True:
            consumed = await self._all_consumed()
            now = time.monotonic()
            if consumed and len(self.log.records) == seen:
                quiet_since = quiet_since or now
                if now - quiet_since >= quiet:
                    return
            else:
                quiet_since = None
            seen = len(self.log.records)
            if now > deadline:
                raise AssertionError(f"the pipeline did not become idle within {within:.0f}s")
            await asyncio.sleep(0.2)

    async def _all_consumed(self) -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers)
        await admin.start()
        await consumer.start()
        try:
            for group, fields in CONSUMER_GROUPS.items():
                topics = [getattr(self.topics, f) for f in fields.split(",")]
                partitions = [
                    TopicPartition(t, p)
                    for t in topics
                    for p in consumer.partitions_for_topic(t) or ()
                ]
                ends = await consumer.end_offsets(partitions)
                committed = await admin.list_consumer_group_offsets(
                    self.group_prefix + group, partitions=partitions
                )
                for tp, end in ends.items():
                    needed = max(end, self.log.next_offset(tp))
                    done = committed.get(tp)
                    if needed > 0 and (done is None or done.offset < needed):
                        return False
            return True
        finally:
            await consumer.stop()
            await admin.close()

    async def cells(self) -> list[Document]:
        cursor = self.mongo[f"{self.database_prefix}reporting"]["cells"].find()
        return [doc async for doc in cursor]

    async def counted(self, hospital_id: str, **dimensions: str) -> Counter[str]:
        """What reporting stored for a hospital, summed over its cells (departments...)."""
        total: Counter[str] = Counter()
        for cell in await self.cells():
            if cell["hospital_id"] == hospital_id and all(
                cell[d] == v for d, v in dimensions.items()
            ):
                total.update({m: n for m, n in cell.items() if isinstance(n, int)})
        return total

    async def load_roster(self, entries: list[RosterEntry]) -> None:
        await load_roster(
            self.producer, self.topics, self.mongo[f"{self.database_prefix}matching"], entries
        )

    async def send(self, topic: str, event: dict[str, Any], key: str) -> None:
        await self.producer.send_and_wait(topic, json.dumps(event).encode(), key=key.encode())


async def load_roster(
    producer: AIOKafkaProducer,
    topics: Topics,
    matching: AsyncDatabase[Document],
    entries: list[RosterEntry],
    within: float = 30.0,
) -> None:
    """Publish the entries' changes as the coordinator's import does; return once matching
    has applied them all."""
    roster = Roster(matching)
    for change in roster_changes(
        entries, await roster.profiles(), PSEUDONYM_KEY, datetime.now(UTC)
    ):
        await producer.send_and_wait(
            topics.roster, change.model_dump_json().encode(), key=change.correlation_id.encode()
        )
    deadline = time.monotonic() + within
    while roster_changes(entries, await roster.profiles(), PSEUDONYM_KEY, datetime.now(UTC)):
        if time.monotonic() > deadline:
            raise AssertionError(f"matching did not apply the roster within {within:.0f}s")
        await asyncio.sleep(0.1)


async def _follow(consumer: AIOKafkaConsumer, log: EventLog) -> None:
    async for record in consumer:
        log.records.append(record)


@pytest.fixture(scope="session")
async def pipeline(servers: Servers) -> AsyncIterator[Pipeline]:
    run = uuid.uuid4().hex[:8]
    topics = Topics.model_validate(
        {name: f"test-{run}.{default}" for name, default in Topics().model_dump().items()}
    )
    await ensure_topics(servers.kafka_bootstrap_servers, topics.all())
    mail = MailSink()
    mail.controller.start()
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": servers.kafka_bootstrap_servers,
        "mongodb_url": servers.mongodb_url,
        "mongodb_database_prefix": f"test_{run}_",
        "kafka_group_prefix": f"test-{run}.",
        "topics": topics,
        "retry_backoff_max_seconds": 2.0,
    }
    apps: list[Any] = [
        intake_app(IntakeSettings(**common, pseudonym_key=PSEUDONYM_KEY.decode())),
        matching_app(MatchingSettings(**common)),
        notify := notify_app(
            NotifySettings(
                **common,
                smtp_port=mail.controller.port,
                link_secret=LINK_SECRET,
                public_url="http://notify",
            )
        ),
    ]
    reporting = reporting_app(
        ReportingSettings(**common, min_cell_size=5, batch_max_records=50, snapshot_seconds=0)
    )
    log = EventLog()
    follower = AIOKafkaConsumer(
        *topics.all(),
        *(dead_letter_topic(t) for t in topics.all()),
        bootstrap_servers=servers.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        metadata_max_age_ms=1000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap_servers, acks="all")
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(servers.mongodb_url, tz_aware=True)
    async with contextlib.AsyncExitStack() as stack:
        for app in [*apps, reporting]:
            await stack.enter_async_context(
                LifespanManager(app, startup_timeout=60, shutdown_timeout=60)
            )
        await follower.start()
        stack.push_async_callback(follower.stop)
        following = asyncio.create_task(_follow(follower, log))
        await producer.start()
        stack.push_async_callback(producer.stop)
        stack.push_async_callback(mongo.close)
        token = await ApiTokens(mongo[f"test_{run}_reporting"]).issue(
            NETWORK, "tests", datetime.now(UTC)
        )
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=reporting),
                base_url="http://reporting",
                headers={"Authorization": f"Bearer {token}"},
            )
        )
        supporter = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=notify), base_url="http://notify")
        )
        yield Pipeline(
            servers,
            servers.kafka_bootstrap_servers,
            topics,
            mongo,
            f"test_{run}_",
            f"test-{run}.",
            client,
            supporter,
            mail,
            log,
            producer,
            reporting,
        )
        following.cancel()
    mail.controller.stop()
