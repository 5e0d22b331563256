"""Coordinators' alerts waiting to be mailed, in notify's database.

An alert is mailed at most once: it is claimed (`sending`) before its mail goes out and
settled after. One left `sending` by a crash is never sent again; the desk's worklist still
holds the case. A sent alert keeps no contact details: they are read at sending time."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from services.notify.coordinator_mail import UNDELIVERED, Alert
from shared.mongo import Document

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"


class Alerts:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["coordinator_alerts"]
        self.digests = database["coordinator_digests"]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("state", 1), ("urgent", 1), ("hospital_id", 1)])

    async def add(self, alert: Alert) -> None:
        """Once per event, however often it is delivered."""
        fields = {k: v for k, v in asdict(alert).items() if k != "alert_id"}
        await self.collection.update_one(
            {"_id": alert.alert_id},
            {"$setOnInsert": {**fields, "state": PENDING}},
            upsert=True,
        )

    async def got_through(self, messages: Sequence[tuple[str, str, datetime]]) -> None:
        """Later messages of the same (assignment id, step) reached the supporter (the
        fallback channel): the failures before each need nobody. A batch's in one write."""
        if messages:
            await self.collection.delete_many(
                {
                    "kind": UNDELIVERED,
                    "state": PENDING,
                    "$or": [
                        {"assignment_id": assignment_id, "step": step, "at": {"$lte": at}}
                        for assignment_id, step, at in messages
                    ],
                }
            )

    async def pending(self, *, urgent: bool) -> dict[str, list[Alert]]:
        """Pending alerts by hospital, the oldest first."""
        by_hospital: dict[str, list[Alert]] = defaultdict(list)
        query = {"state": PENDING, "urgent": urgent}
        async for doc in self.collection.find(query).sort("at", 1):
            by_hospital[doc["hospital_id"]].append(_alert(doc))
        return dict(by_hospital)

    async def claim(self, alerts: list[Alert]) -> list[Alert]:
        """Those still pending, now `sending`: another instance's claim wins."""
        claimed = []
        for alert in alerts:
            result = await self.collection.update_one(
                {"_id": alert.alert_id, "state": PENDING}, {"$set": {"state": SENDING}}
            )
            if result.modified_count:
                claimed.append(alert)
        return claimed

    async def settle(self, alerts: list[Alert], state: str) -> None:
        ids = [a.alert_id for a in alerts]
        await self.collection.update_many({"_id": {"$in": ids}}, {"$set": {"state": state}})

    async def last_digest(self, hospital_id: str) -> datetime | None:
        doc = await self.digests.find_one({"_id": hospital_id})
        return doc["at"] if doc else None

    async def digested(self, hospital_id: str, at: datetime) -> None:
        await self.digests.update_one({"_id": hospital_id}, {"$set": {"at": at}}, upsert=True)


def _alert(doc: Document) -> Alert:
    fields = {k: v for k, v in doc.items() if k not in ("_id", "state")}
    return Alert(alert_id=doc["_id"], **fields)
