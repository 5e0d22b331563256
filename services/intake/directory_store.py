"""intake's copy of each hospital's staff directory, loaded whole per hospital: someone not in
a new load is kept as inactive (a leaver), so no confirmation reaches their old address."""

from collections.abc import Collection, Sequence
from datetime import datetime

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from services.intake.directory import StaffMember
from shared.mongo import Document


class StaffDirectory:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["staff_directory"]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("hospital_id")

    async def load(self, members: Sequence[StaffMember], now: datetime) -> tuple[int, int]:
        """Everyone listed as the file says; the hospitals' others made inactive. Returns how
        many are listed and how many were made inactive."""
        writes = [
            UpdateOne(
                {"_id": member.staff},
                {"$set": {**member.model_dump(mode="json"), "loaded_at": now}},
                upsert=True,
            )
            for member in members
        ]
        await self.collection.bulk_write(writes)
        hospitals = sorted({member.hospital_id for member in members})
        left = await self.collection.update_many(
            {"hospital_id": {"$in": hospitals}, "loaded_at": {"$ne": now}, "active": True},
            {"$set": {"active": False, "loaded_at": now}},
        )
        return len(writes), left.modified_count

    async def provision(
        self, member: StaffMember, now: datetime, session: AsyncClientSession
    ) -> None:
        """One person as the identity system says now (SCIM), leaving the others as they are."""
        await self.collection.update_one(
            {"_id": member.staff},
            {"$set": {**member.model_dump(mode="json"), "loaded_at": now}},
            upsert=True,
            session=session,
        )

    async def deprovision(
        self, hospital_id: str, staff_id: str, now: datetime, session: AsyncClientSession
    ) -> None:
        """A leaver stays listed as inactive, as a load that no longer lists them leaves them."""
        await self.collection.update_one(
            {"_id": f"{hospital_id}/{staff_id}"},
            {"$set": {"active": False, "loaded_at": now}},
            session=session,
        )

    async def find(
        self,
        hospital_id: str,
        staff_ids: Collection[str],
        session: AsyncClientSession | None = None,
    ) -> dict[str, StaffMember]:
        """The active ones of these staff, by staff id."""
        ids = [f"{hospital_id}/{staff_id}" for staff_id in staff_ids]
        found = self.collection.find({"_id": {"$in": ids}, "active": True}, session=session)
        return {
            member.staff_id: member
            async for doc in found
            if (member := StaffMember.model_validate(_fields(doc)))
        }


def _fields(doc: Document) -> Document:
    return {k: v for k, v in doc.items() if k not in ("_id", "loaded_at")}
