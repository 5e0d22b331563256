"""Events and roster entries as tests need them: valid by default, changed where a test says."""

import uuid
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from aiokafka import ConsumerRecord

from services.intake.cases import IntakePolicy, Occasion, Reconciled, reconcile
from services.intake.directory import StaffMember
from services.matching.policy import Case, Policy, assignment_for, rank
from services.matching.roster import RosterEntry
from services.matching.supporters import Supporter
from shared.batches import Delivery
from shared.events import (
    AboutCase,
    CaseContactRecorded,
    ContactKeyIssued,
    Function,
    IncidentReported,
    PeerAssigned,
    SupportCaseOpened,
    SupporterContact,
    SupporterReachable,
)
from shared.pseudonyms import PseudonymKeys, pseudonymise

E = TypeVar("E")

PSEUDONYM_KEY = b"test-pseudonym-key-0123456789"
KEYS = PseudonymKeys(PSEUDONYM_KEY)
LINK_SECRET = "test-link-secret-0123456789"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
"""A Friday."""


def participant(staff_id: str, department: str = "ICU", **changes: Any) -> dict[str, Any]:
    return {
        "staff_id": staff_id,
        "function": "nurse",
        "department": department,
        "involvement": "direct",
        "seniority_years": 4,
        "birth_year": 1994,
        "languages": ["nl", "en"],
        "contact": {"email": f"{staff_id.lower()}@zh-a.example", "phone": "+31612345678"},
        **changes,
    }


def incident_json(
    incident_id: str = "INC-2026-000123",
    participants: list[dict[str, Any]] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """The example of the public contract, as a hospital system would send it."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "incident.reported",
        "schema_version": 1,
        "occurred_at": "2026-11-20T03:12:00+01:00",
        "reported_at": "2026-11-20T08:40:00+01:00",
        "source_system": "epd-zh-a",
        "hospital_id": "ZH-A",
        "incident_id": incident_id,
        "status": "completed",
        "actuality": "actual",
        "category": "medication",
        "harm": "severe",
        "calamity": True,
        "department": "ICU",
        "participants": participants
        if participants is not None
        else [participant("E12345"), participant("E23456", department="ED")],
        **changes,
    }


def hospital_event(event_type: str, hospital_id: str = "ZH-A", **fields: Any) -> dict[str, Any]:
    """The envelope of any event a hospital's systems send, around these fields."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": "2026-11-21T10:00:00+01:00",
        "source_system": f"epd-{hospital_id.lower()}",
        "hospital_id": hospital_id,
        **fields,
    }


def withdrawal_json(
    incident_id: str = "INC-2026-000123", hospital_id: str = "ZH-A", **changes: Any
) -> dict[str, Any]:
    return hospital_event(
        "incident.withdrawn", hospital_id, incident_id=incident_id, **{"revision": 1, **changes}
    )


def outreach_choice_json(staff_id: str, outreach: str, **changes: Any) -> dict[str, Any]:
    """A professional's choice to be approached or not, as the intranet sends it."""
    return hospital_event(
        "staff.outreach_preference", staff_id=staff_id, outreach=outreach, **changes
    )


def incident(**changes: Any) -> IncidentReported:
    return IncidentReported.model_validate(incident_json(**changes))


def reconciled(event: dict[str, Any] | None = None, **policy: Any) -> Reconciled:
    """What intake makes of an incident (the example one unless given) seen for the first time."""
    occasion = Occasion.of_incident(IncidentReported.model_validate(event or incident_json()))
    return reconcile(None, occasion, KEYS, set(), IntakePolicy(**policy), NOW)


def opened_cases(event: dict[str, Any] | None = None) -> list[SupportCaseOpened]:
    return [e for e in reconciled(event).cases if isinstance(e, SupportCaseOpened)]


def case_to_match(opened: SupportCaseOpened, tried: frozenset[str] = frozenset()) -> Case:
    return Case.of(opened, tried)


def supporter(supporter_id: str, **changes: Any) -> Supporter:
    """A trained, available nurse from Cardiology with room for three cases."""
    contact = SupporterContact(
        supporter_id=supporter_id,
        display_name=f"Supporter {supporter_id}",
        email=f"{supporter_id.lower()}@zh-a.example",
        language=changes.pop("language", "nl"),
    )
    fields: dict[str, Any] = {
        "contact": contact,
        "hospital_id": "ZH-A",
        "pseudonym": pseudonymise(PSEUDONYM_KEY, "ZH-A", f"staff-of-{supporter_id}"),
        "function": Function.NURSE,
        "department": "Cardiology",
        "max_open_cases": 3,
        "languages": frozenset({"nl"}),
        "trained_on": date(2025, 3, 1),
        "seniority_years": 10,
        "birth_year": 1990,
        "last_assigned_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return Supporter(**(fields | changes))


def roster_entry(
    hospital: str, name: str, staff_id: str, department: str, **changes: Any
) -> RosterEntry:
    """A row of a hospital's roster file: a nurse trained in January 2025."""
    fields: dict[str, Any] = {
        "supporter_id": f"{hospital}-{name}",
        "hospital_id": hospital,
        "staff_id": staff_id,
        "display_name": f"Supporter {name}",
        "email": f"{name.lower()}@{hospital.lower()}.example",
        "function": "nurse",
        "department": department,
        "max_open_cases": 10,
        "trained_on": date(2025, 1, 15),
    }
    return RosterEntry(**(fields | changes))


def assignment_and_contacts(
    language: str = "nl", **supporter_changes: Any
) -> tuple[PeerAssigned, SupporterContact, CaseContactRecorded]:
    """The example incident's first case offered to supporter P1, how to reach P1 (from the
    roster), and the colleague's contact."""
    intake = reconciled()
    case = case_to_match(intake.cases[0])  # type: ignore[arg-type]
    peer = supporter("P1", language=language, **supporter_changes)
    candidate = rank(case, [peer], Policy(), NOW).candidates[0]
    assigned = assignment_for(case, candidate, 1, Policy(), NOW, case.case_id)
    return assigned, peer.contact, intake.contacts[0]


def reachable(supporter: SupporterContact, hospital: str = "ZH-A") -> SupporterReachable:
    """How to reach a supporter, as the roster loader tells notify."""
    return SupporterReachable(
        event_id=uuid.uuid4(),
        occurred_at=NOW,
        producer="roster-import",
        correlation_id=supporter.supporter_id,
        hospital_id=hospital,
        supporter=supporter,
    )


def contact_key(case: AboutCase, public_key: str) -> ContactKeyIssued:
    """notify's key for `case`, as it announces it."""
    return ContactKeyIssued(
        event_id=uuid.uuid4(),
        case_id=case.case_id,
        public_key=public_key,
        occurred_at=case.occurred_at,
        producer="notify",
        correlation_id=case.correlation_id,
        causation_id=case.event_id,
        hospital_id=case.hospital_id,
    )


def delivered(event: E, topic: str = "support.topic.v1", offset: int = 0) -> Delivery[E]:
    """An event as a batch brings it, outside any trace."""
    record = ConsumerRecord(topic, 0, offset, 0, 0, None, b"", None, 0, 0, [])
    return Delivery(record, event, {})


def staff_member(staff_id: str, **changes: Any) -> StaffMember:
    """Someone in ZH-A's staff directory: a nurse of the ICU, at their work address."""
    fields = {
        "hospital_id": "ZH-A",
        "staff_id": staff_id,
        "email": f"{staff_id.lower()}@zh-a.example",
        "function": "nurse",
        "department": "ICU",
    }
    return StaffMember.model_validate(fields | changes)
