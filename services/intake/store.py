"""Intake's own record of the cases it opened: pseudonyms only, never names or contacts."""

from collections.abc import Sequence

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from services.intake.cases import OpenedCase
from shared.mongo import Document


class CaseLedger:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["cases"]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("hospital_id", 1), ("incident_id", 1)])

    async def record_new(
        self, session: AsyncClientSession, cases: Sequence[OpenedCase]
    ) -> list[OpenedCase]:
        """Record the cases not seen before, within the caller's transaction; return them."""
        ids = [str(c.case_id) for c in cases]
        seen = {
            doc["_id"]
            async for doc in self.collection.find(
                {"_id": {"$in": ids}}, {"_id": 1}, session=session
            )
        }
        new = [c for c in cases if str(c.case_id) not in seen]
        if new:
            await self.collection.insert_many(
                [
                    {
                        "_id": str(c.case_id),
                        "hospital_id": c.case_opened.hospital_id,
                        "incident_id": c.case_opened.incident_id,
                        "pseudonym": c.pseudonym,
                        "opened_at": c.case_opened.occurred_at,
                    }
                    for c in new
                ],
                session=session,
            )
        return new
