"""Event contracts shared by every service: one versioned pydantic model per event.

`IncidentReported` is the public contract for hospital incident systems (it mirrors HL7 FHIR
AdverseEvent where it can) and may only grow compatibly: new fields must be optional. The
internal events share one envelope so that any event can be traced to its incident
(`correlation_id`) and to the event that caused it (`causation_id`).

Personal data travels on as few topics as possible: the colleague's contact details only on
the contacts topic, sealed to a key of the case's own that notify alone holds; the reporting
dimensions of a case (`CaseProfile`) identify nobody and ride on every event reporting counts.
"""

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

from shared.pseudonyms import key_fingerprint, tagged

MAX_PARTICIPANTS = 100
"""More participants than this in one incident is a data error, not an incident."""
MAX_INVESTIGATORS = 50

HospitalId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
Department = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Email = Annotated[
    str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$", max_length=254)
]
Phone = Annotated[str, StringConstraints(pattern=r"^\+[1-9]\d{6,14}$")]
Pseudonym = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
"""A pseudonym key's fingerprint: names the key without giving it away."""

# Every number, string, list and date a contract accepts is bounded: a value no service could
# store (an integer beyond BSON's, a date that overflows on its way to UTC) is a contract
# violation, dead-lettered on the first attempt instead of failing a handler again and again.
EARLIEST_YEAR = 1900
LATEST_YEAR = 2200
MAX_REVISION = 2**53
"""Integers beyond this lose precision in JavaScript readers of the JSON."""
MAX_COUNT = 1_000_000
MAX_POINTS = 1_000_000.0


def _in_era(value: date) -> date:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"year {value.year} is outside {EARLIEST_YEAR}-{LATEST_YEAR}")
    return value


def _instant_in_era(value: datetime) -> datetime:
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("the time cannot be expressed in UTC") from error
    _in_era(in_utc)
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_instant_in_era)]
Day = Annotated[date, AfterValidator(_in_era)]
Revision = Annotated[int, Field(ge=0, le=MAX_REVISION)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Points = Annotated[float, Field(ge=-MAX_POINTS, le=MAX_POINTS, allow_inf_nan=False)]
Label = Annotated[str, StringConstraints(max_length=64)]
Sentence = Annotated[str, StringConstraints(max_length=500)]
Reason = Annotated[str, StringConstraints(max_length=2000)]
Step = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.]{1,64}$")]
CorrelationId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


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
    team: Code | None = None
    line_manager_staff_id: Code | None = None
    involvement: Involvement = Involvement.DIRECT
    seniority_years: int | None = Field(default=None, ge=0, le=60)
    birth_year: int | None = Field(default=None, ge=1930, le=2015)
    languages: list[LanguageCode] = Field(default_factory=list, max_length=10)
    contact: Contact | None = None


class IncidentFacts(Contract):
    """An incident as the hospital's system now describes it: every report and update is whole,
    so that any one of them, arriving in any order, says all there is to know."""

    event_id: uuid.UUID
    schema_version: Literal[1]
    occurred_at: Instant
    reported_at: Instant | None = None
    source_system: Code
    hospital_id: HospitalId
    incident_id: Code
    revision: Revision = 0
    """Grows with every change at the source (FHIR `meta.versionId`): the highest one wins."""
    status: IncidentStatus = IncidentStatus.COMPLETED
    actuality: Actuality = Actuality.ACTUAL
    category: Category
    harm: Harm
    calamity: bool = False
    department: Department
    participants: list[Participant] = Field(min_length=1, max_length=MAX_PARTICIPANTS)
    investigators: list[Code] = Field(default_factory=list, max_length=MAX_INVESTIGATORS)
    """Staff ids of the incident's investigation team: none of them may support its staff."""

    @model_validator(mode="after")
    def _each_professional_once(self) -> Self:
        staff_ids = [p.staff_id for p in self.participants]
        if len(set(staff_ids)) != len(staff_ids):
            raise ValueError("a staff_id appears more than once among the participants")
        return self

    @property
    def incident_key(self) -> str:
        """The Kafka key hospitals publish under, and the correlation id of all that follows."""
        return incident_key(self.hospital_id, self.incident_id)


