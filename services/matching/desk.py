"""What a coordinator sees: the worklist, a case's timeline, the roster. Pure: the case book's
records, what the desk learnt from the topics and the time in; views out.

Every situation the software cannot decide is one worklist item, with how long it has waited
against its target: the severest first, then the longest waiting. An item leaves the list by
itself once what it asks for is done (an offer made, a contact logged, a debriefing planned).
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field

from services.matching.desk_words import in_words, reason_said, said
from services.matching.policy import Case, Judged, Policy, explain
from services.matching.store import CaseRecord, Status
from services.matching.supporters import Supporter
from shared.events import (
    MAX_PARTICIPANTS,
    AssignmentAccepted,
    AssignmentCancelled,
    AssignmentDeclined,
    CaseEscalated,
    Code,
    Envelope,
    NotificationFailed,
    PeerAssigned,
    PeerNotified,
    ResponseDeadlineMoved,
    SafetyConcernRaised,
    ScoreItem,
    SupportCaseClosed,
    SupportCaseOpened,
    SupportCaseUpdated,
    SupportContactLogged,
    SupportEnded,
    SupportReopened,
)
from shared.i18n import N_, _


class Need(StrEnum):
    """Why a case (or an incident) is on the worklist."""

    NO_PEER_AVAILABLE = "no_peer_available"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    OFFER_UNANSWERED = "offer_unanswered"
    """Past half its deadline without an answer."""
    NOTIFICATION_FAILED = "notification_failed"
    """A message could not be delivered, or may not have been (`unconfirmed`)."""
    NO_FIRST_CONTACT = "no_first_contact"
    GROUP_DEBRIEF_NOT_PLANNED = "group_debrief_not_planned"
    REOPENED = "reopened"
    SAFETY_CONCERN = "safety_concern"


WHAT_IS_NEEDED = {
    Need.NO_PEER_AVAILABLE: N_("nobody on the roster fits: assign someone, or reach out yourself"),
    Need.ATTEMPTS_EXHAUSTED: N_("offers were declined or unanswered: the case is yours to assign"),
    Need.OFFER_UNANSWERED: N_("the supporter has not answered: a call may help, or withdraw it"),
    Need.NOTIFICATION_FAILED: N_(
        "the supporter may not have received the message: check with them"
    ),
    Need.NO_FIRST_CONTACT: N_("no first contact logged within the programme's target"),
    Need.GROUP_DEBRIEF_NOT_PLANNED: N_(
        "a large incident: plan a group debriefing, or decide not to"
    ),
    Need.REOPENED: N_("support was reopened: offer it again, to its last supporter if they can"),
    Need.SAFETY_CONCERN: N_(
        "a concern for the colleague's safety: call the supporter now; the "
        "back-up was alerted too. Settle it here once someone has acted"
    ),
}

NEED_WORDS = {
    Need.NO_PEER_AVAILABLE: N_("nobody fits"),
    Need.ATTEMPTS_EXHAUSTED: N_("offers came to nothing"),
    Need.OFFER_UNANSWERED: N_("offer unanswered"),
    Need.NOTIFICATION_FAILED: N_("message not delivered"),
    Need.NO_FIRST_CONTACT: N_("no first contact"),
    Need.GROUP_DEBRIEF_NOT_PLANNED: N_("group debriefing to plan"),
    Need.REOPENED: N_("reopened"),
    Need.SAFETY_CONCERN: N_("safety concern"),
}
"""Why an item is on the worklist, in a word or two."""


@dataclass(frozen=True)
class Targets:
    """How soon a coordinator should act, and the programme's first-contact target."""

    urgent: timedelta = timedelta(hours=4)
    """After death, severe harm or a calamity."""
    other: timedelta = timedelta(hours=24)
    first_contact: timedelta = timedelta(hours=72)
    safety: timedelta = timedelta(hours=1)
    """A safety concern reaches a person within the hour."""


@dataclass(frozen=True)
class Notice:
    """The last failed or unconfirmed message of an assignment, until one gets through."""

    assignment_id: str
    step: str
    channel: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class CaseNotes:
    """What the desk learnt about one case from the topics, beside the case book."""

    rejections: Mapping[str, int] = field(default_factory=dict)
    escalated_at: datetime | None = None
    notice: Notice | None = None
    first_contact_at: datetime | None = None
    concern_at: datetime | None = None
    """A safety concern not yet settled, since when."""
    concern_by: str | None = None
    owner: str | None = None
    """The coordinator who took the case's items on."""
    remarks: tuple["Remark", ...] = ()


