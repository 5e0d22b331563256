"""Each case's key for its colleague's contact details: notify makes one when a case opens,
publishes its public half for intake to seal the contact to, and keeps the private half in
its own database until the case is erased. Then every sealed copy on the contacts topic,
however long it is kept, is unreadable."""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import ValidationError
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from shared.batches import Delivery
from shared.errors import RejectedEvent
from shared.events import (
    CaseContactRecorded,
    CaseContactSealed,
    ContactKeyIssued,
    SupportCaseCounted,
    derived_event_id,
)
from shared.mongo import Announcements, Document, UnitOfWork
from shared.sealing import Unsealable, new_case_key, unseal


class ContactKeys:
    """The private keys, one per case, by case id; erasure deletes them with the case."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["contact_keys"]

    async def issue(
        self, session: AsyncClientSession, case_ids: Collection[uuid.UUID], now: datetime
    ) -> dict[uuid.UUID, str]:
        """Each case's public key: a new pair unless it has one (a redelivery). One read and
        one write for a batch."""
        query = {"_id": {"$in": [str(case_id) for case_id in case_ids]}}
        found = self.collection.find(query, {"public_key": 1}, session=session)
        issued = {uuid.UUID(doc["_id"]): str(doc["public_key"]) async for doc in found}
        made = {case_id: new_case_key() for case_id in case_ids if case_id not in issued}
        if made:
            pairs = [
                {"_id": str(case_id), "private_key": private, "public_key": public}
                for case_id, (private, public) in made.items()
            ]
            await self.collection.insert_many(
                [{**pair, "issued_at": now} for pair in pairs], session=session
            )
        return issued | {case_id: public for case_id, (_, public) in made.items()}

    async def private_keys(self, case_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        """The keys notify holds among `case_ids`: one read for a batch."""
        cursor = self.collection.find(
            {"_id": {"$in": [str(case_id) for case_id in case_ids]}}, {"private_key": 1}
        )
        return {uuid.UUID(doc["_id"]): bytes(doc["private_key"]) async for doc in cursor}


@dataclass
class Keyring:
    unit_of_work: UnitOfWork
    keys: ContactKeys
    topic: str
    log: Any

    async def on_cases_counted(self, batch: Sequence[Delivery[SupportCaseCounted]]) -> None:
        """A key for every case notify may have to reach a colleague for (not opted out), a
        batch's in one transaction. A redelivery announces the same key again: intake seals
        only what still waits."""
        wanted = [d for d in batch if not d.event.opted_out]

        async def issue(session: AsyncClientSession, now: datetime) -> dict[uuid.UUID, str]:
            return await self.keys.issue(session, {d.event.case_id for d in wanted}, now)

        await self.unit_of_work.run_set(
            issue, [(partial(self._issued, d.event), d.trace) for d in wanted]
        )

    def _issued(
        self, counted: SupportCaseCounted, keys: dict[uuid.UUID, str], now: datetime
    ) -> Announcements:
        return [(self.topic, _issued(counted, keys[counted.case_id], now))]

    async def opened(self, batch: Sequence[CaseContactSealed]) -> list[CaseContactRecorded]:
        """The contact inside each, their keys read at once; one that cannot be read is
        refused with the reason (and a batch then taken one by one, so that only it is
        dead-lettered)."""
        keys = await self.keys.private_keys({sealed.case_id for sealed in batch})
        return [_opened(sealed, keys.get(sealed.case_id)) for sealed in batch]


def _opened(sealed: CaseContactSealed, private: bytes | None) -> CaseContactRecorded:
    if private is None:
        raise RejectedEvent(f"notify holds no key for case {sealed.case_id}")
    try:
        contact = CaseContactRecorded.model_validate_json(
            unseal(private, sealed.case_id, sealed.sealed)
        )
    except (Unsealable, ValidationError) as error:
        raise RejectedEvent(str(error)) from error
    if contact.case_id != sealed.case_id:
        raise RejectedEvent(f"the contact sealed for case {sealed.case_id} is another's")
    return contact


def _issued(counted: SupportCaseCounted, public_key: str, now: datetime) -> ContactKeyIssued:
    return ContactKeyIssued(
        event_id=derived_event_id("contact_key", counted.case_id, public_key),
        case_id=counted.case_id,
        public_key=public_key,
        occurred_at=now,
        producer="notify",
        correlation_id=counted.correlation_id,
        causation_id=counted.event_id,
        hospital_id=counted.hospital_id,
    )
