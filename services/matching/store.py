"""Matching's own data: the roster with each supporter's open cases, and the case book.

Every change that two matchers could race for is a conditional update on one document (a
supporter's free capacity, a case's status and attempt), inside the transaction that also
writes the events it causes. Two matchers can therefore never book the same capacity twice,
nor act twice on one case.
"""

import asyncio
import contextlib
import uuid
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from services.matching.policy import Case
from services.matching.supporters import Supporter
from shared.erasure import erased_on
from shared.events import (
    Absence,
    CaseProfile,
    Colleague,
    Exclusions,
    PeerAssigned,
    SupporterContact,
    SupporterProfile,
    SupportPreferences,
)
from shared.mongo import Document

QUIET_PAUSE_SECONDS = 0.2
"""How long the roster's change stream rests after a read that brought no change: what a
change made elsewhere may wait, at most, before matching holds it."""
CARRIED_KEPT = 50
"""Acceptances kept per supporter: more than any recent window holds in practice."""


class Roster:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["supporters"]
        self.meta = database["roster_meta"]
        self.written: weakref.WeakKeyDictionary[AsyncClientSession, set[str]]
        self.written = weakref.WeakKeyDictionary()
        """Whose capacity or history each transaction changed (see `written_by`)."""

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("hospital_id", 1), ("active", 1)])

    async def apply(self, profile: SupporterProfile) -> None:
        """Register or update a supporter; their open cases and history are kept.

        `free_capacity` (maximum less open cases) is kept beside the two, so that a
        reservation is a lookup by id and one comparison rather than an expression.
        """
        fields = profile.model_dump(mode="json", exclude={"supporter_id"})
        await self.collection.update_one(
            {"_id": profile.supporter_id},
            [
                {
                    "$set": {
                        **{name: {"$literal": value} for name, value in fields.items()},
                        "active": True,
                        "open_case_ids": {"$ifNull": ["$open_case_ids", []]},
                        "last_assigned_at": {"$ifNull": ["$last_assigned_at", None]},
                        "carried": {"$ifNull": ["$carried", []]},
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

    async def key_fingerprint(self) -> str | None:
        """The fingerprint of the pseudonym key the roster was loaded with, if any."""
        doc = await self.meta.find_one({"_id": "pseudonym_key"})
        return str(doc["fingerprint"]) if doc else None

    async def remember_key(self, fingerprint: str) -> None:
        await self.meta.update_one(
            {"_id": "pseudonym_key"}, {"$set": {"fingerprint": fingerprint}}, upsert=True
        )

    async def deactivate(self, supporter_id: str) -> None:
        await self.collection.update_one({"_id": supporter_id}, {"$set": {"active": False}})

    async def profiles(self) -> dict[str, tuple[SupporterProfile, bool]]:
        """Every supporter's profile and whether they are active, by supporter id."""
        return {doc["_id"]: (_profile(doc), doc["active"]) async for doc in self.collection.find()}

    async def profile(self, supporter_id: str) -> SupporterProfile | None:
        doc = await self.collection.find_one({"_id": supporter_id})
        return _profile(doc) if doc else None

    async def available_in(
        self, hospital_id: str, session: AsyncClientSession | None = None
    ) -> list[Supporter]:
        cursor = self.collection.find({"hospital_id": hospital_id, "active": True}, session=session)
        return [_supporter(doc) async for doc in cursor]

    async def of_hospital(self, hospital_id: str | None) -> list[Supporter]:
        """The whole roster of one hospital (or all), inactive supporters included."""
        query = {"hospital_id": hospital_id} if hospital_id else {}
        return [_supporter(doc) async for doc in self.collection.find(query).sort("_id", 1)]

    async def one(self, supporter_id: str, session: AsyncClientSession) -> Supporter | None:
        doc = await self.collection.find_one({"_id": supporter_id}, session=session)
        return _supporter(doc) if doc else None

    async def some(self, supporter_ids: Iterable[str]) -> list[Supporter]:
        cursor = self.collection.find({"_id": {"$in": list(supporter_ids)}})
        return [_supporter(doc) async for doc in cursor]

    @contextlib.asynccontextmanager
    async def changes(self) -> AsyncIterator[AsyncIterator[Supporter | None]]:
        """Every change to a supporter committed from now on, once open: the supporter as they
        are after it, or None for a change that leaves no supporter to show (a removal)."""
        stream = await self.collection.watch(full_document="updateLookup")

        async def each() -> AsyncIterator[Supporter | None]:
            nonlocal stream
            while True:
                try:
                    change = await stream.try_next()
                except PyMongoError as ended:
                    if not ended.timeout:
                        raise
                    change = None
                if change is not None:
                    doc = change.get("fullDocument")
                    yield _supporter(doc) if doc else None
                    continue
                if not stream.alive:
                    # The store's time limit ended a quiet stream's wait, or the server ended
                    # its cursor: the next stream goes on where this one ended.
                    if (token := stream.resume_token) is None:
                        raise OperationFailure("the change stream ended with nowhere to resume")
                    await stream.close()
                    stream = await self.collection.watch(
                        full_document="updateLookup", resume_after=token
                    )
                # Any write on the server ends a waiting read, the roster's or not: pause,
                # or the stream costs the store a read for every write it takes.
                await asyncio.sleep(QUIET_PAUSE_SECONDS)

        try:
            yield each()
        finally:
            await stream.close()

    def written_by(self, session: AsyncClientSession) -> set[str]:
        """The supporters whose capacity or history the session's transaction changed."""
        return self.written.pop(session, set())

    def _wrote(self, session: AsyncClientSession, supporter_id: str) -> None:
        self.written.setdefault(session, set()).add(supporter_id)

    async def reserve(
        self,
        session: AsyncClientSession,
        supporter_id: str,
        case_id: str,
        at: datetime,
        *,
        beyond_capacity: bool = False,
    ) -> bool:
        """Take one unit of the supporter's capacity for this case, if any is left (or even
        if not: a coordinator's choice, with a reason)."""
        free = {} if beyond_capacity else {"free_capacity": {"$gt": 0}}
        result = await self.collection.update_one(
            {"_id": supporter_id, "active": True, **free},
            {
                "$addToSet": {"open_case_ids": case_id},
                "$inc": {"free_capacity": -1},
                "$set": {"last_assigned_at": at},
            },
            session=session,
        )
        self._wrote(session, supporter_id)
        return result.modified_count == 1

    async def carried(self, session: AsyncClientSession, supporter_id: str, at: datetime) -> None:
        """The supporter took a case on: it weighs in their load for the recent window."""
        await self.collection.update_one(
            {"_id": supporter_id},
            {"$push": {"carried": {"$each": [at], "$slice": -CARRIED_KEPT}}},
            session=session,
        )
        self._wrote(session, supporter_id)

    async def release(self, session: AsyncClientSession, supporter_id: str, case_id: str) -> None:
        """Give back the capacity a case held; nothing when it was given back before."""
        await self.collection.update_one(
            {"_id": supporter_id, "open_case_ids": case_id},
            {"$pull": {"open_case_ids": case_id}, "$inc": {"free_capacity": 1}},
            session=session,
        )
        self._wrote(session, supporter_id)


class Status(StrEnum):
    NEW = "new"
    WAITING = "waiting"
    """Nobody fitted: matched again as soon as someone does, the most urgent first."""
    OFFERED = "offered"
    ACCEPTED = "accepted"
    ESCALATED = "escalated"
    """Declined or unanswered too often: the coordinator has it."""
    OPTED_OUT = "opted_out"
    CLOSED = "closed"
    ENDED = "ended"
    """Support was given and has ended (see the outcome): the supporter's capacity is back."""


HOLDING_CAPACITY = (Status.OFFERED, Status.ACCEPTED)
IN_PROGRESS = (Status.NEW, Status.WAITING, Status.OFFERED, Status.ACCEPTED, Status.ESCALATED)


@dataclass(frozen=True)
class CaseRecord:
    """A case and where it stands: waiting since when, offered to whom, until when."""

    case: Case
    status: Status
    attempt: int
    priority: int
    since: datetime
    caused_by: uuid.UUID
    escalated_while_waiting: bool = False
    supporter_id: str | None = None
    assignment_id: str | None = None
    offered_at: datetime | None = None
    respond_by: datetime | None = None
    accepted_at: datetime | None = None
    outcome: str | None = None
    ended_at: datetime | None = None
    reopened_at: datetime | None = None

    @property
    def case_id(self) -> str:
        return str(self.case.case_id)

    @property
    def holds_capacity(self) -> bool:
        return self.status in HOLDING_CAPACITY

    @property
    def holder(self) -> str:
        """The supporter whose capacity the case holds."""
        assert self.supporter_id is not None, f"case {self.case_id} is {self.status}"
        return self.supporter_id

    def tried_also(self, supporter_id: str) -> "CaseRecord":
        return replace(self, case=replace(self.case, tried=self.case.tried | {supporter_id}))


class CaseBook:
    """One document per case: where it stands, who was tried, who holds it now."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["cases"]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("profile.hospital_id", 1), ("status", 1)])
        await self.collection.create_index([("status", 1), ("respond_by", 1)])
        await self.collection.create_index([("status", 1), ("priority", 1), ("since", 1)])
        await self.collection.create_index([("incident", 1)])
        await self.collection.create_index([("profile.hospital_id", 1), ("opened_at", -1)])
        await self.collection.create_index([("supporter_id", 1), ("opened_at", -1)])

    async def open(self, session: AsyncClientSession, doc: Document) -> None:
        """A `case_document`, with what was decided for it at once: one write. Raises
        DuplicateKeyError when the case was opened before, undoing the transaction."""
        await self.collection.insert_one(doc, session=session)

    async def opened_among(self, case_ids: Sequence[str]) -> set[str]:
        """Those of the cases opened before (a redelivery), in one read."""
        found = self.collection.find({"_id": {"$in": list(case_ids)}}, {"_id": 1})
        return {doc["_id"] async for doc in found}

    async def take(
        self,
        session: AsyncClientSession,
        case_id: str,
        *,
        changes: Document | None = None,
        **expected: Any,
    ) -> CaseRecord | None:
        """The case if it is still as `expected`, claimed for this transaction (with `changes`
        applied): a concurrent transaction on the same case then conflicts and is retried.
        Read, then written, in the transaction: a find-and-modify would be one call, but
        SecantusDB (the local server) scans the whole collection for it."""
        doc = await self.collection.find_one(
            {"_id": case_id, "purged_at": {"$exists": False}, **expected}, session=session
        )
        if doc is None:
            return None
        claim: Document = {"$inc": {"takes": 1}}  # a write, even with no changes: the conflict
        if changes:
            claim["$set"] = changes
        await self.collection.update_one({"_id": case_id}, claim, session=session)
        return case_record(doc | (changes or {}))

    async def update(self, session: AsyncClientSession, case_id: str, **changes: Any) -> None:
        await self.collection.update_one({"_id": case_id}, {"$set": changes}, session=session)

    async def offered(
        self, session: AsyncClientSession, assigned: PeerAssigned, at: datetime
    ) -> None:
        """The case now waits for the supporter's answer to this offer."""
        await self.update(session, str(assigned.case_id), **offer_changes(assigned, at))

    async def tried(self, session: AsyncClientSession, case_id: str, supporter_id: str) -> None:
        await self.collection.update_one(
            {"_id": case_id}, {"$addToSet": {"tried": supporter_id}}, session=session
        )

    async def incident_share(
        self, session: AsyncClientSession | None, incident: str
    ) -> Counter[str]:
        """How many of the incident's cases each supporter holds now."""
        share: Counter[str] = Counter()
        async for doc in self.collection.find(
            {"incident": incident}, {"status": 1, "supporter_id": 1}, session=session
        ):
            if doc["status"] in HOLDING_CAPACITY:
                share[doc["supporter_id"]] += 1
        return share

    async def get(self, case_id: str) -> CaseRecord | None:
        """None too for a case erased after its end."""
        doc = await self.collection.find_one({"_id": case_id, "purged_at": {"$exists": False}})
        return case_record(doc) if doc else None

    async def erase_ended(self, cutoff: datetime, now: datetime) -> list[str]:
        """Each case that ended, closed or was opted out of before `cutoff` keeps only its
        random id, its status and the day it was erased (so a late redelivery cannot open it
        again): no colleague, incident, supporter, assignment, profile or exact time. What
        it was is in reporting's counts. Returns the case ids."""
        due = {
            "purged_at": {"$exists": False},
            "$or": [
                {"status": Status.ENDED, "ended_at": {"$lte": cutoff}},
                {"status": Status.CLOSED, "closed_at": {"$lte": cutoff}},
                {"status": Status.OPTED_OUT, "since": {"$lte": cutoff}},
            ],
        }
        erased = [doc async for doc in self.collection.find(due, {"status": 1})]
        for doc in erased:
            await self.collection.replace_one(
                {"_id": doc["_id"]}, {"status": doc["status"], "purged_at": erased_on(now)}
            )
        return [doc["_id"] for doc in erased]

    async def in_progress(self, hospital_id: str | None, limit: int) -> list[CaseRecord]:
        """Cases not yet ended or closed, of one hospital or all: what a coordinator may
        need to act on."""
        query: Document = {"status": {"$in": list(IN_PROGRESS)}}
        if hospital_id:
            query["profile.hospital_id"] = hospital_id
        cursor = self.collection.find(query).sort([("priority", 1), ("since", 1)]).limit(limit)
        return [case_record(doc) async for doc in cursor]

    async def listing(
        self,
        criteria: Document,
        *,
        newest_first: bool,
        offset: int,
        limit: int,
    ) -> tuple[int, list[CaseRecord]]:
        """The cases (not erased) that meet `criteria`, a page of them by when they opened,
        and how many there are in all."""
        query = {"purged_at": {"$exists": False}, **criteria}
        total = await self.collection.count_documents(query)
        order = -1 if newest_first else 1
        cursor = (
            self.collection.find(query)
            .sort([("opened_at", order), ("_id", order)])
            .skip(offset)
            .limit(limit)
        )
        return total, [case_record(doc) async for doc in cursor]

    async def severe_accepted_since(self, hospital_id: str | None, since: datetime) -> Counter[str]:
        """Per supporter, the cases after death, severe harm or a calamity they took on."""
        query: Document = {"priority": 0, "accepted_at": {"$gte": since}}
        if hospital_id:
            query["profile.hospital_id"] = hospital_id
        cursor = self.collection.find(query, {"supporter_id": 1})
        return Counter([doc["supporter_id"] async for doc in cursor])

    async def overdue(self, now: datetime, limit: int) -> list[CaseRecord]:
        """Offers whose deadline passed, the most urgent first."""
        cursor = (
            self.collection.find({"status": Status.OFFERED, "respond_by": {"$lte": now}})
            .sort([("priority", 1), ("respond_by", 1)])
            .limit(limit)
        )
        return [case_record(doc) async for doc in cursor]

    async def waiting(self, limit: int) -> list[CaseRecord]:
        """Cases nobody fitted, the most urgent first, then the longest waiting."""
        cursor = (
            self.collection.find({"status": Status.WAITING})
            .sort([("priority", 1), ("since", 1)])
            .limit(limit)
        )
        return [case_record(doc) async for doc in cursor]


def case_document(
    case: Case, status: Status, priority: int, caused_by: uuid.UUID, at: datetime
) -> Document:
    """A case as the book keeps it when it opens."""
    return {
        "_id": str(case.case_id),
        "incident": case.incident,
        "correlation_id": case.correlation_id,
        "profile": case.profile.model_dump(mode="json"),
        "colleague": case.colleague.model_dump(mode="json"),
        "exclusions": case.exclusions.model_dump(mode="json"),
        "preferences": case.preferences.model_dump(mode="json"),
        "tried": [],
        "opened_at": case.opened_at,
        "status": status,
        "attempt": 0,
        "priority": priority,
        "since": at,
        "escalated_while_waiting": False,
        "caused_by": str(caused_by),
    }


def offer_changes(assigned: PeerAssigned, at: datetime) -> Document:
    """What a case records of the offer it now waits on."""
    return {
        "status": Status.OFFERED,
        "attempt": assigned.attempt,
        "supporter_id": assigned.supporter_id,
        "assignment_id": str(assigned.assignment_id),
        "offered_at": at,
        "respond_by": assigned.respond_by,
        "escalated_while_waiting": False,
    }


def case_record(doc: Document) -> CaseRecord:
    case = Case(
        case_id=uuid.UUID(doc["_id"]),
        correlation_id=doc.get("correlation_id") or doc["incident"],
        incident=doc["incident"],
        profile=CaseProfile.model_validate(doc["profile"]),
        colleague=Colleague.model_validate(doc["colleague"]),
        exclusions=Exclusions.model_validate(doc["exclusions"]),
        tried=frozenset(doc["tried"]),
        opened_at=doc.get("opened_at"),
        preferences=SupportPreferences.model_validate(doc.get("preferences") or {}),
    )
    return CaseRecord(
        case=case,
        status=Status(doc["status"]),
        attempt=doc["attempt"],
        priority=doc["priority"],
        since=doc["since"],
        caused_by=uuid.UUID(doc["caused_by"]),
        escalated_while_waiting=doc.get("escalated_while_waiting", False),
        supporter_id=doc.get("supporter_id"),
        assignment_id=doc.get("assignment_id"),
        offered_at=doc.get("offered_at"),
        respond_by=doc.get("respond_by"),
        accepted_at=doc.get("accepted_at"),
        outcome=doc.get("outcome"),
        ended_at=doc.get("ended_at"),
        reopened_at=doc.get("reopened_at"),
    )


def _profile(doc: Document) -> SupporterProfile:
    return SupporterProfile.model_validate({**doc, "supporter_id": doc["_id"]})


def _supporter(doc: Document) -> Supporter:
    return Supporter(
        contact=SupporterContact(
            supporter_id=doc["_id"],
            display_name=doc["display_name"],
            email=doc["email"],
            phone=doc["phone"],
            language=doc["language"],
        ),
        hospital_id=doc["hospital_id"],
        pseudonym=doc["pseudonym"],
        pseudonyms=doc.get("pseudonyms", {}),
        function=doc["function"],
        department=doc["department"],
        max_open_cases=doc["max_open_cases"],
        open_cases=len(doc["open_case_ids"]),
        active=doc["active"],
        team=doc["team"],
        languages=frozenset(doc["languages"]),
        trained_on=_date(doc["trained_on"]),
        available_days=frozenset(doc["available_days"]),
        absences=tuple(Absence.model_validate(a) for a in doc["absences"]),
        seniority_years=doc["seniority_years"],
        birth_year=doc["birth_year"],
        last_assigned_at=doc["last_assigned_at"],
        carried=tuple(doc.get("carried", ())),
    )


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