class IncidentReported(IncidentFacts):
    event_type: Literal["incident.reported"]


class IncidentUpdated(IncidentFacts):
    """Participants added or removed, harm re-graded, a calamity declared: the whole incident
    again, at a higher revision."""

    event_type: Literal["incident.updated"]
    revision: Revision = Field(ge=1)


class IncidentWithdrawn(Contract):
    """The report was a mistake: the incident happened to nobody. Final."""

    event_id: uuid.UUID
    event_type: Literal["incident.withdrawn"]
    schema_version: Literal[1]
    occurred_at: Instant
    source_system: Code
    hospital_id: HospitalId
    incident_id: Code
    revision: Revision = Field(ge=1)

    @property
    def incident_key(self) -> str:
        return incident_key(self.hospital_id, self.incident_id)


IncidentEvent = Annotated[
    IncidentReported | IncidentUpdated | IncidentWithdrawn, Field(discriminator="event_type")
]
"""What hospital incident systems publish on the incidents topic, keyed by `incident_key`."""


def incident_key(hospital_id: str, incident_id: str) -> str:
    return f"{hospital_id}:{incident_id}"


# --- The public contract: staff events v1 ----------------------------------------------------


class StaffEvent(Contract):
    event_id: uuid.UUID
    event_type: Label
    schema_version: Literal[1]
    occurred_at: Instant
    source_system: Code
    hospital_id: HospitalId

    @property
    def correlation_id(self) -> str:
        """The Kafka key: the hospital, which names nobody."""
        return self.hospital_id


class SupportPreferences(Contract):
    """What the professional would like of their supporter; each a soft rule in matching."""

    department: Literal["own", "other"] | None = None
    """A supporter from their own department, or from another."""
    function: Function | None = None
    language: LanguageCode | None = None
    supporter_id: Code | None = None
    """A supporter they name from the hospital's roster."""


class SupportRequested(StaffEvent):
    """A professional asks for support, or a colleague asks on their behalf, without an
    incident report (an intranet form). Any free text the form had is not part of it; who
    referred a colleague is never part of it."""

    event_type: Literal["support.requested"]
    request_id: Code
    requested_by: Literal["self", "colleague"] = "self"
    professional: Participant
    preferences: SupportPreferences = Field(default_factory=SupportPreferences)


class OutreachPreferenceSet(StaffEvent):
    """A professional's standing choice about being approached after incidents."""

    event_type: Literal["staff.outreach_preference"]
    staff_id: Code
    outreach: Literal["welcome", "declined"]
    channel: Literal["email", "phone"] | None = None
    """How they would rather be reached; their supporter is told."""
    language: LanguageCode | None = None
    """The language they would rather be supported in."""


StaffMessage = Annotated[
    SupportRequested | OutreachPreferenceSet, Field(discriminator="event_type")
]
"""What staff-facing systems publish on the staff topic."""


# --- Internal events ------------------------------------------------------------------------


class Envelope(Contract):
    event_id: uuid.UUID
    event_type: Label
    schema_version: Literal[1] = 1
    occurred_at: Instant
    producer: Code
    correlation_id: CorrelationId
    causation_id: uuid.UUID | None = None
    hospital_id: HospitalId


class CaseOrigin(StrEnum):
    INCIDENT = "incident"
    REQUEST = "request"
    """The professional asked for support themselves, without an incident: counted with
    category `other` and harm `unknown`."""
    REFERRAL = "referral"
    """A colleague was concerned and asked on their behalf; who asked is never passed on."""


