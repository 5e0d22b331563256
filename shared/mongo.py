"""MongoDB at the edge of every service: the client, transactions and the outbox.

A handler that changes state and announces it must do both or neither. It writes its state
and the events it owes into this service's `outbox` collection in one transaction, then
publishes them and deletes them. A crash in between leaves them in the outbox; they go out at
the next start (with the same event ids, so consumers recognise a repeat).
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from shared.events import Envelope
from shared.settings import ServiceSettings

Document = dict[str, Any]
T = TypeVar("T")


def create_client(settings: ServiceSettings) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(settings.mongodb_url, tz_aware=True, serverSelectionTimeoutMS=5000)


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
        return await session.with_transaction(work)


class Outbox:
    def __init__(self, database: AsyncDatabase[Document], broker: KafkaBroker) -> None:
        self.collection = database["outbox"]
        self.broker = broker

    async def put(
        self, session: AsyncClientSession, entries: Sequence[tuple[str, Envelope]]
    ) -> list[Document]:
        """Add (topic, event) pairs within the caller's transaction; returns the entries."""
        if not entries:
            return []
        now = datetime.now(UTC)
        docs: list[Document] = [
            {
                "_id": str(event.event_id),
                "topic": topic,
                "key": event.correlation_id,
                "event_type": event.event_type,
                "payload": event.model_dump(mode="json"),
                "created_at": now,
                "sequence": i,
            }
            for i, (topic, event) in enumerate(entries)
        ]
        await self.collection.insert_many(docs, session=session)
        return docs

    async def flush(self, entries: Sequence[Document] | None = None) -> int:
        """Publish the entries just put (or, at startup, all left behind) in the order put.

        All are handed to the producer at once, in order, and removed when the broker has
        acknowledged every one: a failure leaves them all to be published again.
        """
        pending = (
            entries
            if entries is not None
            else [
                doc
                async for doc in self.collection.find().sort([("created_at", 1), ("sequence", 1)])
            ]
        )
        if not pending:
            return 0
        acknowledgements = [
            await self.broker.publish(
                doc["payload"],
                topic=doc["topic"],
                key=doc["key"].encode(),
                correlation_id=doc["key"],
                headers={"event_type": doc["event_type"]},
                no_confirm=True,
            )
            for doc in pending
        ]
        await asyncio.gather(*acknowledgements)
        await self.collection.delete_many({"_id": {"$in": [doc["_id"] for doc in pending]}})
        return len(pending)
