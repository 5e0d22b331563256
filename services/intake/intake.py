"""What intake does with each incident event and staff message.

Each incident (or support request) is reconciled with what intake recorded of it, in one
unit of work: the record is written only if nobody changed it meanwhile, and the cases and
cases it causes go out with it. A colleague's contact details wait for notify's key for
their case and go out sealed to it (`on_contact_keys`). Preferences are by pseudonym: intake
never keeps a staff id.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from services.intake.cases import Choice, IntakePolicy, Occasion, reconcile, sealed_contact
from services.intake.directory import reached_as_known
from services.intake.directory_store import StaffDirectory
from services.intake.store import IncidentRecords, Preferences, WaitingContacts
from shared.batches import Delivery
from shared.errors import RejectedEvent
from shared.events import (
    CaseContactRecorded,
    ContactKeyIssued,
    IncidentEvent,
    OutreachPreferenceSet,
    StaffMessage,
    SupportRequested,
)
from shared.mongo import Announcements, Document, Step, UnitOfWork, Work
from shared.pseudonyms import PseudonymKeys
from shared.settings import Topics

T = TypeVar("T")
Waiting = dict[uuid.UUID, CaseContactRecorded]


@dataclass
class Intake:
    unit_of_work: UnitOfWork
    records: IncidentRecords
    preferences: Preferences
    waiting: WaitingContacts
    policy: IntakePolicy
    keys: PseudonymKeys
    topics: Topics
    log: Any
    settle_after: timedelta
    directory: StaffDirectory
    """Whom the hospital's directory knows is reached at its address, whatever an incident
    says; an incident's contact details are for those it does not know."""

    async def settle_due(self) -> None:
        """Incidents unchanged for `settle_after` are settled: intake forgets who was in them."""
        unchanged_since = datetime.now(UTC) - self.settle_after
        settled = await self.records.settle(unchanged_since)
        forgotten = await self.waiting.forget(unchanged_since)
        if settled or forgotten:
            self.log.info("incidents settled", incidents=settled, contacts_unsent=forgotten)

    async def on_incident(self, incident: IncidentEvent, key: bytes | None = None) -> None:
        """`key`: the Kafka key it came with."""
        await self.take_in(self._occasion(incident, key))

    async def on_incidents(self, batch: Sequence[Delivery[IncidentEvent]]) -> None:
        """A batch of incident events in one transaction, in the order they came."""
        occasions = [self._occasion(d.event, d.key) for d in batch]
        steps = [Step(self._recording(o), d.trace) for o, d in zip(occasions, batch, strict=True)]
        published = await self.unit_of_work.run_steps(steps)
        for occasion, entries in zip(occasions, published, strict=True):
            self._taken_in(occasion, entries)

    def _occasion(self, incident: IncidentEvent, key: bytes | None) -> Occasion:
        self._check(incident.source_system, incident.hospital_id, key, incident.incident_key)
        return Occasion.of_incident(incident)

    async def on_staff_message(self, message: StaffMessage) -> None:
        self._check(message.source_system, message.hospital_id, None, "")
        if isinstance(message, OutreachPreferenceSet):
            await self.record_choice(message)
        else:
            await self.take_request(message)

    async def record_choice(self, choice: OutreachPreferenceSet) -> None:
        """From the staff topic, or the request page once the asker is known."""
        names = self.keys.every(choice.hospital_id, choice.staff_id)
        pseudonym = names.pop(self.keys.key_id)
        if names:  # a choice made before a key rotation moves to today's pseudonym first
            await self.preferences.rekey(list(names.values()), pseudonym)
        made = Choice(choice.channel, choice.language)
        changed = await self.preferences.record(
            pseudonym, choice.outreach, choice.occurred_at, made
        )
        self.log.info("outreach preference", outreach=choice.outreach, changed=changed)

    async def take_request(self, request: SupportRequested) -> None:
        await self.take_in(Occasion.of_request(request))

    def _check(self, source: str, hospital_id: str, key: bytes | None, expected: str) -> None:
        if refused := self.policy.provenance(source, hospital_id, key, expected):
            raise RejectedEvent(refused)

    async def take_in(self, occasion: Occasion) -> None:
        self._taken_in(occasion, await self.unit_of_work.run(self._recording(occasion)))

    async def _reached(self, session: AsyncClientSession, occasion: Occasion) -> Occasion:
        staff = [p.staff_id for p in occasion.participants]
        known = await self.directory.find(occasion.hospital_id, staff, session)
        return replace(
            occasion,
            participants=tuple(
                reached_as_known(p, known.get(p.staff_id)) for p in occasion.participants
            ),
        )

    def _recording(self, occasion: Occasion) -> Work:
        """The occasion reconciled with what intake recorded of it."""
        names = [self.keys.every(occasion.hospital_id, p.staff_id) for p in occasion.participants]
        pseudonyms = [pseudonym for each in names for pseudonym in each.values()]

        async def record(session: AsyncClientSession, now: datetime) -> Announcements:
            if refused := self.policy.implausible(occasion.occurred_at, now):
                raise RejectedEvent(refused)
            reached = await self._reached(session, occasion)
            previous = await self.records.get(session, occasion.key)
            declined, welcome = await self.preferences.stated(session, pseudonyms)
            opted_out = set(_by_today(names, dict.fromkeys(declined, True)))
            choices = _by_today(names, welcome)
            outcome = reconcile(previous, reached, self.keys, opted_out, self.policy, now, choices)
            if outcome.stale:
                return []
            if previous is not None and previous.settled:
                raise RejectedEvent(
                    f"incident {occasion.key} settled (unchanged for {self.settle_after}): "
                    "who was involved is forgotten, so a change can no longer be taken in"
                )
            await self.records.save(session, occasion.key, outcome.record, previous, now)
            await self.waiting.hold(session, outcome.contacts, now)
            return [(self.topics.cases, event) for event in outcome.cases]

        return record

    def _taken_in(self, occasion: Occasion, published: list[Document]) -> None:
        self.log.info(
            "incident taken in" if published else "incident unchanged or superseded",
            incident=occasion.key,
            revision=occasion.revision,
            participants=len(occasion.participants),
            events=sorted(doc["event_type"] for doc in published),
        )

    async def on_contact_keys(self, batch: Sequence[Delivery[ContactKeyIssued]]) -> None:
        """The contacts waiting for these keys go out sealed to them (taken in one read and
        one delete), and intake forgets them."""

        async def take(session: AsyncClientSession, now: datetime) -> Waiting:
            return await self.waiting.take(session, {d.event.case_id for d in batch})

        published = await self.unit_of_work.run_set(
            take, [(partial(self._sealed, d.event), d.trace) for d in batch]
        )
        sealed = sum(bool(entries) for entries in published)
        self.log.info("contacts sealed", sealed=sealed, without_contact=len(batch) - sealed)

    def _sealed(self, key: ContactKeyIssued, waiting: Waiting, now: datetime) -> Announcements:
        # Taken by the first of a case's keys: a repeat finds it gone, as it would later.
        contact = waiting.pop(key.case_id, None)
        if contact is None:  # sealed already, settled, or the colleague opted out
            return []
        return [(self.topics.contacts, sealed_contact(contact, key, now))]


def _by_today(names: list[dict[str, str]], found: Mapping[str, T]) -> dict[str, T]:
    """What was found of each person under any pseudonym key, by today's pseudonym of them
    (`names`: each person's pseudonym by key id, today's first)."""
    return {
        next(iter(each.values())): found[hit]
        for each in names
        if (hit := next((p for p in each.values() if p in found), None)) is not None
    }