class Remark(BaseModel):
    """A coordinator's note on a case (a call made, what was agreed): kept with the case and
    erased with it, never in the audit log or on a topic."""

    at: datetime
    who: str
    text: str


@dataclass(frozen=True)
class Debrief:
    incident_id: str
    hospital_id: str
    professionals_involved: int
    suggested_at: datetime
    urgent: bool = False
    planned_on: date | None = None
    held_on: date | None = None
    participants: int | None = None
    facilitator_id: str | None = None
    decided_not_to: bool = False
    incident_ref: str | None = None
    """What the incident's cases carry in place of its id."""

    @property
    def settled(self) -> bool:
        """Planned, held, or decided against: nothing left for the worklist."""
        return self.decided_not_to or self.planned_on is not None or self.held_on is not None


class DebriefDecision(BaseModel):
    """The day a group debriefing is planned for, or held (with participants and
    facilitator); or that none is held, with the `reason` (for the audit log)."""

    planned_on: date | None = None
    held_on: date | None = None
    participants: int | None = Field(default=None, ge=1, le=MAX_PARTICIPANTS)
    facilitator_id: Code | None = None
    decided_not_to: bool = False
    reason: Annotated[str, Field(max_length=500)] = ""

    def refusal(self) -> str | None:
        """Why the decision cannot be recorded as given, if it cannot."""
        if self.decided_not_to and not self.reason.strip():
            return _("say why no group debriefing is held: it stays in the audit log")
        if not self.decided_not_to and self.planned_on is None and self.held_on is None:
            return _("give the day it is planned for, or the day it was held")
        return None

    def facts(self) -> dict[str, Any]:
        """What is kept and published: the reason stays in the audit log."""
        return self.model_dump(exclude={"reason"}, exclude_defaults=True)

    @property
    def what(self) -> str:
        held = "held" if self.held_on else "planned" if self.planned_on else None
        return f"group debriefing {held or 'not held: decided not to'}"


class SupporterReach(BaseModel):
    """How the coordinator reaches the supporter an item is about: a call often settles it."""

    name: str
    email: str
    phone: str | None = None


class WorkItem(BaseModel):
    need: Need
    what_is_needed: str
    hospital_id: str
    case_id: str | None = None
    incident_id: str | None = None
    urgent: bool
    since: datetime
    waited_minutes: int
    target_minutes: int
    overdue: bool
    rejections: dict[str, int] = {}
    """Per rule, how many supporters it turned away (no peer available)."""
    detail: str = ""
    supporter_id: str | None = None
    """The supporter who holds the case (offered or accepted), when there is one."""
    reach: SupporterReach | None = None
    owner: str | None = None
    """Who took it on, if anybody did."""


def reached(items: list[WorkItem], supporters: Iterable[Supporter]) -> list[WorkItem]:
    """Each item about a supporter with how to reach them, as the roster has it."""
    by_id = {s.supporter_id: s.contact for s in supporters}
    return [
        item.model_copy(
            update={"reach": SupporterReach(name=c.display_name, email=c.email, phone=c.phone)}
        )
        if item.supporter_id and (c := by_id.get(item.supporter_id))
        else item
        for item in items
    ]


def worklist(
    records: Iterable[tuple[CaseRecord, CaseNotes]],
    debriefs: Iterable[Debrief],
    now: datetime,
    targets: Targets,
) -> list[WorkItem]:
    """Every item: safety concerns first, then the severest, then the longest waiting."""
    items = [item for record, notes in records for item in needs_of(record, notes, now, targets)]
    items += [
        _item(
            Need.GROUP_DEBRIEF_NOT_PLANNED, d.hospital_id, d.urgent, d.suggested_at, now, targets
        ).model_copy(
            update={
                "incident_id": d.incident_id,
                "detail": _("{n} professionals involved").format(n=d.professionals_involved),
            }
        )
        for d in debriefs
        if not d.settled
    ]
    return sorted(
        items, key=lambda i: (i.need is not Need.SAFETY_CONCERN, not i.urgent, -i.waited_minutes)
    )


