"""Intake's own data: one record per incident (and per support request), the staff's
outreach preferences, and contact details waiting for their case's key. Pseudonyms only,
never names or staff ids."""

import uuid
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from pymongo import ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.intake.cases import Choice, IncidentRecord, TrackedCase
from shared.errors import RetryLater
from shared.events import CaseContactRecorded, CaseProfile, Exclusions
from shared.mongo import Document
from shared.pseudonyms import PseudonymKeys, settled_incident


class IncidentRecords:
    """By incident key until the incident settles; then by `settled_incident`, under which a
    late change is still recognised (under any key in use) and the incident is not named."""

    def __init__(self, database: AsyncDatabase[Document], keys: PseudonymKeys) -> None:
        self.collection = database["incidents"]
        self.keys = keys

    async def get(self, session: AsyncClientSession, key: str) -> IncidentRecord | None:
        settled = [settled_incident(k, key) for k in self.keys.by_id().values()]
        doc = await self.collection.find_one({"_id": {"$in": [key, *settled]}}, session=session)
        return _record(doc) if doc else None

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("settled", 1), ("changed_at", 1)])

    async def save(
        self,
        session: AsyncClientSession,
        key: str,
        record: IncidentRecord,
        previous: IncidentRecord | None,
        now: datetime,
    ) -> None:
        """Write the record if nobody changed it since `previous` was read."""
        doc = {**_document(record), "changed_at": now}
        if previous is None:
            try:
                await self.collection.insert_one({"_id": key, **doc}, session=session)
            except DuplicateKeyError as error:
                raise RetryLater(f"incident {key} was recorded meanwhile") from error
            return
        result = await self.collection.replace_one(
            {"_id": key, "revision": previous.revision}, doc, session=session
        )
        if result.matched_count != 1:
            raise RetryLater(f"incident {key} changed meanwhile")

    async def settle(self, unchanged_since: datetime) -> int:
        """Forget who was involved in every incident unchanged since then: its cases'
        pseudonyms and ids, those involved and investigating, its reference, and its own id
        (kept as `settled_incident`). What stays says only that it settled."""
        due = self.collection.find(
            {"settled": {"$ne": True}, "changed_at": {"$lt": unchanged_since}}
        )
        settled = 0
        async for doc in due:
            marker = {**doc, "settled": True, "exclusions": None, "cases": [], "reference": None}
            marker["_id"] = settled_incident(self.keys.current, doc["_id"])
            await self.collection.replace_one({"_id": marker["_id"]}, marker, upsert=True)
            await self.collection.delete_one({"_id": doc["_id"]})
            settled += 1
        return settled


class WaitingContacts:
    """A colleague's contact details wait here for notify's key for their case, so that they
    never reach a topic readable: for moments, or while notify is down. A contact whose key
    never came is forgotten when its incident settles."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["contacts_waiting"]

    async def hold(
        self, session: AsyncClientSession, contacts: Sequence[CaseContactRecorded], now: datetime
    ) -> None:
        """An incident's contacts, in one write."""
        if not contacts:
            return
        await self.collection.bulk_write(
            [
                ReplaceOne(
                    {"_id": str(contact.case_id)},
                    {"contact": contact.model_dump(mode="json"), "since": now},
                    upsert=True,
                )
                for contact in contacts
            ],
            session=session,
        )

    async def take(
        self, session: AsyncClientSession, case_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, CaseContactRecorded]:
        """Those of `case_ids` waiting, read and deleted in the transaction, one read and one
        delete for a batch: as safe as a find-and-delete, which SecantusDB (the local
        server) carries out by scanning the collection."""
        ids = [str(case_id) for case_id in case_ids]
        found = self.collection.find({"_id": {"$in": ids}}, session=session)
        taken = {
            uuid.UUID(doc["_id"]): CaseContactRecorded.model_validate(doc["contact"])
            async for doc in found
        }
        if taken:
            gone = {"_id": {"$in": [str(case_id) for case_id in taken]}}
            await self.collection.delete_many(gone, session=session)
        return taken

    async def forget(self, waiting_since: datetime) -> int:
        result = await self.collection.delete_many({"since": {"$lt": waiting_since}})
        return result.deleted_count


class Preferences:
    """Standing outreach choices by pseudonym; the latest choice made wins."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["outreach_preferences"]

    async def record(
        self, pseudonym: str, outreach: str, set_at: datetime, choice: Choice | None = None
    ) -> bool:
        """Returns whether it changed what is known (an older choice arriving late does not)."""
        choice = choice or Choice()
        fields = {
            "outreach": outreach,
            "set_at": set_at,
            "channel": choice.channel,
            "language": choice.language,
        }
        result = await self.collection.update_one(
            {"_id": pseudonym, "set_at": {"$lt": set_at}}, {"$set": fields}
        )
        if result.matched_count:
            return True
        try:
            await self.collection.insert_one({"_id": pseudonym, **fields})
        except DuplicateKeyError:
            return False
        return True

    async def rekey(self, retired: list[str], today: str) -> None:
        """The latest choice made under a retired pseudonym key, kept under today's pseudonym
        (unless a later one is there), and the retired ones forgotten."""
        latest = await self.collection.find_one({"_id": {"$in": retired}}, sort=[("set_at", -1)])
        if latest is not None:
            made = Choice(latest.get("channel"), latest.get("language"))
            await self.record(today, latest["outreach"], latest["set_at"], made)
            await self.collection.delete_many({"_id": {"$in": retired}})

    async def stated(
        self, session: AsyncClientSession, pseudonyms: Iterable[str]
    ) -> tuple[set[str], dict[str, Choice]]:
        """Who among them declined outreach, and how those who welcome it would rather be
        reached: one read."""
        declined, welcome = set(), {}
        found = self.collection.find({"_id": {"$in": list(pseudonyms)}}, session=session)
        async for doc in found:
            if doc["outreach"] == "declined":
                declined.add(doc["_id"])
            elif doc["outreach"] == "welcome":
                welcome[doc["_id"]] = Choice(doc.get("channel"), doc.get("language"))
        return declined, welcome


def _document(record: IncidentRecord) -> Document:
    return {
        "revision": record.revision,
        "withdrawn": record.withdrawn,
        "debrief_suggested": record.debrief_suggested,
        "reference": record.reference,
        "exclusions": record.exclusions.model_dump(mode="json") if record.exclusions else None,
        "cases": [
            {
                "pseudonym": pseudonym,
                "case_id": str(case.case_id),
                "open": case.open,
                "profile": case.profile.model_dump(mode="json"),
                "tagged_with": case.tagged_with,
            }
            for pseudonym, case in record.cases.items()
        ],
    }


def _record(doc: Document) -> IncidentRecord:
    return IncidentRecord(
        revision=doc["revision"],
        withdrawn=doc["withdrawn"],
        debrief_suggested=doc["debrief_suggested"],
        reference=doc.get("reference"),
        settled=doc.get("settled", False),
        exclusions=Exclusions.model_validate(doc["exclusions"]) if doc["exclusions"] else None,
        cases={
            case["pseudonym"]: TrackedCase(
                case_id=uuid.UUID(case["case_id"]),
                profile=CaseProfile.model_validate(case["profile"]),
                open=case["open"],
                tagged_with=case.get("tagged_with"),
            )
            for case in doc["cases"]
        },
    )