class CaseProfile(Contract):
    """What reporting may count a case by: identifies nobody, travels on every case event."""

    hospital_id: HospitalId
    function: Function
    department: Department
    category: Category
    harm: Harm
    calamity: bool
    incident_occurred_at: Instant
    """The incident's day: midnight of it in the hospital's own zone, as reported. Never its
    time, which beside the incident system's records would point at the incident."""
    origin: CaseOrigin = CaseOrigin.INCIDENT

    @property
    def urgent(self) -> bool:
        """Symptoms last far longer after permanent harm or death: these cases are reached
        first and fastest, and their escalations reach a coordinator at once."""
        return self.calamity or self.harm in (Harm.SEVERE, Harm.DEATH)

    @property
    def month(self) -> str:
        """The incident's month in the hospital's own time zone, as reported."""
        return self.incident_occurred_at.strftime("%Y-%m")


class Colleague(Contract):
    """The professional a case supports, pseudonymised: what matching needs, nothing more."""

    pseudonym: Pseudonym
    function: Function
    department: Department
    team: Code | None = None
    line_manager_pseudonym: Pseudonym | None = None
    involvement: Involvement
    seniority_years: int | None = Field(default=None, ge=0, le=60)
    birth_year: int | None = Field(default=None, ge=1930, le=2015)
    languages: list[LanguageCode] = Field(default_factory=list, max_length=10)


class Exclusions(Contract):
    """Who may never support the case: everyone involved, everyone investigating."""

    involved_pseudonyms: list[Pseudonym] = Field(max_length=MAX_PARTICIPANTS)
    investigator_pseudonyms: list[Pseudonym] = Field(
        default_factory=list, max_length=MAX_INVESTIGATORS
    )
    incident_size: int = Field(default=1, ge=1, le=MAX_PARTICIPANTS)
    """Professionals involved in the incident: large incidents cap each supporter's share."""
    salt: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] | None = None
    """The case's salt. Every pseudonym on a case's events is `tagged` with it, so the
    topic holds no one's pseudonym itself, and a person's cases cannot be linked there;
    matching tags a supporter's pseudonym the same way to compare. None: events from before
    salts, with pseudonyms as they are."""
    key_id: KeyId | None = None
    """The pseudonym key the case was opened with, for all its life: matching compares with
    the supporter's pseudonym under it. None: events from before key ids (today's key)."""
    tag_key_id: KeyId | None = None
    """The fingerprint of the `EXCLUSION_KEY` the tags were made with; a matching without that
    key refuses every supporter rather than guess. None: tagged with the salt alone."""

    def for_case(self, salt: str, key_id: str, tag_key: bytes | None) -> "Exclusions":
        return Exclusions(
            involved_pseudonyms=[tagged(salt, p, tag_key) for p in self.involved_pseudonyms],
            investigator_pseudonyms=[
                tagged(salt, p, tag_key) for p in self.investigator_pseudonyms
            ],
            incident_size=self.incident_size,
            salt=salt,
            key_id=key_id,
            tag_key_id=key_fingerprint(tag_key) if tag_key else None,
        )


C = TypeVar("C", bound="AboutCase")


class AboutCase(Envelope):
    """What every event about one case carries: the case and the profile reporting counts it
    by."""

    case_id: uuid.UUID
    profile: CaseProfile

    def counted(self) -> "AboutCase | None":
        """This event as reporting counts it, on reporting's own topics; None when reporting
        counts nothing of it. `UnitOfWork` announces it with the event, in one transaction."""
        return None

    def _as_counted(self, kind: type[C], event_id: uuid.UUID, **fields: Any) -> C:
        envelope = self.model_dump(include=set(Envelope.model_fields) - {"event_id", "event_type"})
        return kind(
            **envelope, event_id=event_id, case_id=self.case_id, profile=self.profile, **fields
        )

    def _step_counted(self, kind: type[C], **fields: Any) -> C:
        """`kind` made of this event's own fields of the same names (and `fields`): a count
        can hold nothing its event does not."""
        named = set(kind.model_fields) - set(StepCounted.model_fields) - set(fields)
        return self._as_counted(
            kind,
            derived_event_id("counted", self.event_id),
            counts=self.event_id,
            **{name: getattr(self, name) for name in named},
            **fields,
        )