def needs_of(
    record: CaseRecord, notes: CaseNotes, now: datetime, targets: Targets
) -> list[WorkItem]:
    """What one case asks of a coordinator now, if anything."""
    urgent = record.case.profile.urgent

    def item(need: Need, since: datetime, detail: str = "", **more: Any) -> WorkItem:
        made = _item(need, record.case.hospital_id, urgent, since, now, targets)
        holder = record.supporter_id if record.holds_capacity else None
        changes = {
            "case_id": record.case_id,
            "detail": detail,
            "supporter_id": holder,
            "owner": notes.owner,
        }
        return made.model_copy(update={**changes, **more})

    items = []
    if notes.concern_at is not None:
        concern = item(
            Need.SAFETY_CONCERN,
            notes.concern_at,
            _("raised by the {who}").format(who=said(notes.concern_by)),
        )
        items.append(_within(concern, targets.safety))
    if record.status == Status.WAITING:
        items.append(item(Need.NO_PEER_AVAILABLE, record.since, rejections=dict(notes.rejections)))
    elif record.status == Status.ESCALATED and _reopened(record, notes):
        items.append(item(Need.REOPENED, record.since))
    elif record.status == Status.ESCALATED:
        items.append(item(Need.ATTEMPTS_EXHAUSTED, notes.escalated_at or record.since))
    elif record.status == Status.OFFERED and record.offered_at and record.respond_by:
        halfway = record.offered_at + (record.respond_by - record.offered_at) / 2
        if halfway <= now:
            items.append(
                item(
                    Need.OFFER_UNANSWERED,
                    halfway,
                    _("answer due {moment}").format(
                        moment=f"{record.respond_by:%Y-%m-%d %H:%M} UTC"
                    ),
                )
            )
    notice = notes.notice
    if notice and notice.assignment_id == record.assignment_id and record.holds_capacity:
        detail = _("{step} by {channel}: {why}").format(
            step=said(notice.step), channel=said(notice.channel), why=said(notice.reason)
        )
        items.append(item(Need.NOTIFICATION_FAILED, notice.at, detail))
    if record.status == Status.ACCEPTED and notes.first_contact_at is None:
        due = (record.case.opened_at or record.accepted_at or record.since) + targets.first_contact
        if due <= now:
            items.append(item(Need.NO_FIRST_CONTACT, due))
    return items


