"""How often something may happen in a sliding window, counted in the store: every replica
of a service adds to the same count, so two replicas do not double an allowance.

Each use is a document with its time, removed by a TTL index once the window has passed it.
A use that is refused is not stored: a flood costs the store nothing once refused. Keys are
the caller's to make unreadable (HMAC or hash): the store learns no address."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document


@dataclass(frozen=True)
class Allowance:
    key: str
    allowed: int
    """Uses in any one window; past them the next is refused until the oldest leaves it."""


class Allowances:
    def __init__(self, database: AsyncDatabase[Document], name: str, window: timedelta) -> None:
        self.collection = database[name]
        self.window = window

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("expires_at", expireAfterSeconds=0)
        await self.collection.create_index([("key", 1), ("at", 1)])

    async def spend(self, allowances: Sequence[Allowance], now: datetime) -> Allowance | None:
        """One use of each allowance, if none is used up; else the first one that is, and
        nothing is counted."""
        for allowance in allowances:
            if await self.exhausted(allowance, now):
                return allowance
        expires_at = now + self.window
        await self.collection.insert_many(
            [{"key": a.key, "at": now, "expires_at": expires_at} for a in allowances]
        )
        return None

    async def exhausted(self, allowance: Allowance, now: datetime) -> bool:
        return await self.collection.count_documents(self._recent(allowance, now)) >= (
            allowance.allowed
        )

    async def retry_after(self, allowance: Allowance, now: datetime) -> int:
        """Seconds until the allowance has a use again (the oldest use in the window leaves)."""
        uses = (
            self.collection.find(self._recent(allowance, now), {"at": 1})
            .sort("at", -1)
            .limit(allowance.allowed)
        )
        times = [doc["at"] async for doc in uses]
        if len(times) < allowance.allowed:
            return 0
        return max(1, int((times[-1] + self.window - now).total_seconds()) + 1)

    def _recent(self, allowance: Allowance, now: datetime) -> Document:
        """The allowance's uses still in the window."""
        return {"key": allowance.key, "at": {"$gt": now - self.window}}
