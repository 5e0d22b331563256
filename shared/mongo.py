"""MongoDB at the edge of every service: the client, transactions and the outbox.

A handler that changes state and announces it must do both or neither. It writes its state
and the events it owes into this service's `outbox` collection in one transaction (a
`UnitOfWork`), then publishes them and deletes them. Whatever is left in the outbox (the
publish failed, the broker paused, the process died in between) is published by the outbox's
relay within seconds, with the same event ids, so consumers recognise a repeat.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Gauge
from pymongo import AsyncMongoClient, WriteConcern
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from shared.errors import describe
from shared.events import AboutCase, Envelope, StaffEvent, SupportCaseCounted
from shared.metrics import NAMESPACE
from shared.settings import ServiceSettings, Topics
from shared.timing import woken_or_after
from shared.tracing import current_context, within

Document = dict[str, Any]
T = TypeVar("T")
Announcements = list[tuple[str, Envelope | StaffEvent]]
"""(topic, event) pairs a step owes the world: internal events, or (from intake's request
page) staff events as a staff system would publish them."""
Work = Callable[[AsyncClientSession, datetime], Awaitable[Announcements]]

log = structlog.get_logger(__name__)


def create_client(settings: ServiceSettings) -> AsyncMongoClient[Document]:
    """Every operation is bounded in time (a stuck server or a lock left by a killed
    transaction never stalls a handler or a clock for good) and every write is journaled."""
    return AsyncMongoClient(
        settings.mongodb_url,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        timeoutMS=int(settings.mongodb_timeout_seconds * 1000),
        w="majority",
        journal=True,
    )


async def is_reachable(client: AsyncMongoClient[Document]) -> bool:
    try:
        await client.admin.command("ping")
    except Exception:
        return False
    return True


async def in_transaction(
    client: AsyncMongoClient[Document],
    work: Callable[[AsyncClientSession], Awaitable[T]],
) -> T:
    """Run `work` in a transaction, retried whole on a transient conflict."""
    async with client.start_session() as session:
        return await session.with_transaction(work, write_concern=WriteConcern("majority", j=True))


def outbox_entries(announcements: Announcements, now: datetime, first: int = 0) -> list[Document]:
    """The outbox's documents for (topic, event) pairs, in the order they were announced
    (numbered from `first`), each with the trace context of the work that announced it."""
    trace = current_context()
    return [
        {
            "_id": str(event.event_id),
            "topic": topic,
            "key": event.correlation_id,
            "event_type": event.event_type,
            "payload": event.model_dump(mode="json"),
            "created_at": now,
            "sequence": i,
            "trace": trace,
        }
        for i, (topic, event) in enumerate(announcements, first)
    ]


def with_counts(announcements: Announcements, topics: Topics) -> Announcements:
    """Each event followed by what reporting counts of it, if anything, on reporting's own
    topics: committed and published with it, or neither."""
    counted: Announcements = []
    for topic, event in announcements:
        counted.append((topic, event))
        if isinstance(event, AboutCase) and (count := event.counted()):
            own = (
                topics.case_counts if isinstance(count, SupportCaseCounted) else topics.step_counts
            )
            counted.append((own, count))
    return counted


class Outbox:
    """Events committed with the state that caused them, until the broker has them.

    A key's events keep their order: once anything is left behind, every new entry waits for
    the relay, which publishes the whole outbox oldest first before flushes resume.
    """

    def __init__(
        self,
        database: AsyncDatabase[Document],
        broker: KafkaBroker,
        registry: CollectorRegistry | None = None,
        *,
        relay_after: float = 5.0,
        page: int = 500,
    ) -> None:
        self.collection = database["outbox"]
        self.broker = broker
        self.relay_after = timedelta(seconds=relay_after)
        """An entry this old was left behind by a process that died after its commit."""
        self.page = page
        self.behind = True
        """Entries may wait: at start (a previous run's), after a failed publish."""
        self.in_flight: set[str] = set()
        """Entries this process is publishing now, which the relay leaves to it."""
        self.wake = asyncio.Event()
        self._draining = asyncio.Lock()
        registry = registry or CollectorRegistry()
        self.backlog = Gauge(
            "outbox_backlog",
            "Events committed but not yet published",
            registry=registry,
            namespace=NAMESPACE,
        )
        self.oldest_age = Gauge(
            "outbox_oldest_age_seconds",
            "Age of the oldest event waiting in the outbox (0 when it is empty)",
            registry=registry,
            namespace=NAMESPACE,
        )

    async def put(self, session: AsyncClientSession, entries: Sequence[Document]) -> None:
        """Add `outbox_entries` within the caller's transaction, dated now, just before the
        commit: a batch's long transaction does not make its entries look left behind."""
        if entries:
            put_at = datetime.now(UTC)
            await self.collection.insert_many(
                [entry | {"created_at": put_at} for entry in entries], session=session
            )

    async def flush(self, entries: Sequence[Document] | None = None) -> int:
        """Publish the entries just put, in the order put (all that is left: `drain`).

        A failure is not the caller's: its state is committed, so the entries wait for the
        relay. Returns how many were published now.
        """
        if entries is None:
            return await self.drain()
        if not entries:
            return 0
        if self.behind:
            self.wake.set()
            return 0
        publishing = {entry["_id"] for entry in entries}
        self.in_flight |= publishing
        try:
            await self._publish(entries)
        except Exception as error:
            self.behind = True
            self.wake.set()
            log.warning("outbox publish failed; the relay will publish", error=describe(error))
            return 0
        finally:
            self.in_flight -= publishing
        return len(entries)

    async def drain(self) -> int:
        """Publish everything waiting, oldest first, a page at a time."""
        async with self._draining:
            published = 0
            while page := [
                doc
                async for doc in self.collection.find({"_id": {"$nin": list(self.in_flight)}})
                .sort([("created_at", 1), ("sequence", 1)])
                .limit(self.page)
            ]:
                await self._publish(page)
                published += len(page)
            self.behind = False
            return published

    async def relay(self, every: float = 1.0) -> None:
        """Publish what waits whenever anything is left behind; runs for the process's life."""
        failures = 0
        while True:
            await woken_or_after(self.wake, every)
            try:
                oldest = await self._measure()
                if self.behind or (oldest and oldest > self.relay_after):
                    if published := await self.drain():
                        log.info("outbox relayed", events=published)
                    await self._measure()
                failures = 0
            except Exception as error:
                failures += 1
                pause = min(30.0, every * 2**failures)
                log.warning("outbox relay failed", error=describe(error), retry_in_seconds=pause)
                await asyncio.sleep(pause)

    async def _measure(self) -> timedelta | None:
        """The age of the oldest entry; updates the backlog gauges."""
        count = await self.collection.count_documents({})
        oldest = await self.collection.find_one({}, sort=[("created_at", 1)])
        age = datetime.now(UTC) - oldest["created_at"] if oldest else None
        self.backlog.set(count if oldest else 0)
        self.oldest_age.set(age.total_seconds() if age else 0)
        return age

    async def _publish(self, entries: Sequence[Document]) -> None:
        """All are handed to the producer at once, in order, and removed when the broker has
        acknowledged every one: a failure leaves them all to be published again."""
        acknowledgements = []
        for doc in entries:
            with within(doc.get("trace")):
                acknowledgements.append(
                    await self.broker.publish(
                        doc["payload"],
                        topic=doc["topic"],
                        key=doc["key"].encode(),
                        correlation_id=doc["key"],
                        headers={"event_type": doc["event_type"]},
                        no_confirm=True,
                    )
                )
        await asyncio.gather(*acknowledgements)
        await self.collection.delete_many({"_id": {"$in": [doc["_id"] for doc in entries]}})


@dataclass(frozen=True)
class Step:
    """One event's share of a transaction: its work, in the trace of the event that asked
    for it (a batch's steps come from as many traces as events)."""

    work: Work
    trace: dict[str, str] = field(default_factory=current_context)


class UnitOfWork:
    """One step of a handler, or a batch's steps: their state and the events they owe in one
    transaction, then published. The one way every service changes state and announces it,
    so none forgets to tell reporting (`with_counts`)."""

    def __init__(self, client: AsyncMongoClient[Document], outbox: Outbox, topics: Topics) -> None:
        self.client = client
        self.outbox = outbox
        self.topics = topics

    async def run(self, work: Work, *, holding: asyncio.Lock | None = None) -> list[Document]:
        """Returns the outbox entries the step wrote (empty when it owed nothing).

        `holding`: a lock held for the transaction (not for the publish after it)."""
        (published,) = await self.run_steps([Step(work)], holding=holding)
        return published

    async def run_steps(
        self, steps: Sequence[Step], *, holding: asyncio.Lock | None = None
    ) -> list[list[Document]]:
        """Every step in one transaction, in order (group commit): one commit, one write
        to the outbox and one publish for the lot. Returns each step's outbox entries.

        A step that fails fails them all: `Batches` then takes the events one at a time."""
        if not steps:
            return []

        async def transaction(session: AsyncClientSession) -> list[list[Document]]:
            now = datetime.now(UTC)
            written: list[list[Document]] = []
            for step in steps:
                with within(step.trace):
                    announced = with_counts(await step.work(session, now), self.topics)
                    written.append(outbox_entries(announced, now, sum(map(len, written))))
            await self.outbox.put(session, [doc for docs in written for doc in docs])
            return written

        async with holding or contextlib.nullcontext():
            published = await in_transaction(self.client, transaction)
        await self.outbox.flush([doc for docs in published for doc in docs])
        return published

    async def run_set(
        self,
        together: Callable[[AsyncClientSession, datetime], Awaitable[T]],
        each: Sequence[tuple[Callable[[T, datetime], Announcements], dict[str, str]]],
    ) -> list[list[Document]]:
        """A batch whose state is read or written set-wise: `together` once for the lot (one
        statement, not one per event), then each event's announcements made from what it
        returned, in that event's trace, all in one transaction. (announce, trace) pairs;
        returns each one's outbox entries."""
        if not each:
            return []
        held: list[T] = []

        async def first(session: AsyncClientSession, now: datetime) -> Announcements:
            held[:] = [await together(session, now)]  # afresh when the transaction is retried
            return []

        def announcing(announce: Callable[[T, datetime], Announcements]) -> Work:
            async def work(session: AsyncClientSession, now: datetime) -> Announcements:
                return announce(held[0], now)

            return work

        steps = [Step(first), *(Step(announcing(announce), trace) for announce, trace in each)]
        return (await self.run_steps(steps))[1:]


class GroupCommit:
    """Steps from concurrent callers committed together (group commit across handlers): a
    step that comes while a commit is under way goes into the next, which takes every step
    waiting by then. Nothing waits on a timer, so a step alone commits at once. A group that
    fails is taken again one step at a time: one step's failure is its own caller's."""

    def __init__(self, unit_of_work: UnitOfWork) -> None:
        self.unit_of_work = unit_of_work
        self._waiting: list[tuple[Step, asyncio.Future[list[Document]]]] = []
        self._committing = asyncio.Lock()

    async def run(self, work: Work) -> list[Document]:
        """As `UnitOfWork.run`: the outbox entries the step wrote."""
        done: asyncio.Future[list[Document]] = asyncio.get_running_loop().create_future()
        self._waiting.append((Step(work), done))
        async with self._committing:
            if not done.done():
                group, self._waiting = self._waiting, []
                if len(group) == 1:  # its own alone: committed as `UnitOfWork.run` would
                    await self._commit(group)
                else:  # shielded: a caller cancelled meanwhile does not strand the others
                    await asyncio.shield(asyncio.ensure_future(self._commit(group)))
        return await done

    async def _commit(self, group: list[tuple[Step, asyncio.Future[list[Document]]]]) -> None:
        try:
            published = await self.unit_of_work.run_steps([step for step, _ in group])
        except Exception as error:
            if len(group) == 1:
                group[0][1].set_exception(error)
                return
            for step, done in group:
                try:
                    (entries,) = await self.unit_of_work.run_steps([step])
                except Exception as own:
                    done.set_exception(own)
                else:
                    done.set_result(entries)
            return
        for (_, done), entries in zip(group, published, strict=True):
            done.set_result(entries)
