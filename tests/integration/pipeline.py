"""The product's four services as the pipeline tests drive them: fed as hospital systems,
coordinators and supporters feed them, watched on every topic."""

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from services.matching.roster import RosterEntry, publications, roster_changes
from services.matching.store import Roster
from services.reporting.releaser import Releaser
from services.reporting.releases import Release
from services.reporting.settings import ReportingSettings
from services.reporting.store import CellStore
from shared.mongo import Document
from shared.settings import Topics
from tests.factories import KEYS
from tests.integration.rig import MailSink, Rig, Servers, until, until_true

CONSUMER_GROUPS = {
    "intake.incidents": "incidents_reported",
    "intake.staff": "staff",
    "intake.contact_keys": "contact_keys",
    "matching.cases": "cases",
    "matching.roster": "roster",
    "matching.responses": "responses",
    "matching.desk_assignments": "assignments",
    "matching.desk_notifications": "notifications",
    "notify.assignments": "assignments",
    "notify.contacts": "contacts",
    "notify.contact_keys": "case_counts",
    "notify.coordinator_alerts": "notifications",
    "reporting.case_events": "case_counts,step_counts",
}
"""Every consumer group of the pipeline and the topics (fields of `Topics`) it reads."""


@dataclass
class Pipeline(Rig):
    """The four services of the product, fed as hospital systems and supporters feed them."""

    reporting: httpx.AsyncClient = field(kw_only=True)
    supporter: httpx.AsyncClient = field(kw_only=True)
    """A supporter's browser: follows the links in their mail to notify."""
    desk: httpx.AsyncClient = field(kw_only=True)
    """The coordinator desk (matching's HTTP side), without a token of its own."""
    proxy: httpx.AsyncClient = field(kw_only=True)
    """The hospital's sign-in proxy in front of intake's request page."""
    mail: MailSink = field(kw_only=True)
    reporting_app: Any = field(kw_only=True)
    """Reporting itself, for a test that serves it over real HTTP (to a browser)."""
    reporting_settings: ReportingSettings = field(kw_only=True)
    matching_app: Any = field(kw_only=True)
    intake_app: Any = field(kw_only=True)
    roster: dict[str, RosterEntry] = field(default_factory=dict, kw_only=True)
    """Every supporter loaded so far, by supporter id: whom an offer's mail goes to."""

    @property
    def servers(self) -> Servers:
        return self.isolation.servers

    @property
    def bootstrap_servers(self) -> str:
        return self.servers.kafka_bootstrap_servers

    @property
    def database_prefix(self) -> str:
        return self.isolation.database_prefix

    @property
    def group_prefix(self) -> str:
        return self.isolation.group_prefix

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
        await until(condition, within, what)

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

    async def release(self, restarted: bool = False) -> list[Release]:
        """What reporting releases once every hospital's month counted so far is due: a
        `RELEASE_DELAY` passing by, given as the time rather than waited for; `restarted`,
        after reporting took in the cells it finds at its start."""
        settings = self.reporting_settings
        store = CellStore(
            self.mongo[f"{self.database_prefix}reporting"],
            timedelta(days=settings.counted_event_retention_days),
            settings.reporting_dimensions,
        )
        if restarted:
            await store.adopt_unreleased(datetime.now(UTC))
        log = structlog.get_logger("reporting")
        releaser = Releaser(
            store, settings.release_delay, settings.min_cell_size, log, CollectorRegistry()
        )
        return await releaser.release_due(datetime.now(UTC) + settings.release_delay * 2)

    async def counted(self, hospital_id: str, **dimensions: str) -> Counter[str]:
        """What reporting stored for a hospital, summed over its cells (departments...)."""
        total: Counter[str] = Counter()
        for cell in await self.cells():
            if cell["hospital_id"] == hospital_id and all(
                cell[d] == v for d, v in dimensions.items()
            ):
                total.update({m: n for m, n in cell.items() if isinstance(n, int)})
        return total

    async def operator(self, service: str, *arguments: str) -> list[str]:
        """A service's command as an operator runs it (`make token`, `make coordinator`...)
        against this pipeline's databases; its output's lines."""
        env = {
            **os.environ,
            "MONGODB_URL": self.servers.mongodb_url,
            "MONGODB_DATABASE_PREFIX": self.database_prefix,
        }
        command = [sys.executable, "-m", f"services.{service}.cli", *arguments]
        done = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip().splitlines()

    async def load_roster(self, entries: list[RosterEntry]) -> None:
        matching, notify = (
            self.mongo[self.database("matching")],
            self.mongo[self.database("notify")],
        )
        await load_roster(self.producer, self.topics, matching, entries, notify=notify)
        self.roster |= {entry.supporter_id: entry for entry in entries}

    def supporter_of(self, offer: dict[str, Any]) -> RosterEntry:
        return self.roster[offer["supporter_id"]]


async def load_roster(
    producer: AIOKafkaProducer,
    topics: Topics,
    matching: AsyncDatabase[Document],
    entries: list[RosterEntry],
    within: float = 30.0,
    notify: AsyncDatabase[Document] | None = None,
) -> None:
    """Publish the entries' changes as the coordinator's import does; return once matching
    has applied them all (and, where it runs, notify knows how to reach each supporter)."""
    roster = Roster(matching)
    changes = roster_changes(entries, await roster.profiles(), KEYS, datetime.now(UTC))
    for topic, event in publications(changes, topics):
        await producer.send_and_wait(
            topic, event.model_dump_json().encode(), key=event.correlation_id.encode()
        )
    deadline = time.monotonic() + within
    while roster_changes(entries, await roster.profiles(), KEYS, datetime.now(UTC)):
        if time.monotonic() > deadline:
            raise AssertionError(f"matching did not apply the roster within {within:.0f}s")
        await asyncio.sleep(0.1)
    if notify is None:
        return
    supporters, known = notify["supporters"], {"_id": {"$in": [e.supporter_id for e in entries]}}
    await until_true(
        lambda: supporters.count_documents(known),
        lambda count: count == len(entries),
        what="notify heard of every supporter",
        within=within,
    )