class SupportCaseOpened(AboutCase):
    """Correlated by the case's own id: nothing after intake names the incident, so an
    investigator reading the topics cannot tell who of an incident was supported."""

    event_type: Literal["support.case_opened"] = "support.case_opened"
    incident_id: Code | None = None
    """Only on events from before cases were told apart from their incident: never sent."""
    incident_ref: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] | None = None
    """Random, the same for all the incident's cases (matching caps a supporter's share of a
    large incident by it); intake forgets it when the incident settles."""
    colleague: Colleague
    exclusions: Exclusions
    preferences: SupportPreferences = Field(default_factory=SupportPreferences)
    opted_out: bool = False
    """The colleague declined outreach beforehand: counted, but nobody is sent."""

    def counted(self) -> "SupportCaseCounted":
        """The same opening as reporting counts it, nothing about whom."""
        return self._as_counted(
            SupportCaseCounted,
            derived_event_id("case_counted", self.case_id),
            opted_out=self.opted_out,
        )


class SupportCaseCounted(AboutCase):
    """A case opened, as reporting counts it: what happened and where, not to whom. On a
    topic of its own (`support.case_counts.v1`), so that reporting reads no pseudonym, team,
    birth year or line manager of anyone."""

    event_type: Literal["support.case_counted"] = "support.case_counted"
    opted_out: bool = False


class SupportCaseUpdated(AboutCase):
    """The incident changed under an open case: harm re-graded, calamity declared, someone
    added to the involved or the investigators."""

    event_type: Literal["support.case_updated"] = "support.case_updated"
    exclusions: Exclusions


class CloseReason(StrEnum):
    INCIDENT_WITHDRAWN = "incident_withdrawn"
    PARTICIPANT_REMOVED = "participant_removed"


class SupportCaseClosed(AboutCase):
    event_type: Literal["support.case_closed"] = "support.case_closed"
    reason: CloseReason


class GroupDebriefSuggested(Envelope):
    """Many staff in one incident: the coordinator may prefer one group debriefing."""

    event_type: Literal["support.group_debrief_suggested"] = "support.group_debrief_suggested"
    incident_id: Code
    professionals_involved: int = Field(ge=1, le=MAX_PARTICIPANTS)
    incident_ref: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] | None = None
    """The incident's cases carry this reference: the debriefing lists them for the
    coordinator who plans it. None on events from before it was sent."""


class GroupDebriefRecorded(Envelope):
    """A coordinator planned or held the group debriefing of a large incident."""

    event_type: Literal["support.group_debrief_recorded"] = "support.group_debrief_recorded"
    incident_id: Code
    planned_on: Day | None = None
    held_on: Day | None = None
    participants: int | None = Field(default=None, ge=1, le=MAX_PARTICIPANTS)
    facilitator_id: Code | None = None
    """The supporter from the roster who led it."""
    decided_not_to: bool = False
    """The coordinator decided not to hold one (those involved are supported one by one)."""


class CaseContactRecorded(Envelope):
    """How to reach the colleague: intake's and notify's, travelling only sealed
    (`CaseContactSealed`) on the contacts topic."""

    event_type: Literal["support.case_contact_recorded"] = "support.case_contact_recorded"
    case_id: uuid.UUID
    email: Email | None = None
    phone: Phone | None = None
    languages: list[LanguageCode] = Field(default_factory=list, max_length=10)
    preferred_channel: Literal["email", "phone"] | None = None


class ContactKeyIssued(Envelope):
    """notify's public key for one case's contact details: intake seals them to it, and the
    private half, kept by notify alone, is deleted when the case is erased."""

    event_type: Literal["support.contact_key_issued"] = "support.contact_key_issued"
    case_id: uuid.UUID
    public_key: Annotated[str, StringConstraints(min_length=44, max_length=44)]
    """X25519, base64."""


