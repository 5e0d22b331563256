"""Opening, updating and closing support cases as incidents unfold: pure, no I/O.

One case per involved professional, because each may need support of their own. Hospitals
send every report and update whole, with a revision that grows at the source, so intake
keeps one record per incident and reconciles each event against it: a revision not higher
than the record's changes nothing, whatever order the events arrive in. New participants get
new cases, removed ones have theirs closed, and a re-grade reaches the open cases as an update
(matching shortens deadlines on an upgrade and never withdraws an offer on a downgrade). A
withdrawal, or a status `entered-in-error`, closes every case for good.

Case ids are derived from hospital, incident and pseudonym, so the same person in the same
incident is always the same case.
"""

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.errors import RejectedEvent
from shared.events import (
    CaseContactRecorded,
    CaseContactSealed,
    CaseOrigin,
    CaseProfile,
    Category,
    CloseReason,
    Colleague,
    ContactKeyIssued,
    Envelope,
    Exclusions,
    GroupDebriefSuggested,
    Harm,
    IncidentFacts,
    IncidentStatus,
    IncidentWithdrawn,
    Participant,
    SupportCaseClosed,
    SupportCaseOpened,
    SupportCaseUpdated,
    SupportPreferences,
    SupportRequested,
    derived_event_id,
    incident_key,
)
from shared.pseudonyms import PseudonymKeys, case_salt, pseudonymise, tagged
from shared.sealing import seal

PRODUCER = "intake"
PLAUSIBLE_SINCE = datetime(2000, 1, 1, tzinfo=UTC)
PLAUSIBLE_AHEAD = timedelta(days=1)


@dataclass(frozen=True)
class IntakePolicy:
    near_miss_outreach: bool = True
    """Open cases for near misses (`actuality: potential`) too."""
    large_incident: int = 5
    """More professionals than this: suggest a group debriefing to the coordinator."""
    sources: Mapping[str, frozenset[str]] | None = None
    """The hospitals each source system may report for; None: any (not configured)."""
    plausible_since: datetime = PLAUSIBLE_SINCE
    plausible_ahead: timedelta = PLAUSIBLE_AHEAD
    """Clocks drift and zones differ, but an event dated further ahead is a mistake: counted,
    one incident dated 2099 would make every dashboard show 2099."""

    def implausible(self, occurred_at: datetime, now: datetime) -> str | None:
        """Why an event's date cannot be right, or None."""
        if occurred_at > now + self.plausible_ahead:
            return f"occurred_at {occurred_at.isoformat()} lies in the future"
        if occurred_at < self.plausible_since:
            return (
                f"occurred_at {occurred_at.isoformat()} is before {self.plausible_since:%Y-%m-%d}"
            )
        return None

    def provenance(
        self, source_system: str, hospital_id: str, key: bytes | None, expected_key: str
    ) -> str | None:
        """Why an event may not be taken as its hospital's, or None. A present Kafka key
        must be the body's: a producer cannot put one hospital's incident on another's."""
        if self.sources is not None and hospital_id not in self.sources.get(source_system, ()):
            return f"source system {source_system!r} may not report for hospital {hospital_id!r}"
        if key is not None and key != expected_key.encode():
            shown = key[:80].decode(errors="replace")
            return f"the Kafka key {shown!r} disagrees with the event ({expected_key!r})"
        return None


@dataclass(frozen=True)
class Occasion:
    """Why cases are opened: an incident as its system now describes it, or a request."""

    event_id: uuid.UUID
    key: str
    hospital_id: str
    incident_id: str
    revision: int
    occurred_at: datetime
    participants: Sequence[Participant] = ()
    withdrawn: bool = False
    near_miss: bool = False
    origin: CaseOrigin = CaseOrigin.INCIDENT
    category: Category = Category.OTHER
    """What nothing more is known of (a withdrawal, a request) is counted as."""
    harm: Harm = Harm.UNKNOWN
    calamity: bool = False
    investigators: Sequence[str] = ()
    requested_by_self: bool = False
    preferences: SupportPreferences = field(default_factory=SupportPreferences)

    @classmethod
    def of_incident(cls, incident: IncidentFacts | IncidentWithdrawn) -> "Occasion":
        known: dict[str, Any] = {
            "event_id": incident.event_id,
            "key": incident.incident_key,
            "hospital_id": incident.hospital_id,
            "incident_id": incident.incident_id,
            "revision": incident.revision,
            "occurred_at": incident.occurred_at,
        }
        if isinstance(incident, IncidentWithdrawn):
            return cls(**known, withdrawn=True)
        return cls(
            **known,
            withdrawn=incident.status is IncidentStatus.ENTERED_IN_ERROR,
            near_miss=incident.actuality == "potential",
            category=incident.category,
            harm=incident.harm,
            calamity=incident.calamity,
            participants=incident.participants,
            investigators=incident.investigators,
        )

    @classmethod
    def of_request(cls, request: SupportRequested) -> "Occasion":
        """A request is a case without an incident: counted as category other, harm unknown."""
        return cls(
            event_id=request.event_id,
            key=incident_key(request.hospital_id, f"request:{request.request_id}"),
            hospital_id=request.hospital_id,
            incident_id=f"request:{request.request_id}",
            revision=0,
            origin=CaseOrigin.REQUEST if request.requested_by == "self" else CaseOrigin.REFERRAL,
            occurred_at=request.occurred_at,
            participants=(request.professional,),
            requested_by_self=request.requested_by == "self",
            preferences=request.preferences,
        )


