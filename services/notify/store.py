"""Notify's own data: how to reach each colleague, each offer's answer, each message step.

A message is `scheduled` until due and claimed, `sending` while one worker holds it (for at
most the lease), then `sent`, `failed`, `skipped` or, when a worker stopped while sending,
`unconfirmed`. The claim keeps two workers (or a contact and an assignment arriving
together) from sending one step twice.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from services.notify.steps import Scheduled
from shared.events import CaseContactRecorded, ChannelName, PeerAssigned, SupporterContact
from shared.mongo import Document


class CaseContacts:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["case_contacts"]

    async def record(self, contacts: Sequence[CaseContactRecorded]) -> None:
        """Each case's first contact kept, in one write for a batch."""
        if contacts:
            await self.collection.bulk_write(
                [
                    UpdateOne(
                        {"_id": str(contact.case_id)},
                        {"$setOnInsert": {"contact": contact.model_dump(mode="json")}},
                        upsert=True,
                    )
                    for contact in contacts
                ],
                ordered=False,
            )

    async def of_case(self, case_id: str) -> CaseContactRecorded | None:
        doc = await self.collection.find_one({"_id": case_id})
        return CaseContactRecorded.model_validate(doc["contact"]) if doc else None

    async def known_among(self, case_ids: Collection[str]) -> set[str]:
        """The cases among `case_ids` whose contact notify holds: one read for a batch."""
        if not case_ids:
            return set()
        cursor = self.collection.find({"_id": {"$in": list(case_ids)}}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}


