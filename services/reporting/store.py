"""Reporting's database: aggregate cells, what of them was released, and the ids of events
already counted.

The cells hold counts only, as counted; analysts are served `released_cells`, each hospital's
month as of its latest release or correction (`releases`). `release_units` keeps, per
hospital's month, the ids of the cases (random UUIDs) with events counted since, until the
next correction takes them. The ledger holds event ids (random or derived UUIDs that name
nobody) for as long as an event could be delivered again, so a redelivery counts once; it
expires after `ledger_retention`, which must exceed the topics' retention.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.reporting.aggregates import (
    MEASURES,
    Cell,
    Replay,
    Row,
    counted_as,
    tally,
    waiting_cases,
)
from services.reporting.releases import Release, ReleaseUnit
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
        self.units = database["release_units"]
        self.released_cells = database["released_cells"]
        self.releases = database["releases"]
        self.ledger_retention = ledger_retention
        self.dimensions = tuple(dimensions)
        """What the cells are split by besides the month; changing it needs a rebuild."""

    async def ensure_indexes(self) -> None:
        await self.cells.create_index("month")
        await self.released_cells.create_index("month")
        await self.released_cells.create_index("unit")
        await self.ledger.create_index(
            "counted_at", expireAfterSeconds=int(self.ledger_retention.total_seconds())
        )
        await self.adopt_unreleased(datetime.now(UTC))

    async def adopt_unreleased(self, now: datetime) -> None:
        """Cells counted before releases existed (an upgrade) are released like a month
        counted now: `RELEASE_DELAY` from now."""
        months = await self.cells.aggregate(
            [{"$group": {"_id": {"month": "$month", "hospital_id": "$hospital_id"}}}]
        )
        await self._note_waiting(
            {(doc["_id"]["month"], doc["_id"]["hospital_id"]): set() async for doc in months},
            now,
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
        ids = {counted_as(e): e for e in events}
        counted = {
            doc["_id"]
            async for doc in self.ledger.find(
                {"_id": {"$in": list(ids)}}, {"_id": 1}, session=session
            )
        }
        fresh = {event_id: e for event_id, e in ids.items() if event_id not in counted}
        if not fresh:
            return 0
        if cells := tally(fresh.values(), self.dimensions):
            await self.cells.bulk_write(
                [
                    UpdateOne(
                        {"_id": cell.key},
                        {"$setOnInsert": self._cell_fields(cell), "$inc": dict(counts)},
                        upsert=True,
                    )
                    for cell, counts in cells.items()
                ],
                ordered=False,
                session=session,
            )
        now = datetime.now(UTC)
        await self._note_waiting(waiting_cases(fresh.values()), now, session)
        await self.ledger.insert_many(
            [{"_id": event_id, "counted_at": now} for event_id in fresh], session=session
        )
        return len(fresh)

    async def _note_waiting(
        self,
        waiting: dict[tuple[str, str], set[str]],
        now: datetime,
        session: AsyncClientSession | None = None,
    ) -> None:
        if not waiting:
            return
        await self.units.bulk_write(
            [
                UpdateOne(
                    {"_id": f"{month}|{hospital}"},
                    {
                        "$setOnInsert": _unit_fields(month, hospital, now),
                        "$addToSet": {"waiting": {"$each": sorted(cases)}},
                    },
                    upsert=True,
                )
                for (month, hospital), cases in waiting.items()
            ],
            ordered=False,
            session=session,
        )

    async def fill(self, replay: Replay, now: datetime) -> None:
        """Write what a rebuild holds, outside any transaction (a rebuild stopped part way is
        begun again into an empty database). A cell or hospital's month new to the store is
        inserted, which costs a fraction of an upsert, and only added to after."""
        if replay.cells:
            await self.cells.bulk_write(
                [
                    UpdateOne({"_id": cell.key}, {"$inc": dict(counts)})
                    if cell.key in replay.written_cells
                    else InsertOne({"_id": cell.key, **self._cell_fields(cell), **counts})
                    for cell, counts in replay.cells.items()
                ],
                ordered=False,
            )
        if replay.waiting:
            await self.units.bulk_write(
                [
                    UpdateOne(
                        {"_id": f"{month}|{hospital}"},
                        {"$addToSet": {"waiting": {"$each": sorted(cases)}}},
                    )
                    if (month, hospital) in replay.written_units
                    else InsertOne(
                        {
                            "_id": f"{month}|{hospital}",
                            **_unit_fields(month, hospital, now),
                            "waiting": sorted(cases),
                        }
                    )
                    for (month, hospital), cases in replay.waiting.items()
                ],
                ordered=False,
            )
        if replay.unwritten:
            await self.ledger.insert_many(
                [{"_id": event_id, "counted_at": now} for event_id in replay.unwritten],
                ordered=False,
            )
        replay.written()

    def _cell_fields(self, cell: Cell) -> Document:
        return {"month": cell.month, **dict(zip(self.dimensions, cell.values, strict=True))}

    async def rows(
        self, first_month: str | None = None, last_month: str | None = None
    ) -> list[Row]:
        """Every hospital's cells as counted, from the first to the last month."""
        return await self._rows(self.cells, first_month, last_month)

    async def released_rows(
        self, first_month: str | None = None, last_month: str | None = None
    ) -> list[Row]:
        """Every hospital's cells as last released, from the first to the last month."""
        return await self._rows(self.released_cells, first_month, last_month)

    async def _rows(
        self, cells: AsyncCollection[Document], first_month: str | None, last_month: str | None
    ) -> list[Row]:
        return [
            Row(
                month=doc["month"],
                dimensions={d: doc.get(d, UNRECORDED) for d in self.dimensions},
                counts={m: int(doc[m]) for m in MEASURES if m in doc},
            )
            async for doc in cells.find(_months(first_month, last_month))
        ]

    async def last_month(self, hospital_id: str | None = None) -> str | None:
        """The latest month released, of one hospital or of all."""
        query = {"hospital_id": hospital_id} if hospital_id else {}
        found = self.released_cells.find(query, {"month": 1}).sort("month", -1).limit(1)
        async for doc in found:
            return str(doc["month"])
        return None

    async def release_candidates(self, min_cases: int) -> list[ReleaseUnit]:
        """The hospitals' months not yet released, or with at least `min_cases` cases waiting
        for a correction."""
        query = {"$or": [{"version": None}, {f"waiting.{min_cases - 1}": {"$exists": True}}]}
        return [_unit(doc) async for doc in self.units.find(query)]

    async def latest_releases(
        self, first_month: str | None = None, last_month: str | None = None
    ) -> list[Release]:
        """What analysts are shown of each hospital's month, by month and hospital."""
        query = {**_months(first_month, last_month), "version": {"$ne": None}}
        found = self.units.find(query).sort([("month", 1), ("hospital_id", 1)])
        return [_release(doc) async for doc in found]

    async def publish(self, unit: ReleaseUnit, version: int, now: datetime) -> Release | None:
        """Release a hospital's month as counted now, in one transaction with taking the
        cases that waited; None if another reporting published it first."""

        async def publish(session: AsyncClientSession) -> Release | None:
            doc = await self.units.find_one({"_id": unit.key}, session=session)
            if doc is None or doc.get("version") != unit.version:
                return None
            waiting = list(doc.get("waiting", []))
            of_unit = {"month": unit.month, "hospital_id": unit.hospital_id}
            cells = [cell async for cell in self.cells.find(of_unit, session=session)]
            await self.released_cells.delete_many({"unit": unit.key}, session=session)
            if cells:
                released = [{**cell, "unit": unit.key} for cell in cells]
                await self.released_cells.insert_many(released, session=session)
            release = Release(unit.month, unit.hospital_id, version, now, len(waiting))
            fields = {"version": version, "released_at": now, "cases": len(waiting)}
            await self.releases.insert_one(
                {"_id": f"{unit.key}|{version}", **of_unit, **fields}, session=session
            )
            taken = {"$set": fields, "$pullAll": {"waiting": waiting}}
            await self.units.update_one({"_id": unit.key}, taken, session=session)
            return release

        return await in_transaction(self.cells.database.client, publish)


def _months(first_month: str | None, last_month: str | None) -> Document:
    months: Document = {}
    if first_month:
        months["$gte"] = first_month
    if last_month:
        months["$lte"] = last_month
    return {"month": months} if months else {}


def _unit_fields(month: str, hospital: str, now: datetime) -> Document:
    return {"month": month, "hospital_id": hospital, "first_counted_at": now, "version": None}


def _unit(doc: Document) -> ReleaseUnit:
    return ReleaseUnit(
        month=doc["month"],
        hospital_id=doc["hospital_id"],
        first_counted_at=_utc(doc["first_counted_at"]),
        version=doc.get("version"),
        waiting_cases=len(doc.get("waiting", [])),
    )


def _release(doc: Document) -> Release:
    return Release(
        doc["month"], doc["hospital_id"], doc["version"], _utc(doc["released_at"]), doc["cases"]
    )


def _utc(moment: datetime) -> datetime:
    """MongoDB hands back naive UTC datetimes."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