@dataclass(frozen=True)
class TrackedCase:
    case_id: uuid.UUID
    profile: CaseProfile
    open: bool = True
    tagged_with: str | None = None
    """The fingerprint of the `EXCLUSION_KEY` its tags are made with, for all its life (None:
    the salt alone, as before the key)."""


@dataclass(frozen=True)
class IncidentRecord:
    """What intake remembers of an incident: pseudonyms and profiles, never names."""

    revision: int
    withdrawn: bool = False
    exclusions: Exclusions | None = None
    cases: Mapping[str, TrackedCase] = field(default_factory=dict)
    """By the colleague's pseudonym."""
    debrief_suggested: bool = False
    reference: str | None = None
    """Random, shared by the incident's cases so that matching can cap a supporter's share of
    a large incident: no event after intake carries the incident's own id. Forgotten when the
    incident settles."""
    settled: bool = False
    """Unchanged for `INCIDENTS_SETTLE_AFTER`: who was involved is forgotten, and a later
    change can no longer be told apart from a new incident, so it is refused."""


@dataclass(frozen=True)
class Reconciled:
    record: IncidentRecord
    cases: list[Envelope] = field(default_factory=list)
    """For the cases topic: opened, updated, closed, group debriefing suggested."""
    contacts: list[CaseContactRecorded] = field(default_factory=list)
    """Held until notify's key for the case comes, then sealed to it for the contacts topic."""
    stale: bool = False


@dataclass(frozen=True)
class Choice:
    """A professional's standing choice of how to be reached and in which language."""

    channel: Literal["email", "phone"] | None = None
    language: str | None = None


