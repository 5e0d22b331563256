"""Reporting's database: aggregate cells and the ids of events already counted.

The cells hold counts only. The ledger holds event ids (random or derived UUIDs that name
nobody) for as long as an event could be delivered again, so a redelivery counts once; it
expires after `ledger_retention`, which must exceed the topics' retention.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

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
