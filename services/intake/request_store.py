"""Requests waiting for their asker to confirm them, in intake's database: kept hashed by
their link's token, until used once or expired (a TTL index removes them). The referrer of a
colleague is kept only as a pseudonym."""

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document


class PendingRequests:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["pending_requests"]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("expires_at", expireAfterSeconds=0)

    async def hold(
        self, token_hash: str, kind: str, form: dict[str, Any], expires_at: datetime
    ) -> None:
        await self.collection.insert_one(
            {"_id": token_hash, "kind": kind, "form": form, "expires_at": expires_at}
        )

    async def waiting(self, token_hash: str, now: datetime) -> str | None:
        """The kind of request the link confirms, while it is still waiting (not used, not
        expired): opening the link shows this much and changes nothing."""
        doc = await self.collection.find_one(
            {"_id": token_hash, "expires_at": {"$gt": now}}, {"kind": 1}
        )
        return str(doc["kind"]) if doc else None

    async def take(self, token_hash: str, now: datetime) -> tuple[str, dict[str, Any]] | None:
        """The request, once: a second use, an expired or a forged link finds nothing."""
        doc = await self.collection.find_one_and_delete(
            {"_id": token_hash, "expires_at": {"$gt": now}}
        )
        return (doc["kind"], doc["form"]) if doc else None
