"""Opening support cases from a reported incident: pure, no I/O.

One case per involved professional, because each may need support of their own. The case id
is derived from hospital, incident and pseudonym, so the same incident reported twice yields
the same cases and opens nothing new.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from shared.events import (
    CaseContactRecorded,
    CaseProfile,
    Colleague,
    IncidentReported,
    IncidentStatus,
    Participant,
    SupportCaseOpened,
    derived_event_id,
)
from shared.pseudonyms import pseudonymise

PRODUCER = "intake"


@dataclass(frozen=True)
class OpenedCase:
    case_id: uuid.UUID
    pseudonym: str
    case_opened: SupportCaseOpened
    contact: CaseContactRecorded


def case_id_for(hospital_id: str, incident_id: str, pseudonym: str) -> uuid.UUID:
    return derived_event_id("case", hospital_id, incident_id, pseudonym)


def needs_support(incident: IncidentReported) -> bool:
    """An incident entered in error happened to nobody."""
    return incident.status is not IncidentStatus.ENTERED_IN_ERROR


def open_cases(
    incident: IncidentReported, pseudonym_key: bytes, opened_at: datetime
) -> list[OpenedCase]:
    pseudonyms = [
        pseudonymise(pseudonym_key, incident.hospital_id, p.staff_id) for p in incident.participants
    ]
    return [
        _open_case(incident, participant, pseudonym, pseudonyms, opened_at)
        for participant, pseudonym in zip(incident.participants, pseudonyms, strict=True)
    ]


def _open_case(
    incident: IncidentReported,
    participant: Participant,
    pseudonym: str,
    involved: list[str],
    opened_at: datetime,
) -> OpenedCase:
    case_id = case_id_for(incident.hospital_id, incident.incident_id, pseudonym)
    envelope = {
        "occurred_at": opened_at,
        "producer": PRODUCER,
        "correlation_id": incident.incident_key,
        "causation_id": incident.event_id,
        "hospital_id": incident.hospital_id,
    }
    contact = participant.contact
    return OpenedCase(
        case_id=case_id,
        pseudonym=pseudonym,
        case_opened=SupportCaseOpened(
            event_id=derived_event_id("case_opened", case_id),
            case_id=case_id,
            incident_id=incident.incident_id,
            profile=CaseProfile(
                hospital_id=incident.hospital_id,
                function=participant.function,
                department=participant.department,
                category=incident.category,
                harm=incident.harm,
                calamity=incident.calamity,
                incident_occurred_at=incident.occurred_at,
            ),
            colleague=Colleague(
                pseudonym=pseudonym,
                function=participant.function,
                department=participant.department,
                involvement=participant.involvement,
                seniority_years=participant.seniority_years,
                birth_year=participant.birth_year,
                languages=participant.languages,
            ),
            involved_pseudonyms=involved,
            **envelope,
        ),
        contact=CaseContactRecorded(
            event_id=derived_event_id("case_contact", case_id),
            case_id=case_id,
            email=contact.email if contact else None,
            phone=contact.phone if contact else None,
            languages=participant.languages,
            **envelope,
        ),
    )
