"""In-memory stand-ins for the services' own stores, for handler tests that run in
milliseconds. The real-server suite stays the authority on how the stores behave."""

import asyncio
import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from services.intake.cases import Choice, IncidentRecord
from services.intake.directory import StaffMember
from services.intake.directory_store import StaffDirectory
from services.intake.store import IncidentRecords, Preferences, WaitingContacts
from services.matching.desk import Remark
from services.matching.desk_store import AuditLine, AuditLog, DeskRecords, Notes
from services.matching.store import (
    HOLDING_CAPACITY,
    CaseBook,
    CaseRecord,
    Roster,
    Status,
    case_record,
)
from services.matching.supporters import Supporter
from services.notify import store as notify_store
from services.notify.keyring import ContactKeys
from services.notify.steps import Scheduled
from services.notify.store import AWAITED_BY, Claimed, Offer, State
from shared.errors import RejectedEvent, RetryLater
from shared.events import (
    CaseContactRecorded,
    ChannelName,
    Envelope,
    PeerAssigned,
    SupporterContact,
)
from shared.mail import Outreach
from shared.mongo import Announcements, Document, Step, UnitOfWork, outbox_entries, with_counts
from shared.sealing import new_case_key
from shared.settings import Topics

NO_SESSION = cast(AsyncClientSession, object())
E = TypeVar("E", bound=Envelope)


