"""Notify's own data: how to reach each colleague, and each notification's progress.

A notification is `pending` until claimed, `sending` while one worker holds it (for at most
the lease), and `sent` once the supporter was contacted. The claim is what keeps two workers,
or a contact and an assignment arriving together, from sending the same message twice.

`claimable_from` says when a notification may be claimed: at once when pending, when its lease
runs out while sending, never (null) once sent. One date, so that a claim is a lookup by id
and a single comparison, which every document store answers from the id index.
"""

from datetime import UTC, datetime, timedelta

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from shared.errors import RetryLater
from shared.events import CaseContactRecorded, PeerAssigned
from shared.mongo import Document

AT_ONCE = datetime(1970, 1, 1, tzinfo=UTC)


class CaseContacts:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["case_contacts"]

    async def record(self, contact: CaseContactRecorded) -> None:
        await self.collection.update_one(
            {"_id": str(contact.case_id)},
            {"$setOnInsert": {"contact": contact.model_dump(mode="json")}},
            upsert=True,
        )

    async def of_case(self, case_id: str) -> CaseContactRecorded | None:
        doc = await self.collection.find_one({"_id": case_id})
        return CaseContactRecorded.model_validate(doc["contact"]) if doc else None


class Notifications:
    def __init__(self, database: AsyncDatabase[Document], lease: timedelta) -> None:
        self.collection = database["notifications"]
        self.lease = lease

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("case_id", 1), ("state", 1)])

    async def expect(self, assignment: PeerAssigned) -> None:
        await self.collection.update_one(
            {"_id": str(assignment.assignment_id)},
            {
                "$setOnInsert": {
                    "case_id": str(assignment.case_id),
                    "state": "pending",
                    "claimable_from": AT_ONCE,
                    "assignment": assignment.model_dump(mode="json"),
                    "open": True,
                    "answer": None,
                }
            },
            upsert=True,
        )

    async def pending_for_case(self, case_id: str) -> list[str]:
        cursor = self.collection.find({"case_id": case_id, "state": "pending"}, {"_id": 1})
        return [doc["_id"] async for doc in cursor]

    async def claim(self, assignment_id: str, now: datetime) -> PeerAssigned | None:
        """The assignment to send, or None when it is sent already (or unknown)."""
        doc = await self.collection.find_one_and_update(
            {"_id": assignment_id, "claimable_from": {"$lte": now}},
            {"$set": {"state": "sending", "claimed_at": now, "claimable_from": now + self.lease}},
            return_document=ReturnDocument.AFTER,
        )
        if doc:
            return PeerAssigned.model_validate(doc["assignment"])
        current = await self.collection.find_one({"_id": assignment_id}, {"state": 1})
        if current and current["state"] == "sending":
            raise RetryLater(f"notification {assignment_id} is being sent by another worker")
        return None

    async def release(self, assignment_id: str) -> None:
        await self.collection.update_one(
            {"_id": assignment_id, "state": "sending"},
            {"$set": {"state": "pending", "claimable_from": AT_ONCE}},
        )

    async def complete(
        self, session: AsyncClientSession, assignment_id: str, channel: str, at: datetime
    ) -> None:
        await self.collection.update_one(
            {"_id": assignment_id},
            {"$set": {"state": "sent", "sent_at": at, "channel": channel, "claimable_from": None}},
            session=session,
        )

    async def offer(self, assignment_id: str) -> Document | None:
        """The offer as notify knows it: the assignment, whether it is open, the answer."""
        return await self.collection.find_one({"_id": assignment_id})

    async def answer(
        self, session: AsyncClientSession, assignment_id: str, answer: str, at: datetime
    ) -> bool:
        """Record the supporter's answer if the offer is still open; returns whether it was."""
        result = await self.collection.update_one(
            {"_id": assignment_id, "open": True},
            {"$set": {"open": False, "answer": answer, "answered_at": at}},
            session=session,
        )
        return result.modified_count == 1

    async def withdraw(self, assignment_id: str) -> None:
        """Matching cancelled the offer: it can no longer be answered, nor sent if unsent."""
        await self.collection.update_one(
            {"_id": assignment_id, "open": True},
            {"$set": {"open": False}},
        )
        await self.collection.update_one(
            {"_id": assignment_id, "state": "pending"},
            {"$set": {"state": "cancelled", "claimable_from": None}},
        )