class CaseContactSealed(Envelope):
    """A `CaseContactRecorded` sealed to its case's key: what the contacts topic carries, so
    that once notify has erased the case, no retained or replayed copy can be read."""

    event_type: Literal["support.case_contact_sealed"] = "support.case_contact_sealed"
    case_id: uuid.UUID
    sealed: Annotated[str, StringConstraints(min_length=1, max_length=8192)]
    """HPKE (X25519, HKDF-SHA256, AES-256-GCM) of the contact event's JSON, base64."""


CaseNews = Annotated[
    SupportCaseOpened | SupportCaseUpdated | SupportCaseClosed | GroupDebriefSuggested,
    Field(discriminator="event_type"),
]
"""What the cases topic carries, from intake."""


# --- The roster ------------------------------------------------------------------------------


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class Absence(Contract):
    first_day: Day
    last_day: Day

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        if self.last_day < self.first_day:
            raise ValueError(f"absence ends ({self.last_day}) before it starts ({self.first_day})")
        return self


class SupporterContact(Contract):
    supporter_id: Code
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    email: Email
    phone: Phone | None = None
    language: LanguageCode = "nl"
    """The language messages to the supporter are written in."""
    channel: Literal["email", "sms"] = "email"
    """How the supporter prefers to be reached; the other one is the fallback."""


class SupporterProfile(SupporterContact):
    """A trained peer supporter as the coordinator keeps them; the staff id only pseudonymised."""

    hospital_id: HospitalId
    pseudonym: Pseudonym
    """Made with today's pseudonym key."""
    pseudonyms: dict[KeyId, Pseudonym] = Field(default_factory=dict, max_length=6)
    """Made with each key in use (today's and those it replaced), by key id: a case opened
    with a key before a rotation is compared with the supporter's pseudonym under that key."""
    function: Function
    department: Department
    team: Code | None = None
    seniority_years: int | None = Field(default=None, ge=0, le=60)
    birth_year: int | None = Field(default=None, ge=1930, le=2015)
    languages: list[LanguageCode] = Field(default_factory=list, max_length=10)
    """Languages the supporter can support a colleague in."""
    trained_on: Day | None = None
    max_open_cases: int = Field(default=3, ge=1, le=50)
    available_days: list[Weekday] = Field(default_factory=list, max_length=7)
    """Days the supporter takes new cases; empty means every day."""
    absences: list[Absence] = Field(default_factory=list, max_length=50)


class SupporterRegistered(Envelope):
    event_type: Literal["supporter.registered"] = "supporter.registered"
    supporter: SupporterProfile


class SupporterUpdated(Envelope):
    event_type: Literal["supporter.updated"] = "supporter.updated"
    supporter: SupporterProfile


class SupporterDeactivated(Envelope):
    """Takes no new cases; the cases already taken stay theirs."""

    event_type: Literal["supporter.deactivated"] = "supporter.deactivated"
    supporter_id: Code


class SupporterReachable(Envelope):
    """How notify reaches a supporter, on a topic of its own (`roster.contacts.v1`): notify
    reads neither the supporter's pseudonyms nor their profile, and the roster's topic, which
    carries both, is matching's alone."""

    event_type: Literal["supporter.reachable"] = "supporter.reachable"
    supporter: SupporterContact


RosterChange = Annotated[
    SupporterRegistered | SupporterUpdated | SupporterDeactivated,
    Field(discriminator="event_type"),
]
"""What the roster topic carries, keyed by supporter id, from the coordinator's import."""


# --- Assignments and responses ---------------------------------------------------------------


class ScoreItem(Contract):
    """One reason in the explanation of a match, as a coordinator reads it.

    `points` is what the reason added to the score (0 for a hard rule that was met); `terms`
    are the facts behind `detail`, so that a message can word the reason in any language.
    """

    rule: Label
    points: Points
    detail: Sentence
    terms: dict[Label, Sentence] = Field(default_factory=dict, max_length=20)


