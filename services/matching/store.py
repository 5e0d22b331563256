"""Matching's own data: the roster with each supporter's open cases, and the decisions."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from services.matching.policy import Supporter
from services.matching.roster import RosterEntry
from shared.mongo import Document
from shared.pseudonyms import pseudonymise

_PROFILE_FIELDS = (
    "hospital_id",
    "display_name",
    "email",
    "phone",
    "language",
    "function",
    "department",
    "seniority_years",
    "birth_year",
    "max_open_cases",
    "active",
)


class Roster:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["supporters"]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("hospital_id", 1), ("active", 1)])

    async def load(self, entries: Sequence[RosterEntry], pseudonym_key: bytes) -> int:
        """Add or update supporters; their open cases and history are kept as they are.

        `free_capacity` (maximum less open cases) is kept beside the two, so that a
        reservation is a lookup by id and one comparison rather than an expression.
        """
        requests = [
            UpdateOne(
                {"_id": entry.supporter_id},
                [
                    {
                        "$set": {
                            **{f: {"$literal": getattr(entry, f)} for f in _PROFILE_FIELDS},
                            "pseudonym": pseudonymise(
                                pseudonym_key, entry.hospital_id, entry.staff_id
                            ),
                            "open_case_ids": {"$ifNull": ["$open_case_ids", []]},
                            "last_assigned_at": {"$ifNull": ["$last_assigned_at", None]},
                        }
                    },
                    {
                        "$set": {
                            "free_capacity": {
                                "$subtract": ["$max_open_cases", {"$size": "$open_case_ids"}]
                            }
                        }
                    },
                ],
                upsert=True,
            )
            for entry in entries
        ]
        result = await self.collection.bulk_write(requests, ordered=False)
        return result.upserted_count + result.modified_count

    async def available_in(
        self, hospital_id: str, session: AsyncClientSession | None = None
    ) -> list[Supporter]:
        cursor = self.collection.find({"hospital_id": hospital_id, "active": True}, session=session)
        return [_supporter(doc) async for doc in cursor]

    async def reserve(
        self, session: AsyncClientSession, supporter_id: str, case_id: str, at: datetime
    ) -> bool:
        """Take one unit of the supporter's capacity for this case, if any is left."""
        result = await self.collection.update_one(
            {"_id": supporter_id, "active": True, "free_capacity": {"$gt": 0}},
            {
                "$addToSet": {"open_case_ids": case_id},
                "$inc": {"free_capacity": -1},
                "$set": {"last_assigned_at": at},
            },
            session=session,
        )
        return result.modified_count == 1


class Decisions:
    """One decision per case: who was assigned, or that nobody fitted."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["decisions"]

    async def record(self, session: AsyncClientSession, case_id: str, **decision: Any) -> None:
        """Raises DuplicateKeyError when the case was decided before, undoing the transaction."""
        await self.collection.insert_one({"_id": case_id, **decision}, session=session)


def _supporter(doc: Document) -> Supporter:
    return Supporter(
        supporter_id=doc["_id"],
        pseudonym=doc["pseudonym"],
        open_cases=len(doc["open_case_ids"]),
        last_assigned_at=doc["last_assigned_at"],
        **{f: doc[f] for f in _PROFILE_FIELDS},
    )