class FakeUnitOfWork(UnitOfWork):
    """Runs each step at once and keeps what it announced, in order."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.published: Announcements = []
        self.topics = Topics()

    async def run_steps(
        self, steps: Sequence[Step], *, holding: object = None
    ) -> list[list[Document]]:
        published = []
        for step in steps:
            announced = with_counts(await step.work(NO_SESSION, self.now), self.topics)
            self.published += announced
            published.append(outbox_entries(announced, self.now))
        return published

    def events(self, kind: type[E]) -> list[E]:
        return [e for _, e in self.published if isinstance(e, kind)]


class FakeContacts(notify_store.CaseContacts):
    def __init__(self) -> None:
        self.contacts: dict[str, CaseContactRecorded] = {}

    async def record(self, contacts: Sequence[CaseContactRecorded]) -> None:
        for contact in contacts:
            self.contacts.setdefault(str(contact.case_id), contact)

    async def of_case(self, case_id: str) -> CaseContactRecorded | None:
        return self.contacts.get(case_id)

    async def known_among(self, case_ids: Collection[str]) -> set[str]:
        return set(case_ids) & set(self.contacts)


class FakeContactKeys(ContactKeys):
    def __init__(self) -> None:
        self.pairs: dict[uuid.UUID, tuple[bytes, str]] = {}

    async def issue(
        self, session: AsyncClientSession, case_ids: Collection[uuid.UUID], now: datetime
    ) -> dict[uuid.UUID, str]:
        return {case_id: self.pairs.setdefault(case_id, new_case_key())[1] for case_id in case_ids}

    async def private_keys(self, case_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        return {case_id: self.pairs[case_id][0] for case_id in case_ids if case_id in self.pairs}


class FakeSupporters(notify_store.Supporters):
    def __init__(self) -> None:
        self.supporters: dict[str, SupporterContact] = {}

    async def keep(self, supporter: SupporterContact) -> None:
        self.supporters[supporter.supporter_id] = supporter

    async def of(self, supporter_id: str) -> SupporterContact | None:
        return self.supporters.get(supporter_id)


class FakeOffers(notify_store.Offers):
    def __init__(self) -> None:
        self.offers: dict[str, Offer] = {}

    async def record(self, session: AsyncClientSession, assignment: PeerAssigned) -> bool:
        new = str(assignment.assignment_id) not in self.offers
        self.offers.setdefault(str(assignment.assignment_id), Offer(assignment))
        return new

    async def get(
        self, assignment_id: str, session: AsyncClientSession | None = None
    ) -> Offer | None:
        return self.offers.get(assignment_id)

    async def answer(
        self, session: AsyncClientSession, assignment_id: str, answer: str, at: datetime
    ) -> bool:
        offer = self.offers[assignment_id]
        if not offer.open:
            return False
        self.offers[assignment_id] = replace(offer, open=False, answer=answer, answered_at=at)
        return True

    async def cancel(self, session: AsyncClientSession, assignment_id: str) -> None:
        offer = self.offers[assignment_id]
        self.offers[assignment_id] = replace(offer, open=False, cancelled=True)

    async def count_contact(self, session: AsyncClientSession, assignment_id: str) -> None:
        if offer := self.offers.get(assignment_id):
            self.offers[assignment_id] = replace(offer, contacts=offer.contacts + 1)

    async def end(
        self, session: AsyncClientSession, assignment_id: str, outcome: str, at: datetime
    ) -> int | None:
        offer = self.offers[assignment_id]
        if offer.answer != "accepted" or offer.cancelled or offer.ended:
            return None
        self.offers[assignment_id] = replace(offer, ended=True)
        return offer.contacts


@dataclass
class _Message:
    assignment_id: str
    case_id: str
    supporter_id: str
    step: str
    state: str
    due_at: datetime
    claimable_from: datetime | None
    channel: ChannelName | None = None
    tried: list[str] = field(default_factory=list)
    attempts: int = 0
    fields: dict[str, Any] = field(default_factory=dict)


class FakeMessages(notify_store.Messages):
    def __init__(self, lease: timedelta = timedelta(minutes=2)) -> None:
        self.lease = lease
        self.messages: dict[str, _Message] = {}

    def state(self, message_id: str) -> str:
        return self.messages[message_id].state

    async def schedule(
        self,
        session: AsyncClientSession,
        assignment: PeerAssigned,
        steps: Sequence[Scheduled],
        *,
        awaiting_contact: Collection[str] = (),
    ) -> None:
        for scheduled in steps:
            waits = scheduled.step in awaiting_contact
            self.messages.setdefault(
                f"{assignment.assignment_id}/{scheduled.step}",
                _Message(
                    str(assignment.assignment_id),
                    str(assignment.case_id),
                    assignment.supporter_id,
                    scheduled.step,
                    State.AWAITING_CONTACT if waits else State.SCHEDULED,
                    scheduled.due_at,
                    None if waits else scheduled.due_at,
                ),
            )

    async def postpone(
        self, session: AsyncClientSession, assignment_id: str, step: str, due_at: datetime
    ) -> None:
        message = self.messages.get(f"{assignment_id}/{step}")
        if message and message.state == State.SCHEDULED and message.due_at < due_at:
            message.due_at = message.claimable_from = due_at

    async def skip_remaining(self, session: AsyncClientSession, assignment_id: str) -> None:
        for message in self.messages.values():
            if message.assignment_id == assignment_id and message.state in (
                State.SCHEDULED,
                State.AWAITING_CONTACT,
                State.AWAITING_SUPPORTER,
            ):
                message.state, message.claimable_from = State.SKIPPED, None

    async def due(self, now: datetime, limit: int) -> list[str]:
        due = [
            (m.claimable_from, message_id)
            for message_id, m in self.messages.items()
            if m.claimable_from is not None and m.claimable_from <= now
        ]
        return [message_id for _, message_id in sorted(due)[:limit]]

    async def arrived(
        self, awaiting: str, keys: Collection[str], now: datetime
    ) -> list[tuple[str, Claimed]]:
        return [
            (getattr(m, AWAITED_BY[awaiting]), self._claim(message_id, now))
            for message_id, m in sorted(self.messages.items(), key=lambda item: item[1].due_at)
            if getattr(m, AWAITED_BY[awaiting]) in keys and m.state == awaiting
        ]

    async def claim(self, message_id: str, now: datetime) -> Claimed | None:
        message = self.messages.get(message_id)
        if message is None or message.claimable_from is None or message.claimable_from > now:
            return None
        return self._claim(message_id, now)

    def _claim(self, message_id: str, now: datetime) -> Claimed:
        message = self.messages[message_id]
        before = Claimed(
            message_id,
            message.assignment_id,
            message.case_id,
            message.supporter_id,
            message.step,
            message.state,
            message.channel,
            list(message.tried),
            message.attempts,
        )
        message.state, message.claimable_from = State.SENDING, now + self.lease
        return before

    async def settle(
        self,
        message_id: str,
        state: str,
        session: AsyncClientSession | None = None,
        **fields: Any,
    ) -> None:
        message = self.messages[message_id]
        message.state, message.claimable_from = state, None
        message.fields |= fields

    async def waiting(self) -> dict[str, int]:
        states = [m.state for m in self.messages.values()]
        return {state: states.count(state) for state in AWAITED_BY}

    async def wait_for(self, message_id: str, awaiting: str) -> None:
        message = self.messages[message_id]
        message.state, message.claimable_from = awaiting, None

    async def state_of(self, message_id: str) -> str | None:
        message = self.messages.get(message_id)
        return message.state if message else None

    async def retry_later(self, message_id: str, attempts: int, at: datetime) -> None:
        message = self.messages[message_id]
        message.state, message.claimable_from, message.attempts = State.SCHEDULED, at, attempts

    async def sending_on(self, message_id: str, channel: str) -> None:
        self.messages[message_id].channel = cast(ChannelName, channel)

    async def tried(self, message_id: str, channel: str) -> None:
        self.messages[message_id].tried.append(channel)


class FakeFirsts(notify_store.Firsts):
    def __init__(self) -> None:
        self.keys: set[str] = set()

    async def seen(self, key: str) -> bool:
        return key in self.keys

    async def first(
        self, session: AsyncClientSession, key: str, at: datetime, *, case_id: str
    ) -> bool:
        if key in self.keys:
            return False
        self.keys.add(key)
        return True


@dataclass
class FakeChannel:
    """A channel that delivers, refuses for good, or is away, as the test says."""

    name: str
    retries_are_safe: bool = False
    refuses: bool = False
    away: bool = False
    sent: list[tuple[str, Outreach]] = field(default_factory=list)
    answering: asyncio.Event | None = None
    """While set and not yet set off, the server has not answered: a send waits for it."""

    async def send(self, outreach: Outreach, message_id: str) -> None:
        if self.answering is not None:
            await self.answering.wait()
        if self.refuses:
            raise RejectedEvent(f"550 {outreach.to}: no such mailbox")
        if self.away:
            raise RetryLater(f"{self.name} provider unreachable")
        self.sent.append((message_id, outreach))


class FakeIncidentRecords(IncidentRecords):
    def __init__(self) -> None:
        self.records: dict[str, IncidentRecord] = {}
        self.changed_at: dict[str, datetime] = {}

    async def get(self, session: AsyncClientSession, key: str) -> IncidentRecord | None:
        return self.records.get(key)

    async def save(
        self,
        session: AsyncClientSession,
        key: str,
        record: IncidentRecord,
        previous: IncidentRecord | None,
        now: datetime,
    ) -> None:
        if self.records.get(key) is not previous:
            raise RetryLater(f"incident {key} changed meanwhile")
        self.records[key], self.changed_at[key] = record, now

    async def settle(self, unchanged_since: datetime) -> int:
        due = [
            key
            for key, record in self.records.items()
            if not record.settled and self.changed_at[key] < unchanged_since
        ]
        for key in due:
            forgotten = replace(self.records[key], settled=True, exclusions=None, cases={})
            self.records[key] = forgotten
        return len(due)


class FakePreferences(Preferences):
    def __init__(self) -> None:
        self.made: dict[str, tuple[str, datetime, Choice]] = {}

    async def record(
        self, pseudonym: str, outreach: str, set_at: datetime, choice: Choice | None = None
    ) -> bool:
        known = self.made.get(pseudonym)
        if known and known[1] >= set_at:
            return False
        self.made[pseudonym] = (outreach, set_at, choice or Choice())
        return True

    async def rekey(self, retired: list[str], today: str) -> None:
        made = sorted((self.made[p] for p in retired if p in self.made), key=lambda m: m[1])
        if made:
            outreach, set_at, choice = made[-1]
            await self.record(today, outreach, set_at, choice)
            for pseudonym in retired:
                self.made.pop(pseudonym, None)

    async def stated(
        self, session: AsyncClientSession, pseudonyms: Iterable[str]
    ) -> tuple[set[str], dict[str, Choice]]:
        made = {p: self.made[p] for p in pseudonyms if p in self.made}
        declined = {p for p, (outreach, _, _) in made.items() if outreach == "declined"}
        return declined, {p: m[2] for p, m in made.items() if m[0] == "welcome"}


class FakeWaitingContacts(WaitingContacts):
    def __init__(self) -> None:
        self.waiting: dict[uuid.UUID, tuple[CaseContactRecorded, datetime]] = {}

    async def hold(
        self, session: AsyncClientSession, contacts: Sequence[CaseContactRecorded], now: datetime
    ) -> None:
        self.waiting.update((contact.case_id, (contact, now)) for contact in contacts)

    async def take(
        self, session: AsyncClientSession, case_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, CaseContactRecorded]:
        taken = {
            case_id: self.waiting.pop(case_id) for case_id in case_ids if case_id in self.waiting
        }
        return {case_id: contact for case_id, (contact, _) in taken.items()}

    async def forget(self, waiting_since: datetime) -> int:
        due = [case for case, (_, since) in self.waiting.items() if since < waiting_since]
        for case in due:
            del self.waiting[case]
        return len(due)


class FakeRoster(Roster):
    """Supporters with their open cases; capacity is booked and given back as in the store."""

    def __init__(self, supporters: Iterable[Supporter]) -> None:
        self.supporters = {s.supporter_id: s for s in supporters}
        self.open: dict[str, set[str]] = {s: set() for s in self.supporters}

    def written_by(self, session: AsyncClientSession) -> set[str]:
        return set()  # nothing is held in memory without the store's change stream

    async def available_in(
        self, hospital_id: str, session: AsyncClientSession | None = None
    ) -> list[Supporter]:
        return [
            replace(s, open_cases=len(self.open[s.supporter_id]))
            for s in self.supporters.values()
            if s.hospital_id == hospital_id and s.active
        ]

    async def of_hospital(self, hospital_id: str | None) -> list[Supporter]:
        return [
            replace(s, open_cases=len(self.open[s.supporter_id]))
            for s in self.supporters.values()
            if hospital_id in (None, s.hospital_id)
        ]

    async def one(self, supporter_id: str, session: AsyncClientSession) -> Supporter | None:
        supporter = self.supporters.get(supporter_id)
        return replace(supporter, open_cases=len(self.open[supporter_id])) if supporter else None

    async def reserve(
        self,
        session: AsyncClientSession,
        supporter_id: str,
        case_id: str,
        at: datetime,
        *,
        beyond_capacity: bool = False,
    ) -> bool:
        supporter = self.supporters[supporter_id]
        if not beyond_capacity and len(self.open[supporter_id]) >= supporter.max_open_cases:
            return False
        self.open[supporter_id].add(case_id)
        self.supporters[supporter_id] = replace(supporter, last_assigned_at=at)
        return True

    async def carried(self, session: AsyncClientSession, supporter_id: str, at: datetime) -> None:
        supporter = self.supporters[supporter_id]
        self.supporters[supporter_id] = replace(supporter, carried=(*supporter.carried, at))

    async def release(self, session: AsyncClientSession, supporter_id: str, case_id: str) -> None:
        self.open[supporter_id].discard(case_id)


class FakeCaseBook(CaseBook):
    """The case documents as the store keeps them, read back through the store's own
    `case_record`."""

    def __init__(self) -> None:
        self.docs: dict[str, Document] = {}

    def status(self, case_id: object) -> str:
        return str(self.docs[str(case_id)]["status"])

    async def open(self, session: AsyncClientSession, doc: Document) -> None:
        if doc["_id"] in self.docs:
            raise DuplicateKeyError(f"case {doc['_id']} exists")
        self.docs[doc["_id"]] = doc

    async def opened_among(self, case_ids: Sequence[str]) -> set[str]:
        return {case_id for case_id in case_ids if case_id in self.docs}

    async def take(
        self,
        session: AsyncClientSession,
        case_id: str,
        *,
        changes: Document | None = None,
        **expected: Any,
    ) -> CaseRecord | None:
        doc = self.docs.get(case_id)
        if doc is None or not all(_matches(doc.get(k), v) for k, v in expected.items()):
            return None
        doc.update(changes or {})
        return case_record(doc)

    async def get(self, case_id: str) -> CaseRecord | None:
        doc = self.docs.get(case_id)
        return case_record(doc) if doc else None

    async def update(self, session: AsyncClientSession, case_id: str, **changes: Any) -> None:
        self.docs[case_id].update(changes)

    async def tried(self, session: AsyncClientSession, case_id: str, supporter_id: str) -> None:
        tried = self.docs[case_id]["tried"]
        if supporter_id not in tried:
            tried.append(supporter_id)

    async def incident_share(
        self, session: AsyncClientSession | None, incident: str
    ) -> Counter[str]:
        return Counter(
            doc["supporter_id"]
            for doc in self.docs.values()
            if doc["incident"] == incident and doc["status"] in HOLDING_CAPACITY
        )

    async def overdue(self, now: datetime, limit: int) -> list[CaseRecord]:
        due = [d for d in self.docs.values() if d["status"] == Status.OFFERED]
        due = [d for d in due if d["respond_by"] <= now]
        due.sort(key=lambda d: (d["priority"], d["respond_by"]))
        return [case_record(d) for d in due[:limit]]

    async def waiting(self, limit: int) -> list[CaseRecord]:
        waiting = [d for d in self.docs.values() if d["status"] == Status.WAITING]
        waiting.sort(key=lambda d: (d["priority"], d["since"]))
        return [case_record(d) for d in waiting[:limit]]


def _matches(value: object, expected: object) -> bool:
    if isinstance(expected, dict) and "$lte" in expected:
        return value is not None and value <= expected["$lte"]
    if isinstance(expected, dict) and "$in" in expected:
        return value in expected["$in"]
    return value == expected


class FakeAuditLog(AuditLog):
    def __init__(self) -> None:
        self.lines: list[AuditLine] = []

    async def add(self, session: AsyncClientSession, line: AuditLine) -> None:
        self.lines.append(line)


class FakeNotes(Notes):
    """A case's safety concern, owner and remarks: what the desk's actions read and write."""

    def __init__(self) -> None:
        self.concerns: dict[str, tuple[datetime, str]] = {}
        self.owners: dict[str, str] = {}
        self.remarks: dict[str, list[Remark]] = {}

    async def claim(
        self, session: AsyncClientSession, case_id: str, owner: str, at: datetime
    ) -> str | None:
        before = self.owners.get(case_id)
        self.owners[case_id] = owner
        return before

    async def remark(self, session: AsyncClientSession, case_id: str, remark: Remark) -> None:
        self.remarks.setdefault(case_id, []).append(remark)

    async def concern(self, case_id: str, at: datetime, raised_by: str) -> None:
        self.concerns.setdefault(case_id, (at, raised_by))

    async def concern_settled(self, session: AsyncClientSession, case_id: str) -> bool:
        return self.concerns.pop(case_id, None) is not None


class FakeDeskRecords(DeskRecords):
    """The desk's records with only its audit log and concerns kept: what the actions
    write."""

    def __init__(self) -> None:
        self.audit: AuditLog = FakeAuditLog()
        self.notes: Notes = FakeNotes()


class FakeStaffDirectory(StaffDirectory):
    """The staff directory of one test: whom it lists, by hospital and staff id."""

    def __init__(self, *members: StaffMember) -> None:
        self.members = {(m.hospital_id, m.staff_id): m for m in members}

    async def find(
        self,
        hospital_id: str,
        staff_ids: Collection[str],
        session: AsyncClientSession | None = None,
    ) -> dict[str, StaffMember]:
        found = (self.members.get((hospital_id, staff_id)) for staff_id in staff_ids)
        return {m.staff_id: m for m in found if m is not None and m.active}