class PassedOver(Contract):
    """The supporter the colleague asked for by name could not take the case, and why: for
    the coordinator, never for the supporter who got it."""

    supporter_id: Code
    refusal: Label


class AboutAssignment(AboutCase):
    """What every event about one assignment carries besides its case."""

    assignment_id: uuid.UUID


class PeerAssigned(AboutAssignment):
    """Names the supporter by roster id only: their name and how to reach them stay on the
    roster topic, so this topic (read by reporting too) carries nobody's contact details."""

    event_type: Literal["support.peer_assigned"] = "support.peer_assigned"
    attempt: int = Field(ge=1, le=MAX_COUNT)
    supporter_id: Code
    score: Points
    explanation: list[ScoreItem] = Field(max_length=50)
    respond_by: Instant
    """Without an answer by then the case goes to someone else."""
    case_opened_at: Instant | None = None
    """When intake opened the case: the first offer's time to assignment is counted from it."""
    passed_over: PassedOver | None = None

    def counted(self) -> "AssignmentCounted":
        return self._step_counted(AssignmentCounted)


class ResponseDeadlineMoved(AboutAssignment):
    """The case became more urgent while the supporter was still to answer."""

    event_type: Literal["support.response_deadline_moved"] = "support.response_deadline_moved"
    respond_by: Instant


class CancelReason(StrEnum):
    NO_RESPONSE = "no_response"
    CASE_CLOSED = "case_closed"
    SUPPORTER_EXCLUDED = "supporter_excluded"
    """The incident changed and the supporter turned out to be involved or investigating."""
    WITHDRAWN_BY_COORDINATOR = "withdrawn_by_coordinator"
    """The coordinator took the offer back: the case is theirs to assign."""
    HANDED_OVER = "handed_over"
    """The coordinator handed accepted support to another supporter: this one is thanked."""


class AssignmentCancelled(AboutAssignment):
    event_type: Literal["support.assignment_cancelled"] = "support.assignment_cancelled"
    supporter_id: Code
    reason: CancelReason


class EscalationReason(StrEnum):
    NO_PEER_AVAILABLE = "no_peer_available"
    """Nobody fits now; the case waits and is matched as soon as someone does."""
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    """Declined or unanswered too often: the coordinator takes the case over."""


class CaseEscalated(AboutCase):
    event_type: Literal["support.case_escalated"] = "support.case_escalated"
    attempt: Count
    """Offers made before the escalation."""
    reason: EscalationReason
    rejections: dict[Label, Count] = Field(max_length=50)
    """How many supporters each rule turned away: why nobody fits, without naming anyone."""
    passed_over: PassedOver | None = None

    def counted(self) -> "EscalationCounted":
        return self._step_counted(EscalationCounted)


ChannelName = Literal["email", "sms"]


class PeerNotified(AboutAssignment):
    event_type: Literal["support.peer_notified"] = "support.peer_notified"
    channel: ChannelName
    notified_at: Instant
    step: Step = "offer"
    """`offer`, `reminder` or `follow_up_day_<n>`."""

    def counted(self) -> "NotificationCounted":
        return self._step_counted(NotificationCounted)


class NotificationFailed(AboutAssignment):
    """A step could not be delivered on a channel (the fallback is tried), or it is unknown
    whether it was: the service stopped while sending, and a mail is never sent twice."""

    event_type: Literal["support.notification_failed"] = "support.notification_failed"
    step: Step
    channel: ChannelName
    reason: Reason


class ContactMode(StrEnum):
    IN_PERSON = "in_person"
    PHONE = "phone"
    VIDEO = "video"


