"""Reporting's database: aggregate cells, the ids of events already counted, API tokens.

The cells hold counts only. The ledger holds event ids (random or derived UUIDs that name
nobody) for as long as an event could be delivered again, so a redelivery counts once; it
expires after `ledger_retention`, which must exceed the topics' retention.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from services.reporting.access import Grant, new_token, token_hash
from services.reporting.aggregates import MEASURES, Row, tally
from shared.events import CaseEvent
from shared.mongo import Document, in_transaction

UNRECORDED = "unrecorded"
"""The value of a dimension a cell was counted without: cells counted before a dimension was
added to `REPORTING_DIMENSIONS` show it so (their totals stay right); a rebuild splits them."""


class CellStore:
    def __init__(
        self,
        database: AsyncDatabase[Document],
        ledger_retention: timedelta,
        dimensions: Sequence[str],
    ) -> None:
        self.cells = database["cells"]
        self.ledger = database["counted_events"]
        self.ledger_retention = ledger_retention
        self.dimensions = tuple(dimensions)
        """What the cells are split by besides the month; changing it needs a rebuild."""

    async def ensure_indexes(self) -> None:
        await self.cells.create_index("month")
        await self.ledger.create_index(
            "counted_at", expireAfterSeconds=int(self.ledger_retention.total_seconds())
        )

    async def count_events(self, events: Sequence[CaseEvent]) -> int:
        """Count a batch in one transaction; returns how many events were new."""
        if not events:
            return 0

        async def count(session: AsyncClientSession) -> int:
            return await self.count(session, events)

        return await in_transaction(self.cells.database.client, count)

    async def count(self, session: AsyncClientSession, events: Sequence[CaseEvent]) -> int:
        """Add the events not counted before to their cells; returns how many were new."""
        ids = {str(e.event_id): e for e in events}
        counted = {
            doc["_id"]
            async for doc in self.ledger.find(
                {"_id": {"$in": list(ids)}}, {"_id": 1}, session=session
            )
        }
        fresh = [e for event_id, e in ids.items() if event_id not in counted]
        if not fresh:
            return 0
        if cells := tally(fresh, self.dimensions):
            await self.cells.bulk_write(
                [
                    UpdateOne(
                        {"_id": cell.key},
                        {
                            "$setOnInsert": {
                                "month": cell.month,
                                **dict(zip(self.dimensions, cell.values, strict=True)),
                            },
                            "$inc": dict(counts),
                        },
                        upsert=True,
                    )
                    for cell, counts in cells.items()
                ],
                ordered=False,
                session=session,
            )
        now = datetime.now(UTC)
        await self.ledger.insert_many(
            [{"_id": str(e.event_id), "counted_at": now} for e in fresh], session=session
        )
        return len(fresh)

    async def rows(
        self, first_month: str | None = None, last_month: str | None = None
    ) -> list[Row]:
        """Every hospital's cells from the first to the last month, both included."""
        months: Document = {}
        if first_month:
            months["$gte"] = first_month
        if last_month:
            months["$lte"] = last_month
        return [
            Row(
                month=doc["month"],
                dimensions={d: doc.get(d, UNRECORDED) for d in self.dimensions},
                counts={m: int(doc[m]) for m in MEASURES if m in doc},
            )
            async for doc in self.cells.find({"month": months} if months else {})
        ]

    async def last_month(self, hospital_id: str | None = None) -> str | None:
        """The latest month with anything counted, of one hospital or of all."""
        query = {"hospital_id": hospital_id} if hospital_id else {}
        async for doc in self.cells.find(query, {"month": 1}).sort("month", -1).limit(1):
            return str(doc["month"])
        return None


TOKEN_ID_LENGTH = 12


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    scope: str
    label: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class ApiTokens:
    """Hashes of issued tokens, their scopes and expiry; the tokens themselves are never
    stored. A token is named by the first characters of its hash in listings."""

    def __init__(
        self, database: AsyncDatabase[Document], valid_for: timedelta = timedelta(days=90)
    ) -> None:
        self.collection = database["api_tokens"]
        self.valid_for = valid_for

    async def issue(self, scope: str, label: str, at: datetime) -> str:
        token = new_token()
        await self.collection.insert_one(
            {
                "_id": token_hash(token),
                "scope": scope,
                "label": label,
                "issued_at": at,
                "expires_at": at + self.valid_for,
                "revoked_at": None,
            }
        )
        return token

    async def grant_for(self, token: str, now: datetime | None = None) -> Grant | None:
        return await self.grant_for_hash(token_hash(token), now)

    async def grant_for_hash(self, hashed: str, now: datetime | None = None) -> Grant | None:
        """The token's scope while it is neither expired nor revoked."""
        doc = await self.collection.find_one({"_id": hashed})
        if doc is None or doc.get("revoked_at") or _expiry(doc, self.valid_for) <= _now(now):
            return None
        return Grant(doc["scope"])

    async def listing(self) -> list[IssuedToken]:
        return [
            IssuedToken(
                token_id=doc["_id"][:TOKEN_ID_LENGTH],
                scope=doc["scope"],
                label=doc["label"],
                issued_at=doc["issued_at"],
                expires_at=_expiry(doc, self.valid_for),
                revoked_at=doc.get("revoked_at"),
            )
            async for doc in self.collection.find().sort("issued_at", 1)
        ]

    async def revoke(self, token_id: str, at: datetime) -> int:
        """Revoke the tokens whose id (from `listing`) is `token_id`; returns how many."""
        if len(token_id) < TOKEN_ID_LENGTH:
            return 0
        result = await self.collection.update_many(
            {"_id": {"$regex": f"^{re.escape(token_id)}"}, "revoked_at": None},
            {"$set": {"revoked_at": at}},
        )
        return result.modified_count


class Sessions:
    """Dashboard sessions: the browser's cookie holds a random session id (stored hashed),
    never the API token; a session ends when it expires or its token does."""

    def __init__(self, database: AsyncDatabase[Document], tokens: ApiTokens) -> None:
        self.collection = database["sessions"]
        self.tokens = tokens

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("expires_at", expireAfterSeconds=0)

    async def open(self, token: str, at: datetime, lasting: timedelta) -> str:
        session = new_token()
        await self.collection.insert_one(
            {"_id": token_hash(session), "token": token_hash(token), "expires_at": at + lasting}
        )
        return session

    async def grant_for(self, session: str, now: datetime | None = None) -> Grant | None:
        doc = await self.collection.find_one({"_id": token_hash(session)})
        if doc is None or _aware(doc["expires_at"]) <= _now(now):
            return None
        return await self.tokens.grant_for_hash(doc["token"], now)

    async def close(self, session: str) -> None:
        await self.collection.delete_one({"_id": token_hash(session)})


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _aware(at: datetime) -> datetime:
    """The store may hand back naive UTC times."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _expiry(doc: Document, valid_for: timedelta) -> datetime:
    """Tokens issued before expiry was kept expire `valid_for` after their issue."""
    return _aware(doc.get("expires_at") or doc["issued_at"] + valid_for)