def _within(item: WorkItem, target: timedelta) -> WorkItem:
    """The item urgent, against a target of its own."""
    overdue = timedelta(minutes=item.waited_minutes) > target
    minutes = int(target.total_seconds() // 60)
    return item.model_copy(update={"urgent": True, "target_minutes": minutes, "overdue": overdue})


def _reopened(record: CaseRecord, notes: CaseNotes) -> bool:
    """Escalated by its reopening, not by offers that came to nothing since."""
    reopened, escalated = record.reopened_at, notes.escalated_at
    return reopened is not None and (escalated is None or escalated < reopened)


def _item(
    need: Need, hospital_id: str, urgent: bool, since: datetime, now: datetime, targets: Targets
) -> WorkItem:
    target = targets.urgent if urgent else targets.other
    waited = max(now - since, timedelta(0))
    return WorkItem(
        need=need,
        what_is_needed=_(WHAT_IS_NEEDED[need]),
        hospital_id=hospital_id,
        urgent=urgent,
        since=since,
        waited_minutes=int(waited.total_seconds() // 60),
        target_minutes=int(target.total_seconds() // 60),
        overdue=waited > target,
    )


# --- The case -----------------------------------------------------------------------------


class TimelineEntry(BaseModel):
    at: datetime
    kind: str
    detail: dict[str, Any] = {}
    what: str = ""
    """The entry as a sentence, as the coordinator reads it (`desk_words`)."""


def _assigned(event: PeerAssigned) -> dict[str, Any]:
    return {
        "attempt": event.attempt,
        "supporter_id": event.supporter_id,
        "score": event.score,
        "explanation": [
            {"rule": i.rule, "points": i.points, "detail": i.detail, "terms": i.terms}
            for i in map(for_the_desk, event.explanation)
        ],
        "respond_by": event.respond_by,
        **_passed_over(event),
    }


def _passed_over(event: PeerAssigned | CaseEscalated) -> dict[str, str]:
    """The supporter the colleague asked for by name, and the rule that turned them away."""
    named = event.passed_over
    return {"passed_over": f"{named.supporter_id}: {named.refusal}"} if named else {}


def _contact(event: SupportContactLogged) -> dict[str, Any]:
    return {
        "date": event.contact_date,
        "minutes": event.minutes,
        "mode": event.mode,
        "tier": event.tier,
    }


_DETAILS: dict[type[Envelope], Callable[[Any], dict[str, Any]]] = {
    SupportCaseOpened: lambda e: {
        "origin": e.profile.origin,
        "opted_out": e.opted_out,
        **{f"wish_{k}": v for k, v in e.preferences.model_dump().items() if v is not None},
    },
    SupportCaseUpdated: lambda e: {"harm": e.profile.harm, "calamity": e.profile.calamity},
    SupportCaseClosed: lambda e: {"reason": e.reason},
    PeerAssigned: _assigned,
    ResponseDeadlineMoved: lambda e: {"respond_by": e.respond_by},
    AssignmentCancelled: lambda e: {"supporter_id": e.supporter_id, "reason": e.reason},
    CaseEscalated: lambda e: {"reason": e.reason, "rejections": e.rejections, **_passed_over(e)},
    PeerNotified: lambda e: {"step": e.step, "channel": e.channel},
    NotificationFailed: lambda e: {"step": e.step, "channel": e.channel, "reason": e.reason},
    AssignmentAccepted: lambda e: {},
    AssignmentDeclined: lambda e: {},
    SupportContactLogged: _contact,
    SupportEnded: lambda e: {"outcome": e.outcome, "referral": e.referral},
    SupportReopened: lambda e: {"outcome": e.ended_outcome},
    SafetyConcernRaised: lambda e: {"raised_by": e.raised_by},
}


def timeline_entry(event: Envelope) -> TimelineEntry | None:
    """What the coordinator reads of an event about a case: never a patient, never a person
    off the roster, and of a contact only its date, minutes, mode and tier."""
    describe = _DETAILS.get(type(event))
    if describe is None:
        return None
    return TimelineEntry(at=event.occurred_at, kind=event.event_type, detail=describe(event))


SENIORITY_BANDS = (
    (2, N_("under 2 years")),
    (5, N_("2 to 5 years")),
    (10, N_("5 to 10 years")),
    (20, N_("10 to 20 years")),
)


def for_the_desk(item: ScoreItem) -> ScoreItem:
    """A reason as the desk keeps and words it: the colleague's experience only as a band,
    the words in the language being spoken (`desk_words.reason_said`)."""
    terms = dict(item.terms)
    if item.rule == "seniority":
        colleague = terms.pop("colleague", "unknown")
        terms["colleague_band"] = seniority_band(int(colleague) if colleague.isdigit() else None)
    detail = reason_said(item.rule, terms, item.detail)
    return item.model_copy(update={"detail": detail, "terms": terms})


def _reworded(reason: Mapping[str, Any]) -> dict[str, Any]:
    """A reason the timeline keeps, said in the reader's language."""
    detail = reason_said(reason["rule"], reason.get("terms") or {}, reason["detail"])
    return {**reason, "detail": detail}


def seniority_band(years: int | None) -> str:
    """Enough to match by hand, without the exact figure (in the source language: the desk
    keeps it so, and says it in the reader's)."""
    if years is None:
        return N_("unknown")
    return next((band for limit, band in SENIORITY_BANDS if years < limit), N_("20 years or more"))


class CaseView(BaseModel):
    case_id: str
    hospital_id: str
    status: str
    outcome: str | None
    attempt: int
    colleague: dict[str, str | None]
    """Function, department, team and seniority band: no name, no age."""
    incident: dict[str, Any]
    """Category, harm, calamity and the month it occurred: no patient data."""
    timeline: list[TimelineEntry]
    supporter_id: str | None = None
    """Who holds the case now (offered or accepted), or held it last."""
    supporter_name: str | None = None
    concern_since: datetime | None = None
    """A safety concern not yet settled."""
    owner: str | None = None
    remarks: list[Remark] = []


def case_view(
    record: CaseRecord, timeline: list[TimelineEntry], names: Mapping[str, str], zone: str
) -> CaseView:
    """`names`: the roster's display names by supporter id; the events name supporters by id
    only. `zone`: the hospital's, for the times the sentences give."""
    colleague, profile = record.case.colleague, record.case.profile
    return CaseView(
        case_id=record.case_id,
        hospital_id=record.case.hospital_id,
        status=record.status,
        outcome=record.outcome,
        attempt=record.attempt,
        colleague={
            "function": colleague.function,
            "department": colleague.department,
            "team": colleague.team,
            "seniority": _(seniority_band(colleague.seniority_years)),
        },
        incident={
            "category": profile.category,
            "harm": profile.harm,
            "calamity": profile.calamity,
            "date": profile.incident_occurred_at.date(),
        },
        timeline=_told(sorted(timeline, key=lambda e: e.at), names, zone),
        supporter_id=record.supporter_id,
        supporter_name=names.get(record.supporter_id or ""),
    )


def _told(
    timeline: list[TimelineEntry], names: Mapping[str, str], zone: str
) -> list[TimelineEntry]:
    """Each entry named and said in words. An answer, a message or a contact is about the
    supporter last offered the case; the events themselves name them by id only."""
    told, current = [], _("the supporter")
    for entry in timeline:
        detail = entry.detail
        if (supporter_id := detail.get("supporter_id")) is not None:
            current = names.get(supporter_id, _("supporter {id}").format(id=supporter_id))
            detail = {"supporter": current, **detail}
        if "explanation" in detail:
            detail = {**detail, "explanation": [_reworded(i) for i in detail["explanation"]]}
        what = in_words(entry.kind, detail, current, zone)
        told.append(entry.model_copy(update={"detail": detail, "what": what}))
    return told


class CandidateView(BaseModel):
    supporter_id: str
    display_name: str
    function: str
    department: str
    open_cases: int
    max_open_cases: int
    score: float
    fits: bool
    """No rule turns them away: matching itself would offer it to them."""
    turned_away_by: str | None
    may_override: bool
    """A soft rule turned them away: a coordinator may still assign them, with a reason."""
    explanation: list[ScoreItem]


def candidate_views(
    case: Case, judged: Iterable[Judged], policy: Policy, now: datetime
) -> list[CandidateView]:
    return [
        CandidateView(
            supporter_id=j.supporter.supporter_id,
            display_name=j.supporter.contact.display_name,
            function=j.supporter.function,
            department=j.supporter.department,
            open_cases=j.supporter.open_cases,
            max_open_cases=j.supporter.max_open_cases,
            score=round(j.score, 3),
            fits=j.refusal is None,
            turned_away_by=j.refusal,
            may_override=j.refusal is not None and j.overridable,
            explanation=[for_the_desk(i) for i in explain(case, j.supporter, policy, now)],
        )
        for j in judged
    ]


# --- The roster ---------------------------------------------------------------------------


class RosterLine(BaseModel):
    supporter_id: str
    display_name: str
    function: str
    department: str
    active: bool
    open_cases: int
    max_open_cases: int
    cases_recently: int
    severe_cases_recently: int
    """Cases after death, severe harm or a calamity among those."""
    days_since_last_assignment: int | None
    trained_on: date | None
    refresher_due: date | None
    refresher_overdue: bool
    absences: list[str]


def roster_lines(
    supporters: Iterable[Supporter],
    severe_recently: Mapping[str, int],
    now: datetime,
    recent_window: timedelta,
    refresher_after: timedelta,
) -> list[RosterLine]:
    """Each supporter's load and standing, for looking after them: who carries much, who
    has waited long, whose refresher training is due."""
    lines = []
    for s in supporters:
        due = s.trained_on + refresher_after if s.trained_on else None
        last = s.last_assigned_at
        lines.append(
            RosterLine(
                supporter_id=s.supporter_id,
                display_name=s.contact.display_name,
                function=s.function,
                department=s.department,
                active=s.active,
                open_cases=s.open_cases,
                max_open_cases=s.max_open_cases,
                cases_recently=sum(at >= now - recent_window for at in s.carried),
                severe_cases_recently=severe_recently.get(s.supporter_id, 0),
                days_since_last_assignment=(now - last).days if last else None,
                trained_on=s.trained_on,
                refresher_due=due,
                refresher_overdue=due is not None and due < now.date(),
                absences=[
                    f"{a.first_day} to {a.last_day}" for a in s.absences if a.last_day >= now.date()
                ],
            )
        )
    return lines