class SupportContactLogged(AboutAssignment):
    """A supporter's contact with the colleague: what reporting turns into supporter time."""

    event_type: Literal["support.contact_logged"] = "support.contact_logged"
    contact_date: Day
    minutes: int = Field(ge=1, le=600)
    mode: ContactMode
    tier: int = Field(ge=1, le=3)
    """1: peer support, 2: trained support team, 3: professional care."""
    referred: bool
    """Referred to professional help."""
    case_opened_at: Instant | None = None
    first_of_case: bool = False
    """The first contact logged for the case: its time to first contact is counted."""

    def counted(self) -> "ContactCounted":
        return self._step_counted(ContactCounted)


class AssignmentAccepted(AboutAssignment):
    event_type: Literal["assignment.accepted"] = "assignment.accepted"

    def counted(self) -> "AnswerCounted":
        return self._step_counted(AnswerCounted, accepted=True)


class AssignmentDeclined(AboutAssignment):
    event_type: Literal["assignment.declined"] = "assignment.declined"

    def counted(self) -> "AnswerCounted":
        return self._step_counted(AnswerCounted, accepted=False)


class SupportOutcome(StrEnum):
    """How support for a case ended; no free text, ever."""

    COMPLETED = "completed"
    """No further support needed."""
    REFERRED = "referred"
    """Handed to professional help (the kind in `referral`, never a name)."""
    DECLINED_BY_COLLEAGUE = "declined_by_colleague"
    """The colleague did not want support."""
    UNREACHABLE = "unreachable"
    """No contact after the supporter tried."""
    LAPSED = "lapsed"
    """Ended by itself: no contact logged, nor "still supporting", for `SUPPORT_ENDS_AFTER`."""
    CLOSED_BY_COORDINATOR = "closed_by_coordinator"
    WITHDRAWN = "withdrawn"
    """The incident was withdrawn or entered in error."""


ENDED_BY_SUPPORTER = (
    SupportOutcome.COMPLETED,
    SupportOutcome.REFERRED,
    SupportOutcome.DECLINED_BY_COLLEAGUE,
    SupportOutcome.UNREACHABLE,
)
"""The outcomes a supporter can choose on the ending page."""


class ReferralKind(StrEnum):
    PSYCHOLOGIST = "psychologist"
    OCCUPATIONAL_PHYSICIAN = "occupational_physician"
    EAP = "eap"
    """An employee assistance programme."""
    SPIRITUAL_CARE = "spiritual_care"
    GENERAL_PRACTITIONER = "general_practitioner"
    OTHER = "other"


class SupportEnded(AboutAssignment):
    """Support for a case has ended: its supporter's capacity comes back at once."""

    event_type: Literal["support.ended"] = "support.ended"
    outcome: SupportOutcome
    referral: ReferralKind | None = None
    case_opened_at: Instant | None = None
    contacts: Count | None = None
    """The contacts the supporter logged; unknown when matching ends it (a withdrawal)."""

    @model_validator(mode="after")
    def _referral_only_when_referred(self) -> Self:
        if (self.referral is not None) != (self.outcome is SupportOutcome.REFERRED):
            raise ValueError("a referral kind is given exactly when the outcome is referred")
        return self

    def counted(self) -> "EndCounted":
        return self._step_counted(EndCounted)


class ConcernRaisedBy(StrEnum):
    SUPPORTER = "supporter"
    COORDINATOR = "coordinator"


class SafetyConcernRaised(AboutCase):
    """Someone worries about the colleague's safety: the hospital's coordinators and its
    professional back-up (`SAFETY_CONTACTS`) are mailed at once, the desk's worklist holds it
    with a one-hour target. Never what was said: whoever is alerted calls."""

    event_type: Literal["support.safety_concern_raised"] = "support.safety_concern_raised"
    raised_by: ConcernRaisedBy
    supporter_id: Code | None = None
    """The supporter who holds the case (and raised it, or is to be called about it)."""

    def counted(self) -> "ConcernCounted":
        return self._step_counted(ConcernCounted)


