"""The coordinator desk's own data in matching's database: each case's timeline and notes
(learnt from the topics, so a redelivery writes nothing new), large incidents' debriefings
and the append-only audit log of coordinators' actions."""

from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from services.matching.desk import (
    CaseNotes,
    Debrief,
    Notice,
    Remark,
    TimelineEntry,
    timeline_entry,
)
from shared.events import (
    AboutCase,
    CaseEscalated,
    Envelope,
    GroupDebriefSuggested,
    NotificationFailed,
    PeerNotified,
    SafetyConcernRaised,
    SupportContactLogged,
    incident_key,
)
from shared.mongo import Document


class Timelines:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["timeline"]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("case_id", 1), ("at", 1)])

    async def note(self, entries: Sequence[tuple[AboutCase, TimelineEntry]]) -> None:
        """Once per event, whichever topic or delivery brought it; a batch's in one write."""
        if entries:
            await self.collection.bulk_write(
                [
                    UpdateOne(
                        {"_id": str(event.event_id)},
                        {
                            "$setOnInsert": {
                                "case_id": str(event.case_id),
                                "at": entry.at,
                                "kind": entry.kind,
                                "detail": entry.model_dump(mode="json")["detail"],
                            }
                        },
                        upsert=True,
                    )
                    for event, entry in entries
                ],
                ordered=False,
            )

    async def of_case(self, case_id: str) -> list[TimelineEntry]:
        cursor = self.collection.find({"case_id": case_id}, {"_id": 0, "case_id": 0})
        return [TimelineEntry.model_validate(doc) async for doc in cursor.sort("at", 1)]


class Notes:
    """Per case: why nobody fitted, when it was escalated, a message that did not get
    through, the first contact."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["desk_notes"]

    async def escalated(self, case_id: str, rejections: dict[str, int], at: datetime) -> None:
        await self.collection.update_one(
            {"_id": case_id},
            {"$set": {"rejections": rejections, "escalated_at": at}},
            upsert=True,
        )

    async def notice(self, case_id: str, notice: Notice) -> None:
        await self.collection.update_one(
            {"_id": case_id}, {"$set": {"notice": notice.__dict__}}, upsert=True
        )

    async def delivered(self, case_id: str, assignment_id: str, at: datetime) -> None:
        """A later message of the assignment got through: the notice is dealt with."""
        await self.collection.update_one(
            {"_id": case_id, "notice.assignment_id": assignment_id, "notice.at": {"$lte": at}},
            {"$unset": {"notice": ""}},
        )

    async def first_contact(self, case_id: str, at: datetime) -> None:
        await self.collection.update_one(
            {"_id": case_id}, {"$min": {"first_contact_at": at}}, upsert=True
        )

    async def concern(self, case_id: str, at: datetime, raised_by: str) -> None:
        """Until a coordinator settles it; a second concern meanwhile keeps the first's time."""
        await self.collection.update_one(
            {"_id": case_id},
            {"$min": {"concern_at": at}, "$set": {"concern_by": raised_by}},
            upsert=True,
        )

    async def concern_settled(self, session: AsyncClientSession, case_id: str) -> bool:
        """Whether there was a concern to settle."""
        result = await self.collection.update_one(
            {"_id": case_id, "concern_at": {"$exists": True}},
            {"$unset": {"concern_at": "", "concern_by": ""}},
            session=session,
        )
        return bool(result.modified_count)

    async def claim(
        self, session: AsyncClientSession, case_id: str, owner: str, at: datetime
    ) -> str | None:
        """The case's items are `owner`'s now; returns whose they were. Read, then written:
        SecantusDB (the local server) scans the whole collection for a find-and-modify."""
        before = await self.collection.find_one({"_id": case_id}, {"owner": 1}, session=session)
        await self.collection.update_one(
            {"_id": case_id},
            {"$set": {"owner": owner, "owned_at": at}},
            upsert=True,
            session=session,
        )
        return before.get("owner") if before else None

    async def remark(self, session: AsyncClientSession, case_id: str, remark: Remark) -> None:
        await self.collection.update_one(
            {"_id": case_id},
            {"$push": {"remarks": remark.model_dump()}},
            upsert=True,
            session=session,
        )

    async def with_notice(self, case_ids: Collection[str]) -> set[str]:
        """Those of the cases with a message that did not get through on their notes."""
        if not case_ids:
            return set()
        cursor = self.collection.find(
            {"_id": {"$in": list(case_ids)}, "notice": {"$exists": True}}, {"_id": 1}
        )
        return {doc["_id"] async for doc in cursor}

    async def of_cases(self, case_ids: Iterable[str]) -> dict[str, CaseNotes]:
        cursor = self.collection.find({"_id": {"$in": list(case_ids)}})
        return {doc["_id"]: _notes(doc) async for doc in cursor}