class Supporters:
    """notify's copy of the roster's names and contact details, from the roster topic:
    assignments name the supporter by id only. A change of address reaches the next message."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["supporters"]

    async def keep(self, supporter: SupporterContact) -> None:
        contact = SupporterContact.model_validate(supporter.model_dump()).model_dump(mode="json")
        await self.collection.replace_one(
            {"_id": supporter.supporter_id}, {"contact": contact}, upsert=True
        )

    async def of(self, supporter_id: str) -> SupporterContact | None:
        doc = await self.collection.find_one({"_id": supporter_id})
        return SupporterContact.model_validate(doc["contact"]) if doc else None


@dataclass(frozen=True)
class Offer:
    """An assignment as notify knows it: open until answered or cancelled."""

    assignment: PeerAssigned
    open: bool = True
    answer: str | None = None
    cancelled: bool = False
    ended: bool = False
    """Support has ended (by the supporter's link, or by lapsing): nothing more is sent."""
    answered_at: datetime | None = None
    contacts: int = 0
    """Contacts the supporter logged for it."""
    supporter: SupporterContact | None = None
    """The supporter as notify's copy of the roster has them, once it does."""

    @property
    def language(self) -> str:
        return self.supporter.language if self.supporter else "en"

    @property
    def in_support(self) -> bool:
        """Accepted, and neither withdrawn nor ended: what contacts and an ending are about."""
        return self.answer == "accepted" and not self.cancelled and not self.ended

    def too_late_to_answer(self, now: datetime) -> bool:
        """Past its deadline, matching gives the case to someone else: an answer then would
        be taken here and find no offer there, and the supporter would hear nothing more."""
        return now >= self.assignment.respond_by


@dataclass(frozen=True)
class Claimed:
    """A message step as it was when a worker claimed it."""

    message_id: str
    assignment_id: str
    case_id: str
    supporter_id: str
    step: str
    state: str
    channel: ChannelName | None = None
    """The channel a send had begun on, if one had."""
    tried: list[str] = field(default_factory=list)
    attempts: int = 0

    @property
    def interrupted_on(self) -> ChannelName | None:
        """The channel of a send that a stopped worker left unfinished."""
        return self.channel if self.state == State.SENDING else None


class Offers:
    """Each assignment as notify knows it: open until answered or cancelled."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["offers"]

    async def record(self, session: AsyncClientSession, assignment: PeerAssigned) -> bool:
        """Returns whether the offer is new."""
        result = await self.collection.update_one(
            {"_id": str(assignment.assignment_id)},
            {
                "$setOnInsert": {
                    "case_id": str(assignment.case_id),
                    "assignment": assignment.model_dump(mode="json"),
                    "open": True,
                    "answer": None,
                    "cancelled": False,
                }
            },
            upsert=True,
            session=session,
        )
        return result.upserted_id is not None

    async def get(
        self, assignment_id: str, session: AsyncClientSession | None = None
    ) -> Offer | None:
        doc = await self.collection.find_one({"_id": assignment_id}, session=session)
        if doc is None:
            return None
        return Offer(
            assignment=PeerAssigned.model_validate(doc["assignment"]),
            open=doc["open"],
            answer=doc["answer"],
            cancelled=doc["cancelled"],
            ended=doc.get("ended", False),
            answered_at=doc.get("answered_at"),
            contacts=doc.get("contacts", 0),
        )

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

    async def count_contact(self, session: AsyncClientSession, assignment_id: str) -> None:
        await self.collection.update_one(
            {"_id": assignment_id}, {"$inc": {"contacts": 1}}, session=session
        )

    async def end(
        self, session: AsyncClientSession, assignment_id: str, outcome: str, at: datetime
    ) -> int | None:
        """Record the end of support once; returns the contacts logged in it when this was
        the end, None when it had ended before or was never under way. (Read, then written,
        in the transaction: SecantusDB scans the collection for a find-and-modify.)"""
        doc = await self.collection.find_one(
            {
                "_id": assignment_id,
                "answer": "accepted",
                "cancelled": False,
                "ended": {"$ne": True},
            },
            {"contacts": 1},
            session=session,
        )
        if doc is None:
            return None
        await self.collection.update_one(
            {"_id": assignment_id},
            {"$set": {"ended": True, "outcome": outcome, "ended_at": at}},
            session=session,
        )
        return int(doc.get("contacts", 0))

    async def cancel(self, session: AsyncClientSession, assignment_id: str) -> None:
        await self.collection.update_one(
            {"_id": assignment_id},
            {"$set": {"open": False, "cancelled": True}},
            session=session,
        )

    async def move_deadline(
        self, session: AsyncClientSession, assignment_id: str, respond_by: datetime
    ) -> None:
        await self.collection.update_one(
            {"_id": assignment_id},
            {"$set": {"assignment.respond_by": respond_by.isoformat()}},
            session=session,
        )


class State:
    SCHEDULED = "scheduled"
    AWAITING_CONTACT = "awaiting_contact"
    """Waits for the colleague's contact details, from intake."""
    AWAITING_SUPPORTER = "awaiting_supporter"
    """Waits for the supporter's name and address, from the roster topic."""
    SENDING = "sending"
    SENT = "sent"
    UNCONFIRMED = "unconfirmed"
    """The service stopped while sending: perhaps sent, so never sent again."""
    FAILED = "failed"
    SKIPPED = "skipped"
    DONE = "done"
    """A step that sends nothing (the lapse) has taken effect."""


def _claimed(doc: Document) -> Claimed:
    return Claimed(
        message_id=doc["_id"],
        assignment_id=doc["assignment_id"],
        case_id=doc["case_id"],
        supporter_id=doc["supporter_id"],
        step=doc["step"],
        state=doc["state"],
        channel=doc.get("channel"),
        tried=list(doc.get("tried", [])),
        attempts=int(doc.get("attempts", 0)),
    )


AWAITED_BY = {State.AWAITING_CONTACT: "case_id", State.AWAITING_SUPPORTER: "supporter_id"}
"""What a waiting step waits for, by the field of the message that names it."""


class Messages:
    """One document per assignment and step: the idempotency record that keeps a step to one
    message. `claimable_from` says when it may be claimed (its due time, the end of a lease,
    or never once done), so that every claim is a lookup and one comparison."""

    def __init__(self, database: AsyncDatabase[Document], lease: timedelta) -> None:
        self.collection = database["messages"]
        self.lease = lease

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("claimable_from", 1)])
        await self.collection.create_index([("case_id", 1), ("state", 1)])
        await self.collection.create_index([("supporter_id", 1), ("state", 1)])
        await self.collection.create_index([("state", 1)])
        await self.collection.create_index([("assignment_id", 1), ("state", 1)])

    async def schedule(
        self,
        session: AsyncClientSession,
        assignment: PeerAssigned,
        steps: Sequence[Scheduled],
        *,
        awaiting_contact: Collection[str] = (),
    ) -> None:
        """Every step in one write; a step scheduled before (a redelivery) stays as it is.

        `awaiting_contact`: steps that wait for the colleague's contact, known to be missing,
        rather than for their time: the contact's arrival makes them due (`arrived`)."""
        if not steps:
            return
        await self.collection.bulk_write(
            [
                UpdateOne(
                    {"_id": f"{assignment.assignment_id}/{scheduled.step}"},
                    {
                        "$setOnInsert": {
                            "assignment_id": str(assignment.assignment_id),
                            "case_id": str(assignment.case_id),
                            "supporter_id": assignment.supporter_id,
                            "step": scheduled.step,
                            "due_at": scheduled.due_at,
                            **(
                                {"state": State.AWAITING_CONTACT, "claimable_from": None}
                                if scheduled.step in awaiting_contact
                                else {"state": State.SCHEDULED, "claimable_from": scheduled.due_at}
                            ),
                            "attempts": 0,
                            "tried": [],
                        }
                    },
                    upsert=True,
                )
                for scheduled in steps
            ],
            session=session,
        )

    async def reschedule(
        self, session: AsyncClientSession, assignment_id: str, step: str, due_at: datetime
    ) -> None:
        await self.collection.update_one(
            {"_id": f"{assignment_id}/{step}", "state": State.SCHEDULED},
            {"$set": {"due_at": due_at, "claimable_from": due_at}},
            session=session,
        )

    async def postpone(
        self, session: AsyncClientSession, assignment_id: str, step: str, due_at: datetime
    ) -> None:
        """Move a scheduled step later, never earlier."""
        await self.collection.update_one(
            {"_id": f"{assignment_id}/{step}", "state": State.SCHEDULED, "due_at": {"$lt": due_at}},
            {"$set": {"due_at": due_at, "claimable_from": due_at}},
            session=session,
        )

    async def skip_remaining(self, session: AsyncClientSession, assignment_id: str) -> None:
        for state in (State.SCHEDULED, State.AWAITING_CONTACT, State.AWAITING_SUPPORTER):
            await self.collection.update_many(
                {"assignment_id": assignment_id, "state": state},
                {"$set": {"state": State.SKIPPED, "claimable_from": None}},
                session=session,
            )

    async def due(self, now: datetime, limit: int) -> list[str]:
        cursor = (
            self.collection.find({"claimable_from": {"$lte": now}}, {"_id": 1})
            .sort([("claimable_from", 1)])
            .limit(limit)
        )
        return [doc["_id"] async for doc in cursor]

    async def of_assignment(self, assignment_id: str) -> list[str]:
        cursor = self.collection.find({"assignment_id": assignment_id}, {"_id": 1})
        return [doc["_id"] async for doc in cursor]

    async def arrived(
        self, awaiting: str, keys: Collection[str], now: datetime
    ) -> list[tuple[str, Claimed]]:
        """Steps that waited for them (the contact of each case in `keys`, or each supporter),
        claimed for the caller to send now: (key, claimed), each key's offer before its
        reminder. A step is claimed straight from its wait, only if it still waits, so that
        another arrival of the same contact cannot claim it too."""
        if not keys:
            return []
        field = AWAITED_BY[awaiting]
        waiting = self.collection.find({field: {"$in": list(keys)}, "state": awaiting})
        claimed = []
        for doc in await waiting.sort("due_at", 1).to_list():
            if await self._claim_as_read(doc, now):
                claimed.append((str(doc[field]), _claimed(doc)))
        return claimed

    async def claim(self, message_id: str, now: datetime) -> Claimed | None:
        """The message as it was before this claim (its `state` says whether an earlier
        claim was interrupted while sending), or None when it is not claimable now.

        Read, then claimed only if still as read: every change of a message moves its
        `claimable_from`, so two claimers cannot both win. (A find-and-modify would do it in
        one step, but SecantusDB, the local server, scans the whole collection for it.)"""
        while True:
            doc = await self.collection.find_one({"_id": message_id})
            if doc is None or doc.get("claimable_from") is None:
                return None
            if doc["claimable_from"] > now:
                return None
            if await self._claim_as_read(doc, now):
                return _claimed(doc)

    async def _claim_as_read(self, doc: Document, now: datetime) -> bool:
        """Whether the message, still as `doc` read it, is now this claimer's."""
        claimed = await self.collection.update_one(
            {"_id": doc["_id"], "claimable_from": doc["claimable_from"], "state": doc["state"]},
            {
                "$set": {
                    "state": State.SENDING,
                    "claimed_at": now,
                    "claimable_from": now + self.lease,
                }
            },
        )
        return claimed.modified_count == 1

    async def settle(
        self,
        message_id: str,
        state: str,
        session: AsyncClientSession | None = None,
        **fields: Any,
    ) -> None:
        """Done with the message for good: sent, unconfirmed, failed or skipped."""
        await self.collection.update_one(
            {"_id": message_id},
            {"$set": {"state": state, "claimable_from": None, **fields}},
            session=session,
        )

    async def waiting(self) -> dict[str, int]:
        """How many steps wait, by what they wait for."""
        return {
            state: await self.collection.count_documents({"state": state}) for state in AWAITED_BY
        }

    async def state_of(self, message_id: str) -> str | None:
        doc = await self.collection.find_one({"_id": message_id}, {"state": 1})
        return str(doc["state"]) if doc else None

    async def wait_for(self, message_id: str, awaiting: str) -> None:
        await self.collection.update_one(
            {"_id": message_id}, {"$set": {"state": awaiting, "claimable_from": None}}
        )

    async def retry_later(self, message_id: str, attempts: int, at: datetime) -> None:
        await self.collection.update_one(
            {"_id": message_id},
            {"$set": {"state": State.SCHEDULED, "claimable_from": at, "attempts": attempts}},
        )

    async def sending_on(self, message_id: str, channel: str) -> None:
        """Mark the channel about to be used: after a stop, this says a send may have begun."""
        await self.collection.update_one({"_id": message_id}, {"$set": {"channel": channel}})

    async def tried(self, message_id: str, channel: str) -> None:
        await self.collection.update_one({"_id": message_id}, {"$addToSet": {"tried": channel}})


class Firsts:
    """Keys seen once, such as the nonce of each single-use link once used, or each case
    whose first contact was logged; each with its case, so the erasure takes them too."""

    def __init__(self, database: AsyncDatabase[Document], name: str) -> None:
        self.collection = database[name]

    async def seen(self, key: str) -> bool:
        return await self.collection.find_one({"_id": key}, {"_id": 1}) is not None

    async def first(
        self, session: AsyncClientSession, key: str, at: datetime, *, case_id: str
    ) -> bool:
        """Returns False when the key was seen before; two at once make the second
        transaction fail on the key, and its retry then sees the first."""
        if await self.collection.find_one({"_id": key}, {"_id": 1}, session=session):
            return False
        await self.collection.insert_one(
            {"_id": key, "at": at, "case_id": case_id}, session=session
        )
        return True