class SupportReopened(AboutCase):
    """A coordinator reopened a case that had ended, within `REOPEN_WITHIN`: it is theirs to
    offer again, and what is kept of it waits for its next end to be erased."""

    event_type: Literal["support.reopened"] = "support.reopened"
    ended_outcome: SupportOutcome
    """How support had ended before."""


# --- What reporting counts: each step of a case without whom -------------------------------


class StepCounted(AboutCase):
    """A step of a case as reporting counts it: what and when, never who supported. On a
    topic of its own (`support.step_counts.v1`) and written in the same transaction as the
    event it counts, so reporting reads no supporter's roster id, score or explanation."""

    counts: uuid.UUID
    """The event this counts. Reporting counts each step once under this id, so a step it
    read itself before this topic existed is not counted again from here."""


class AssignmentCounted(StepCounted):
    event_type: Literal["support.assignment_counted"] = "support.assignment_counted"
    attempt: int = Field(ge=1, le=MAX_COUNT)
    case_opened_at: Instant | None = None


class EscalationCounted(StepCounted):
    event_type: Literal["support.escalation_counted"] = "support.escalation_counted"


class NotificationCounted(StepCounted):
    event_type: Literal["support.notification_counted"] = "support.notification_counted"
    step: Step


class AnswerCounted(StepCounted):
    event_type: Literal["support.answer_counted"] = "support.answer_counted"
    accepted: bool


class ContactCounted(StepCounted):
    event_type: Literal["support.contact_counted"] = "support.contact_counted"
    contact_date: Day
    minutes: int = Field(ge=1, le=600)
    referred: bool
    case_opened_at: Instant | None = None
    first_of_case: bool = False


class ConcernCounted(StepCounted):
    event_type: Literal["support.concern_counted"] = "support.concern_counted"
    raised_by: ConcernRaisedBy


class EndCounted(StepCounted):
    event_type: Literal["support.end_counted"] = "support.end_counted"
    outcome: SupportOutcome
    referral: ReferralKind | None = None
    case_opened_at: Instant | None = None
    contacts: Count | None = None


StepCount = Annotated[
    AssignmentCounted
    | EscalationCounted
    | NotificationCounted
    | AnswerCounted
    | ContactCounted
    | ConcernCounted
    | EndCounted,
    Field(discriminator="event_type"),
]
"""What the step counts topic carries, from matching and notify."""


AssignmentNews = Annotated[
    PeerAssigned
    | ResponseDeadlineMoved
    | AssignmentCancelled
    | CaseEscalated
    | SupportEnded
    | SupportReopened
    | SafetyConcernRaised
    | GroupDebriefRecorded,
    Field(discriminator="event_type"),
]
"""What the assignments topic carries, from matching (an end there: the incident withdrawn,
or a coordinator's decision)."""

AssignmentResponse = Annotated[
    AssignmentAccepted | AssignmentDeclined | SupportEnded | SafetyConcernRaised,
    Field(discriminator="event_type"),
]
"""What the responses topic carries: the supporter's answer to an assignment, the end of the
support it began, and a safety concern they raised."""

NotificationNews = Annotated[
    PeerNotified | NotificationFailed | SupportContactLogged, Field(discriminator="event_type")
]
"""What the notifications topic carries, from notify."""

CaseEvent = (
    SupportCaseCounted
    | AssignmentCounted
    | EscalationCounted
    | NotificationCounted
    | AnswerCounted
    | ContactCounted
    | ConcernCounted
    | EndCounted
)
"""Every event on the topics reporting reads."""


case_event: TypeAdapter[CaseEvent] = TypeAdapter(
    Annotated[CaseEvent, Field(discriminator="event_type")]
)
"""Parses any event reporting reads, whichever topic it came from."""


def derived_event_id(*parts: object) -> uuid.UUID:
    """A deterministic id, so that a re-published event is recognisably the same event."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "peer-support:" + "/".join(str(p) for p in parts))