def _notes(doc: Document) -> CaseNotes:
    notice = doc.get("notice")
    return CaseNotes(
        rejections=doc.get("rejections", {}),
        escalated_at=doc.get("escalated_at"),
        notice=Notice(**notice) if notice else None,
        first_contact_at=doc.get("first_contact_at"),
        concern_at=doc.get("concern_at"),
        concern_by=doc.get("concern_by"),
        owner=doc.get("owner"),
        remarks=tuple(Remark.model_validate(r) for r in doc.get("remarks", [])),
    )


class Debriefs:
    """Keyed by hospital and incident: two hospitals' incident systems may well number an
    incident alike."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["debriefs"]

    async def ensure_indexes(self) -> None:
        """Debriefings suggested before they were keyed by hospital too get the new key."""
        async for doc in self.collection.find({"incident_id": {"$exists": False}}):
            key = incident_key(doc["hospital_id"], doc["_id"])
            await self.collection.update_one(
                {"_id": key},
                {"$setOnInsert": {**doc, "_id": key, "incident_id": doc["_id"]}},
                upsert=True,
            )
            await self.collection.delete_one({"_id": doc["_id"]})

    async def suggested(self, debrief: Debrief) -> None:
        key = incident_key(debrief.hospital_id, debrief.incident_id)
        await self.collection.update_one(
            {"_id": key}, {"$setOnInsert": _stored(debrief.__dict__)}, upsert=True
        )

    async def get(
        self, hospital_id: str, incident_id: str, session: AsyncClientSession | None = None
    ) -> Debrief | None:
        doc = await self.collection.find_one(
            {"_id": incident_key(hospital_id, incident_id)}, session=session
        )
        return _debrief(doc) if doc else None

    async def record(
        self, session: AsyncClientSession, hospital_id: str, incident_id: str, **facts: Any
    ) -> None:
        await self.collection.update_one(
            {"_id": incident_key(hospital_id, incident_id)},
            {"$set": _stored(facts)},
            session=session,
        )

    async def of_hospital(self, hospital_id: str | None) -> list[Debrief]:
        query = {"hospital_id": hospital_id} if hospital_id else {}
        return [_debrief(doc) async for doc in self.collection.find(query)]


def _stored(fields: dict[str, Any]) -> dict[str, Any]:
    """Days as ISO dates: BSON has no date without a time."""
    return {
        k: v.isoformat() if isinstance(v, date) and not isinstance(v, datetime) else v
        for k, v in fields.items()
    }


def _debrief(doc: Document) -> Debrief:
    days = {
        k: date.fromisoformat(doc[k]) if doc.get(k) else None for k in ("planned_on", "held_on")
    }
    return Debrief(
        incident_id=doc["incident_id"],
        hospital_id=doc["hospital_id"],
        professionals_involved=doc["professionals_involved"],
        suggested_at=doc["suggested_at"],
        urgent=doc.get("urgent", False),
        participants=doc.get("participants"),
        facilitator_id=doc.get("facilitator_id"),
        decided_not_to=doc.get("decided_not_to", False),
        incident_ref=doc.get("incident_ref"),
        **days,
    )


class AuditLine(BaseModel):
    """Who did what, when, about which case, incident or supporter, and the reason given."""

    at: datetime
    who: str
    scope: str
    action: str
    hospital_id: str
    case_id: str | None
    incident_id: str | None
    supporter_id: str | None
    reason: str


class AuditLog:
    """Written in the transaction of the action it records, never changed; removed only
    `kept` after (`AUDIT_KEPT`), as its reasons are free text and may name someone."""

    def __init__(self, database: AsyncDatabase[Document], kept: timedelta) -> None:
        self.collection = database["audit"]
        self.kept = kept

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("hospital_id", 1), ("at", -1)])
        await self.collection.create_index("expires_at", expireAfterSeconds=0)

    async def add(self, session: AsyncClientSession, line: AuditLine) -> None:
        doc = {**line.model_dump(), "expires_at": line.at + self.kept}
        await self.collection.insert_one(doc, session=session)

    async def listing(self, hospital_id: str | None, limit: int) -> list[AuditLine]:
        query = {"hospital_id": hospital_id} if hospital_id else {}
        shown = {"_id": 0, "expires_at": 0}
        cursor = self.collection.find(query, shown).sort("at", -1).limit(limit)
        return [AuditLine.model_validate(doc) async for doc in cursor]


class DeskRecords:
    """What the desk keeps of every event it hears about a case or a large incident."""

    def __init__(self, database: AsyncDatabase[Document], audit_kept: timedelta) -> None:
        self.timelines = Timelines(database)
        self.notes = Notes(database)
        self.debriefs = Debriefs(database)
        self.audit = AuditLog(database, audit_kept)

    async def ensure_indexes(self) -> None:
        await self.timelines.ensure_indexes()
        await self.audit.ensure_indexes()
        await self.debriefs.ensure_indexes()

    async def erase(self, case_ids: list[str]) -> None:
        """A case's timeline and notes go with what identified its colleague; its lines in
        the audit log keep what a coordinator did and why, no longer about which case or
        supporter."""
        await self.timelines.collection.delete_many({"case_id": {"$in": case_ids}})
        await self.notes.collection.delete_many({"_id": {"$in": case_ids}})
        await self.audit.collection.update_many(
            {"case_id": {"$in": case_ids}},
            {"$set": {"case_id": None, "supporter_id": None, "incident_id": None}},
        )

    async def heard(self, events: Sequence[Envelope]) -> None:
        """Events in the order they came (a batch, or one). A message that got through
        clears a notice only where there is one: the batch's cases with a notice are found
        in one read, rather than a write for every message sent."""
        sent = {str(event.case_id) for event in events if isinstance(event, PeerNotified)}
        noticed = await self.notes.with_notice(sent)
        for event in events:
            if isinstance(event, NotificationFailed):
                noticed.add(str(event.case_id))
            if not isinstance(event, PeerNotified) or str(event.case_id) in noticed:
                await self._noted(event)
        await self.timelines.note(
            [
                (event, entry)
                for event in events
                if isinstance(event, AboutCase) and (entry := timeline_entry(event))
            ]
        )

    async def _noted(self, event: Envelope) -> None:
        match event:
            case GroupDebriefSuggested():
                await self.debriefs.suggested(
                    Debrief(
                        incident_id=event.incident_id,
                        hospital_id=event.hospital_id,
                        professionals_involved=event.professionals_involved,
                        suggested_at=event.occurred_at,
                        incident_ref=event.incident_ref,
                    )
                )
            case CaseEscalated():
                await self.notes.escalated(str(event.case_id), event.rejections, event.occurred_at)
            case NotificationFailed():
                notice = Notice(
                    str(event.assignment_id),
                    event.step,
                    event.channel,
                    event.reason,
                    event.occurred_at,
                )
                await self.notes.notice(str(event.case_id), notice)
            case PeerNotified():
                await self.notes.delivered(
                    str(event.case_id), str(event.assignment_id), event.occurred_at
                )
            case SupportContactLogged():
                await self.notes.first_contact(str(event.case_id), event.occurred_at)
            case SafetyConcernRaised():
                await self.notes.concern(str(event.case_id), event.occurred_at, event.raised_by)
