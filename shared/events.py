"""Event contracts shared by every service: one versioned pydantic model per event.

`IncidentReported` is the public contract for hospital incident systems (it mirrors HL7 FHIR
AdverseEvent where it can) and may only grow compatibly: new fields must be optional. The
internal events share one envelope so that any event can be traced to its incident
(`correlation_id`) and to the event that caused it (`causation_id`).

Personal data travels on as few topics as possible: the colleague's contact details only on
the contacts topic (read by notify alone); the reporting dimensions of a case (`CaseProfile`)
identify nobody and ride on every event reporting counts.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

MAX_PARTICIPANTS = 100
"""More participants than this in one incident is a data error, not an incident."""

HospitalId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
Department = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Email = Annotated[
    str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$", max_length=254)
]
Phone = Annotated[str, StringConstraints(pattern=r"^\+[1-9]\d{6,14}$")]
Pseudonym = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


class Category(StrEnum):
    MEDICATION = "medication"
    FALL = "fall"
    SURGERY = "surgery"
    DIAGNOSIS = "diagnosis"
    TREATMENT = "treatment"
    DEVICE = "device"
    COMMUNICATION = "communication"
    OTHER = "other"


class Harm(StrEnum):
    """AHRQ Common Formats harm scale (the WHO ICPS degrees of harm)."""

    NONE = "none"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"
    DEATH = "death"
    UNKNOWN = "unknown"


class Function(StrEnum):
    NURSE = "nurse"
    PHYSICIAN = "physician"
    RESIDENT = "resident"
    MIDWIFE = "midwife"
    PHARMACIST = "pharmacist"
    PARAMEDIC = "paramedic"
    ALLIED_HEALTH = "allied_health"
    SUPPORT_STAFF = "support_staff"
    MANAGER = "manager"
    OTHER = "other"


class Involvement(StrEnum):
    DIRECT = "direct"
    INDIRECT = "indirect"


class IncidentStatus(StrEnum):
    """FHIR AdverseEvent.status."""

    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    ENTERED_IN_ERROR = "entered-in-error"
    UNKNOWN = "unknown"


class Actuality(StrEnum):
    """FHIR AdverseEvent.actuality: `potential` is a near miss."""

    ACTUAL = "actual"
    POTENTIAL = "potential"


class Contract(BaseModel):
    """Tolerant reader: unknown fields from a newer producer are ignored, never stored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


# --- The public contract: incident.reported v1 -------------------------------------------


class Contact(Contract):
    email: Email | None = None
    phone: Phone | None = None


class Participant(Contract):
    staff_id: Code
    function: Function
    department: Department
    involvement: Involvement = Involvement.DIRECT
    seniority_years: int | None = Field(default=None, ge=0, le=60)
    birth_year: int | None = Field(default=None, ge=1930, le=2015)
    languages: list[LanguageCode] = Field(default_factory=list, max_length=10)
    contact: Contact | None = None


class IncidentReported(Contract):
    event_id: uuid.UUID
    event_type: Literal["incident.reported"]
    schema_version: Literal[1]
    occurred_at: AwareDatetime
    reported_at: AwareDatetime | None = None
    source_system: Code
    hospital_id: HospitalId
    incident_id: Code
    status: IncidentStatus = IncidentStatus.COMPLETED
    actuality: Actuality = Actuality.ACTUAL
    category: Category
    harm: Harm
    calamity: bool = False
    department: Department
    participants: list[Participant] = Field(min_length=1, max_length=MAX_PARTICIPANTS)

    @model_validator(mode="after")
    def _each_professional_once(self) -> Self:
        staff_ids = [p.staff_id for p in self.participants]
        if len(set(staff_ids)) != len(staff_ids):
            raise ValueError("a staff_id appears more than once among the participants")
        return self

    @property
    def incident_key(self) -> str:
        """The Kafka key hospitals publish under, and the correlation id of all that follows."""
        return f"{self.hospital_id}:{self.incident_id}"


# --- Internal events ------------------------------------------------------------------------


class Envelope(Contract):
    event_id: uuid.UUID
    event_type: str
    schema_version: Literal[1] = 1
    occurred_at: AwareDatetime
    producer: str
    correlation_id: str
    causation_id: uuid.UUID | None = None
    hospital_id: HospitalId


class CaseProfile(Contract):
    """What reporting may count a case by: identifies nobody, travels on every case event."""

    hospital_id: HospitalId
    function: Function
    department: Department
    category: Category
    harm: Harm
    calamity: bool
    incident_occurred_at: AwareDatetime

    @property
    def month(self) -> str:
        """The incident's month in the hospital's own time zone, as reported."""
        return self.incident_occurred_at.strftime("%Y-%m")


class Colleague(Contract):
    """The professional a case supports, pseudonymised: what matching needs, nothing more."""

    pseudonym: Pseudonym
    function: Function
    department: Department
    involvement: Involvement
    seniority_years: int | None = None
    birth_year: int | None = None
    languages: list[LanguageCode] = Field(default_factory=list)


class SupportCaseOpened(Envelope):
    event_type: Literal["support.case_opened"] = "support.case_opened"
    case_id: uuid.UUID
    incident_id: Code
    profile: CaseProfile
    colleague: Colleague
    involved_pseudonyms: list[Pseudonym]
    """Everyone involved in the incident: none of them may support this case."""


class CaseContactRecorded(Envelope):
    """How to reach the colleague; published only on the contacts topic, for notify."""

    event_type: Literal["support.case_contact_recorded"] = "support.case_contact_recorded"
    case_id: uuid.UUID
    email: Email | None = None
    phone: Phone | None = None
    languages: list[LanguageCode] = Field(default_factory=list)


class SupporterContact(Contract):
    supporter_id: Code
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    email: Email
    phone: Phone | None = None
    language: LanguageCode = "nl"


class ScoreItem(Contract):
    """One reason in the explanation of a match, as a coordinator reads it."""

    rule: str
    value: float
    detail: str


class PeerAssigned(Envelope):
    event_type: Literal["support.peer_assigned"] = "support.peer_assigned"
    assignment_id: uuid.UUID
    case_id: uuid.UUID
    attempt: int = Field(ge=1)
    profile: CaseProfile
    supporter: SupporterContact
    explanation: list[ScoreItem]


class NoPeerAvailable(Envelope):
    event_type: Literal["support.no_peer_available"] = "support.no_peer_available"
    case_id: uuid.UUID
    attempt: int = Field(ge=1)
    profile: CaseProfile
    rejections: dict[str, int]
    """How many supporters each rule turned away: why nobody fits, without naming anyone."""


class PeerNotified(Envelope):
    event_type: Literal["support.peer_notified"] = "support.peer_notified"
    assignment_id: uuid.UUID
    case_id: uuid.UUID
    profile: CaseProfile
    channel: Literal["email", "sms"]
    notified_at: datetime


AssignmentOutcome = Annotated[PeerAssigned | NoPeerAvailable, Field(discriminator="event_type")]
"""What the assignments topic carries."""

CaseEvent = SupportCaseOpened | PeerAssigned | NoPeerAvailable | PeerNotified
"""Every event about one case that carries the case's profile (what reporting counts)."""


def derived_event_id(*parts: object) -> uuid.UUID:
    """A deterministic id, so that a re-published event is recognisably the same event."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "peer-support:" + "/".join(str(p) for p in parts))
