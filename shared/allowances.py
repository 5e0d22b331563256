"""How often something may happen in a window, counted in the store: every replica of a
service adds to the same count, so two replicas do not double an allowance.

Windows are fixed (an hour from the top of the hour, for a one-hour window): a key's count
is one document per window, removed by a TTL index once the window has passed. Keys are
the caller's to make unreadable (intake keys them by HMAC): the store learns no address."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document


@dataclass(frozen=True)
class Allowance:
    key: str
    allowed: int
    """Uses in one window; the next is refused until the window has passed."""


class Allowances:
    def __init__(self, database: AsyncDatabase[Document], name: str, window: timedelta) -> None:
        self.collection = database[name]
        self.window = window

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("expires_at", expireAfterSeconds=0)

    async def spend(self, allowances: Sequence[Allowance], now: datetime) -> Allowance | None:
        """Counts one use against each allowance; the first one it used up, if any. A use that
        is refused still counts: whoever keeps trying stays refused."""
        seconds = self.window.total_seconds()
        window = int(now.timestamp() // seconds)
        ends = datetime.fromtimestamp((window + 1) * seconds, UTC)
        exceeded = None
        for allowance in allowances:
            counted = await self.collection.find_one_and_update(
                {"_id": f"{allowance.key}|{window}"},
                {"$inc": {"used": 1}, "$setOnInsert": {"expires_at": ends}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            assert counted is not None, "upserted"
            if counted["used"] > allowance.allowed and exceeded is None:
                exceeded = allowance
        return exceeded