def reconcile(
    record: IncidentRecord | None,
    occasion: Occasion,
    keys: PseudonymKeys,
    opted_out: Collection[str],
    policy: IntakePolicy,
    now: datetime,
    choices: Mapping[str, Choice] | None = None,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Reconciled:
    """`opted_out`: who declined outreach beforehand; `choices`: how others would rather be
    reached (both by today's pseudonym). A case keeps the pseudonym key it was opened with:
    after a rotation its colleague is still recognised, and its events still made with it.
    `new_id` makes case ids and the incident's reference: random, so that nobody holding
    the pseudonym key can recompute which case was whose."""
    if record is not None and (record.withdrawn or occasion.revision <= record.revision):
        return Reconciled(record, stale=True)
    record = record or IncidentRecord(revision=-1)
    record = replace(record, reference=record.reference or new_id().hex)
    envelope = _envelope(occasion, now)
    if occasion.withdrawn:
        return _close_all(record, occasion, envelope)
    names = {
        p.staff_id: keys.every(occasion.hospital_id, p.staff_id) for p in occasion.participants
    }
    involved = {names[p.staff_id][keys.key_id]: p for p in occasion.participants}
    present = {pseudonym for each in names.values() for pseudonym in each.values()}
    by_key = _exclusions_by_key(occasion, keys)
    exclusions = by_key[keys.key_id]
    reached = {} if occasion.near_miss and not policy.near_miss_outreach else involved
    cases = dict(record.cases)
    out = Reconciled(replace(record, revision=occasion.revision, exclusions=exclusions))
    opening = _Opening(occasion, keys, exclusions, envelope, record.reference, new_id)
    for colleague_pseudonym, participant in reached.items():
        profile = _profile(occasion, participant)
        known = _tracked(cases, names[participant.staff_id])
        if known is None:
            choice = (choices or {}).get(colleague_pseudonym, Choice())
            declined = colleague_pseudonym in opted_out and not occasion.requested_by_self
            case = opening.case(participant, profile, declined, choice)
            out.cases.append(case)
            if not case.opted_out:
                out.contacts.append(_contact(case, participant, envelope, choice))
            tagged_with = case.exclusions.tag_key_id
            cases[colleague_pseudonym] = TrackedCase(case.case_id, profile, True, tagged_with)
            continue
        stored, key_id, tracked = known
        if tracked.open and (profile != tracked.profile or exclusions != record.exclusions):
            tagged = _tagged_as_opened(tracked, by_key[key_id], keys, key_id)
            out.cases.append(_updated(tracked, occasion, profile, tagged, envelope))
            cases[stored] = replace(tracked, profile=profile)
    for colleague_pseudonym, tracked in record.cases.items():
        if tracked.open and colleague_pseudonym not in present:
            out.cases.append(_closed(tracked, CloseReason.PARTICIPANT_REMOVED, envelope))
            cases[colleague_pseudonym] = replace(tracked, open=False)
    debrief = _debrief(record, occasion, len(involved), policy, envelope)
    out.cases.extend(debrief)
    suggested = record.debrief_suggested or bool(debrief)
    return replace(out, record=replace(out.record, cases=cases, debrief_suggested=suggested))


def _tracked(
    cases: Mapping[str, TrackedCase], pseudonyms: Mapping[str, str]
) -> tuple[str, str, TrackedCase] | None:
    """The participant's case, found by their pseudonym under any key in use: the pseudonym
    it is recorded by, the key's id, the case."""
    for key_id, pseudonym in pseudonyms.items():
        if (tracked := cases.get(pseudonym)) is not None:
            return pseudonym, key_id, tracked
    return None


def _exclusions_by_key(occasion: Occasion, keys: PseudonymKeys) -> dict[str, Exclusions]:
    """Those involved and investigating, made with each key in use, by key id."""
    by_key = {}
    for key_id, key in keys.by_id().items():
        involved = {
            pseudonymise(key, occasion.hospital_id, p.staff_id): p for p in occasion.participants
        }
        by_key[key_id] = Exclusions(
            involved_pseudonyms=list(involved),
            investigator_pseudonyms=[
                pseudonymise(key, occasion.hospital_id, s) for s in occasion.investigators
            ],
            incident_size=len(involved),
        )
    return by_key


def _tagged_as_opened(
    tracked: TrackedCase, exclusions: Exclusions, keys: PseudonymKeys, key_id: str
) -> Exclusions:
    """Under the pseudonym key the case was opened with, tagged as its opening was (with the
    exclusion key, or with the salt alone before there was one)."""
    salt = case_salt(keys.by_id()[key_id], tracked.case_id)
    return exclusions.for_case(salt, key_id, keys.tag_key if tracked.tagged_with else None)


def _updated(
    tracked: TrackedCase,
    occasion: Occasion,
    profile: CaseProfile,
    exclusions: Exclusions,
    envelope: dict[str, Any],
) -> SupportCaseUpdated:
    return SupportCaseUpdated(
        event_id=derived_event_id("case_updated", tracked.case_id, occasion.revision),
        case_id=tracked.case_id,
        profile=profile,
        exclusions=exclusions,
        **_of_case(envelope, tracked.case_id),
    )


def _debrief(
    record: IncidentRecord,
    occasion: Occasion,
    involved: int,
    policy: IntakePolicy,
    envelope: dict[str, Any],
) -> list[GroupDebriefSuggested]:
    """A group debriefing is suggested once, when an incident first involves many."""
    large = involved > policy.large_incident and occasion.origin is CaseOrigin.INCIDENT
    if not large or record.debrief_suggested:
        return []
    return [
        GroupDebriefSuggested(
            event_id=derived_event_id("group_debrief", occasion.key),
            incident_id=occasion.incident_id,
            professionals_involved=involved,
            incident_ref=record.reference,
            correlation_id=occasion.key,
            causation_id=occasion.event_id,
            **envelope,
        )
    ]


def _close_all(
    record: IncidentRecord, occasion: Occasion, envelope: Mapping[str, Any]
) -> Reconciled:
    closed = [
        _closed(tracked, CloseReason.INCIDENT_WITHDRAWN, envelope)
        for tracked in record.cases.values()
        if tracked.open
    ]
    cases = {p: replace(t, open=False) for p, t in record.cases.items()}
    return Reconciled(
        replace(record, revision=occasion.revision, withdrawn=True, cases=cases), list(closed)
    )


def _closed(
    tracked: TrackedCase, reason: CloseReason, envelope: Mapping[str, Any]
) -> SupportCaseClosed:
    return SupportCaseClosed(
        event_id=derived_event_id("case_closed", tracked.case_id),
        case_id=tracked.case_id,
        profile=tracked.profile,
        reason=reason,
        **_of_case(envelope, tracked.case_id),
    )


def _profile(occasion: Occasion, participant: Participant) -> CaseProfile:
    """The incident's day only (midnight, in the hospital's own zone as reported): beside the
    incident system's records, an exact time on every retained case event would point at the
    incident, and through it at whom a case supports."""
    return CaseProfile(
        hospital_id=occasion.hospital_id,
        function=participant.function,
        department=participant.department,
        category=occasion.category,
        harm=occasion.harm,
        calamity=occasion.calamity,
        incident_occurred_at=occasion.occurred_at.replace(
            hour=0, minute=0, second=0, microsecond=0
        ),
        origin=occasion.origin,
    )


@dataclass(frozen=True)
class _Opening:
    """What every case an occasion opens shares."""

    occasion: Occasion
    keys: PseudonymKeys
    exclusions: Exclusions
    envelope: Mapping[str, Any]
    reference: str | None
    new_id: Callable[[], uuid.UUID]

    def case(
        self, participant: Participant, profile: CaseProfile, opted_out: bool, choice: Choice
    ) -> SupportCaseOpened:
        """Made with today's pseudonym key, the case's for all its life; every pseudonym on
        its events tagged with its own salt. The incident appears only as its `reference`."""
        hospital_id, keys, case_id = self.occasion.hospital_id, self.keys, self.new_id()
        pseudonym = keys.of(hospital_id, participant.staff_id)
        salt = case_salt(keys.current, case_id)
        manager = participant.line_manager_staff_id
        return SupportCaseOpened(
            event_id=derived_event_id("case_opened", case_id),
            case_id=case_id,
            incident_ref=self.reference,
            profile=profile,
            colleague=Colleague(
                pseudonym=tagged(salt, pseudonym, keys.tag_key),
                function=participant.function,
                department=participant.department,
                team=participant.team,
                line_manager_pseudonym=(
                    tagged(salt, keys.of(hospital_id, manager), keys.tag_key) if manager else None
                ),
                involvement=participant.involvement,
                seniority_years=participant.seniority_years,
                birth_year=participant.birth_year,
                languages=_languages(participant, choice),
            ),
            exclusions=self.exclusions.for_case(salt, keys.key_id, keys.tag_key),
            preferences=self.occasion.preferences,
            opted_out=opted_out,
            **_of_case(self.envelope, case_id),
        )


def _languages(participant: Participant, choice: Choice) -> list[str]:
    """The language they chose first: matching looks for a supporter who speaks it."""
    if choice.language is None:
        return list(participant.languages)
    return [choice.language, *(lang for lang in participant.languages if lang != choice.language)]


def _contact(
    case: SupportCaseOpened,
    participant: Participant,
    envelope: Mapping[str, Any],
    choice: Choice,
) -> CaseContactRecorded:
    contact = participant.contact
    return CaseContactRecorded(
        event_id=derived_event_id("case_contact", case.case_id),
        case_id=case.case_id,
        email=contact.email if contact else None,
        phone=contact.phone if contact else None,
        languages=case.colleague.languages,
        preferred_channel=choice.channel,
        **_of_case(envelope, case.case_id),
    )


def _envelope(occasion: Occasion, now: datetime) -> dict[str, Any]:
    """What every event intake makes of an occasion carries; each event about a case adds the
    case's own correlation id (`_of_case`): none names the incident or the event it came in."""
    return {"occurred_at": now, "producer": PRODUCER, "hospital_id": occasion.hospital_id}


def _of_case(envelope: Mapping[str, Any], case_id: uuid.UUID) -> dict[str, Any]:
    return {**envelope, "correlation_id": str(case_id)}


def sealed_contact(
    contact: CaseContactRecorded, key: ContactKeyIssued, now: datetime
) -> CaseContactSealed:
    """`contact` sealed to its case's key, for the contacts topic."""
    try:
        sealed = seal(key.public_key, contact.case_id, contact.model_dump_json().encode())
    except ValueError as error:
        raise RejectedEvent(f"the key for case {key.case_id} is no X25519 public key") from error
    return CaseContactSealed(
        event_id=derived_event_id("case_contact_sealed", contact.case_id),
        case_id=contact.case_id,
        sealed=sealed,
        occurred_at=now,
        producer=contact.producer,
        correlation_id=contact.correlation_id,
        causation_id=key.event_id,
        hospital_id=contact.hospital_id,
    )
