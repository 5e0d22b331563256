"""Erasure in notify: `PURGE_AFTER` after a case ended, what notify holds of it goes (the
colleague's e-mail and phone and the key they were sealed to, the offers with the
supporter's details, the message records, the coordinator alerts). A case's end is heard on
the topics: support ended (by the supporter, by lapsing, by matching or a coordinator), or
the offer cancelled because the incident was withdrawn. The end stays recorded, so an event
arriving after the erasure (a redelivery) brings nothing back."""

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.erasure import erased_on
from shared.mongo import Document

BY_CASE_ID = ("case_contacts", "contact_keys", "contacted_cases")
"""Collections whose `_id` is the case's id; in the others it is their `case_id`."""
ERASED = (*BY_CASE_ID, "offers", "messages", "coordinator_alerts", "used_links")
"""notify's collections that hold a case's identifiable data, its contact's key, or the
assignments and times of its links; an erased case's link finds no offer, used or not."""


class Erasure:
    def __init__(self, database: AsyncDatabase[Document], purge_after: timedelta, log: Any) -> None:
        self.database = database
        self.ends = database["case_ends"]
        self.purge_after = purge_after
        self.log = log

    async def ensure_indexes(self) -> None:
        await self.ends.create_index([("purged_at", 1), ("ended_at", 1)])

    async def case_ended(self, case_id: str, at: datetime) -> None:
        """The first end heard counts."""
        await self.ends.update_one(
            {"_id": case_id},
            {"$min": {"ended_at": at}, "$setOnInsert": {"purged_at": None}},
            upsert=True,
        )

    async def case_reopened(self, case_id: str) -> None:
        """A coordinator reopened it: nothing is erased until it ends again."""
        await self.ends.update_one(
            {"_id": case_id, "purged_at": None}, {"$unset": {"ended_at": ""}}
        )

    async def erased(self, case_id: str) -> bool:
        return bool(await self.erased_among([case_id]))

    async def erased_among(self, case_ids: Collection[str]) -> set[str]:
        """Those of the cases erased already: a batch's, in one read."""
        cursor = self.ends.find(
            {"_id": {"$in": list(case_ids)}, "purged_at": {"$ne": None}}, {"_id": 1}
        )
        return {doc["_id"] async for doc in cursor}

    async def purge_due(self, now: datetime | None = None) -> int:
        """Erase every case that ended `purge_after` ago or longer; returns how many."""
        now = now or datetime.now(UTC)
        cutoff = now - self.purge_after
        erased = 0
        async for end in self.ends.find({"purged_at": None, "ended_at": {"$lte": cutoff}}):
            case_id = end["_id"]
            for name in ERASED:
                key = "_id" if name in BY_CASE_ID else "case_id"
                await self.database[name].delete_many({key: case_id})
            await self.ends.update_one(
                {"_id": case_id},
                {"$set": {"purged_at": erased_on(now)}, "$unset": {"ended_at": ""}},
            )
            erased += 1
        if erased:
            self.log.info("cases erased", cases=erased, purge_after=str(self.purge_after))
        return erased
