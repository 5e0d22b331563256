"""Who may support a colleague, and who should: pure, no I/O.

Hard rules turn a supporter away: they protect the colleague (nobody involved, investigating
or managing them, never from their own team) and the supporter (trained, available, within
capacity). Among those left, a weighted score prefers a peer the colleague can relate to
(function, seniority, age) and shares the work fairly (fewest open cases, longest wait since
the last assignment). Every assignment carries the score's breakdown, so a coordinator can
see why this peer.
"""

import functools
import heapq
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from shared.events import (
    Absence,
    AssignmentCancelled,
    CancelReason,
    CaseEscalated,
    CaseProfile,
    Colleague,
    EscalationReason,
    Exclusions,
    Function,
    Harm,
    PassedOver,
    PeerAssigned,
    ReferralKind,
    ResponseDeadlineMoved,
    ScoreItem,
    SupportEnded,
    SupporterContact,
    SupportOutcome,
    SupportPreferences,
    Weekday,
    derived_event_id,
)
from shared.pseudonyms import tagged

PRODUCER = "matching"

WEEKDAYS = tuple(Weekday)
"""In the order of `date.weekday()`."""

SENIORITY_SPAN = 10
"""Years of experience less than the colleague's at which the seniority fit reaches 0."""
AGE_SPAN = 30
"""Years apart in age at which the age fit reaches 0."""
WAIT_SPAN = timedelta(days=30)
"""A wait this long since the last assignment earns the full fairness points."""
UNKNOWN_FIT = 0.5
"""A fit that cannot be judged (a birth year not given) neither helps nor hurts."""

_FUNCTION_FAMILY = {
    Function.NURSE: "nursing",
    Function.MIDWIFE: "nursing",
    Function.PARAMEDIC: "nursing",
    Function.PHYSICIAN: "medical",
    Function.RESIDENT: "medical",
    Function.PHARMACIST: "allied",
    Function.ALLIED_HEALTH: "allied",
}
"""Functions whose work is alike enough that a peer from one understands the other."""


class Refusal(StrEnum):
    """Why a supporter cannot take a case, in the order the rules are checked."""

    INACTIVE = "inactive"
    OTHER_HOSPITAL = "other_hospital"
    NOT_TRAINED = "not_trained"
    UNAVAILABLE = "unavailable_today"
    ABSENT = "absent"
    TRIED_BEFORE = "tried_before"
    KEY_UNKNOWN = "pseudonym_key_unknown"
    """Loaded without the pseudonym key the case was opened with: who they are among those
    involved cannot be told, so they do not take it."""
    INVOLVED = "involved_in_incident"
    INVESTIGATOR = "investigates_incident"
    LINE_MANAGER = "line_manager"
    SAME_TEAM = "same_team"
    SAME_DEPARTMENT = "same_department"
    NO_SHARED_LANGUAGE = "no_shared_language"
    INCIDENT_SHARE = "incident_share_reached"
    AT_CAPACITY = "at_capacity"


PROTECTIVE = frozenset(
    {
        Refusal.KEY_UNKNOWN,
        Refusal.INVOLVED,
        Refusal.INVESTIGATOR,
        Refusal.LINE_MANAGER,
        Refusal.SAME_TEAM,
    }
)
"""The rules that protect the colleague: nobody, a coordinator neither, sets them aside."""
OVERRIDABLE = frozenset(
    {
        Refusal.UNAVAILABLE,
        Refusal.ABSENT,
        Refusal.TRIED_BEFORE,
        Refusal.SAME_DEPARTMENT,
        Refusal.NO_SHARED_LANGUAGE,
        Refusal.INCIDENT_SHARE,
        Refusal.AT_CAPACITY,
    }
)
"""What a coordinator may set aside, giving a reason: availability, a declined offer they
have since talked over, the department, language, a large incident's share, capacity. An
inactive, untrained or other hospital's supporter is not theirs to assign."""


class DepartmentRule(StrEnum):
    """Programmes differ: a peer from outside the department, or as close as possible."""

    AVOID = "avoid"
    PREFER = "prefer"
    EITHER = "either"


@dataclass(frozen=True)
class Weights:
    function: float = 3.0
    seniority: float = 2.0
    age: float = 1.0
    load: float = 2.0
    waited: float = 1.0
    department: float = 2.0
    """Counts only where the hospital's department rule is `prefer`."""


@dataclass(frozen=True)
class Policy:
    weights: Weights = field(default_factory=Weights)
    department_rules: Mapping[str, DepartmentRule] = field(default_factory=dict)
    default_department_rule: DepartmentRule = DepartmentRule.AVOID
    large_incident: int = 5
    """More professionals than this in one incident is a large incident."""
    share_in_large_incident: int = 2
    """The most cases of one large incident a single supporter takes."""
    timezone: str = "Europe/Amsterdam"
    """Where "today" is, for availability, absences and training dates."""
    urgent_response: timedelta = timedelta(hours=2)
    """How long a supporter has to answer for a death, severe harm or a calamity."""
    response: timedelta = timedelta(hours=24)
    answer_grace: timedelta = timedelta(minutes=2)
    """An offer expires this long after its deadline: notify takes answers until the
    deadline, and one given at the last moment is still on its way here."""
    max_attempts: int = 3
    """Offers (declined or unanswered) before the coordinator takes the case over."""
    recent_window: timedelta = timedelta(days=90)
    """How far back the load looks beyond open cases: cases carried then still weigh, so the
    same few supporters are not always first once capacity frees."""
    recent_cases_full: int = 6
    """Cases carried in the window at which that half of the load counts fully."""

    def department_rule(self, hospital_id: str) -> DepartmentRule:
        return self.department_rules.get(hospital_id, self.default_department_rule)

    def today(self, now: datetime) -> date:
        return now.astimezone(ZoneInfo(self.timezone)).date()

    def response_time(self, profile: CaseProfile) -> timedelta:
        return self.urgent_response if profile.urgent else self.response


def priority(profile: CaseProfile) -> int:
    """Lower goes first when cases wait for a supporter."""
    if profile.urgent:
        return 0
    return 1 if profile.harm in (Harm.MODERATE, Harm.UNKNOWN) else 2


@dataclass(frozen=True, slots=True)
class Supporter:
    contact: SupporterContact
    hospital_id: str
    pseudonym: str
    function: Function
    department: str
    max_open_cases: int
    open_cases: int = 0
    active: bool = True
    team: str | None = None
    languages: frozenset[str] = frozenset()
    trained_on: date | None = None
    available_days: frozenset[Weekday] = frozenset()
    absences: tuple[Absence, ...] = ()
    seniority_years: int | None = None
    birth_year: int | None = None
    last_assigned_at: datetime | None = None
    carried: tuple[datetime, ...] = ()
    """When the supporter accepted each of their latest cases."""
    pseudonyms: Mapping[str, str] = field(default_factory=dict, hash=False)
    """By pseudonym key id: under each key in use (`pseudonym` is today's)."""

    @property
    def supporter_id(self) -> str:
        return self.contact.supporter_id

    def pseudonym_under(self, key_id: str | None) -> str | None:
        """To compare with a case opened with that key; None when the supporter was loaded
        without it (after it was dropped, or before a rotation was loaded)."""
        if key_id is None or not self.pseudonyms:
            return self.pseudonym
        return self.pseudonyms.get(key_id)


def excludes(exclusions: Exclusions, supporter: Supporter) -> bool:
    """Whether the incident excludes the supporter: involved in it or investigating it, or
    not to be told apart from those who are (loaded without the case's pseudonym key)."""
    pseudonym = supporter.pseudonym_under(exclusions.key_id)
    if pseudonym is None:
        return True
    tag = tagged(exclusions.salt, pseudonym)
    return tag in exclusions.involved_pseudonyms or tag in exclusions.investigator_pseudonyms


@dataclass(frozen=True)
class Case:
    """A case as matching sees it: the colleague pseudonymised, no contact details."""

    case_id: uuid.UUID
    correlation_id: str
    profile: CaseProfile
    colleague: Colleague
    exclusions: Exclusions
    tried: frozenset[str] = frozenset()
    """Supporters who declined or did not answer this case before."""
    opened_at: datetime | None = None
    preferences: SupportPreferences = field(default_factory=SupportPreferences)
    """What the colleague asked for, each a soft rule."""

    @property
    def hospital_id(self) -> str:
        return self.profile.hospital_id


@dataclass(frozen=True)
class Candidate:
    supporter: Supporter
    score: float


@dataclass
class Ranking:
    candidates: list[Candidate] = field(default_factory=list)
    """Best first; ties go to whoever waited longest since their last assignment."""
    refusals: Counter[Refusal] = field(default_factory=Counter)
    eligible: int = 0
    passed_over: PassedOver | None = None
    """The supporter the colleague asked for, when a rule turned them away."""


class _Judge:
    """The facts of one case and one day, worked out once for the whole roster: the fits
    that depend only on the case become lookup tables, so that judging each supporter is a
    few lookups, not a computation."""

    def __init__(
        self, case: Case, policy: Policy, now: datetime, incident_share: Mapping[str, int]
    ) -> None:
        colleague = case.colleague
        self.case = case
        self.hospital_id = case.profile.hospital_id
        self.team = colleague.team
        self.tried = case.tried
        self.weights = policy.weights
        self.now = now
        self.recent_since = now - policy.recent_window
        self.recent_full = policy.recent_cases_full
        self.today = policy.today(now)
        self.weekday = WEEKDAYS[self.today.weekday()]
        self.salt, self.key_id = case.exclusions.salt, case.exclusions.key_id
        self.excluded = {
            **dict.fromkeys(case.exclusions.involved_pseudonyms, Refusal.INVOLVED),
            **dict.fromkeys(case.exclusions.investigator_pseudonyms, Refusal.INVESTIGATOR),
            **(
                {colleague.line_manager_pseudonym: Refusal.LINE_MANAGER}
                if colleague.line_manager_pseudonym
                else {}
            ),
        }
        wishes = case.preferences
        self.named = wishes.supporter_id
        self.languages = frozenset([wishes.language] if wishes.language else colleague.languages)
        self.department = _folded(colleague.department)
        self.department_rule = _WISHED_RULE.get(
            wishes.department, policy.department_rule(case.hospital_id)
        )
        self.incident_share = incident_share
        large = case.exclusions.incident_size > policy.large_incident
        self.share_limit = policy.share_in_large_incident if large else None
        wished_function = wishes.function or colleague.function
        family = _FUNCTION_FAMILY.get(wished_function)
        self.function_fit = {
            f: 1.0
            if f == wished_function
            else 0.5
            if family and _FUNCTION_FAMILY.get(f) == family
            else 0.0
            for f in Function
        }
        self.seniority_fit = _Table(colleague.seniority_years, _seniority_fit)
        self.age_fit = _Table(colleague.birth_year, _age_fit)

    def refusal(self, s: Supporter) -> Refusal | None:
        """The first hard rule that turns the supporter away, in the order of `Refusal`."""
        if refused := self._unavailable(s):
            return refused
        if s.contact.supporter_id in self.tried:
            return Refusal.TRIED_BEFORE
        if (pseudonym := s.pseudonym_under(self.key_id)) is None:
            return Refusal.KEY_UNKNOWN
        if (tag := tagged(self.salt, pseudonym)) in self.excluded:
            return self.excluded[tag]
        if s.team is not None and s.team == self.team:
            return Refusal.SAME_TEAM
        if (
            self.department_rule is DepartmentRule.AVOID
            and _folded(s.department) == self.department
        ):
            return Refusal.SAME_DEPARTMENT
        if self.languages and self.languages.isdisjoint(s.languages):
            return Refusal.NO_SHARED_LANGUAGE
        if (
            self.share_limit is not None
            and self.incident_share.get(s.contact.supporter_id, 0) >= self.share_limit
        ):
            return Refusal.INCIDENT_SHARE
        if s.open_cases >= s.max_open_cases:
            return Refusal.AT_CAPACITY
        return None

    def _unavailable(self, s: Supporter) -> Refusal | None:
        """Whether the supporter can take any case of this hospital today."""
        if not s.active:
            return Refusal.INACTIVE
        if s.hospital_id != self.hospital_id:
            return Refusal.OTHER_HOSPITAL
        if s.trained_on is None or s.trained_on > self.today:
            return Refusal.NOT_TRAINED
        if s.available_days and self.weekday not in s.available_days:
            return Refusal.UNAVAILABLE
        if s.absences and any(a.first_day <= self.today <= a.last_day for a in s.absences):
            return Refusal.ABSENT
        return None

    def recent(self, s: Supporter) -> int:
        return sum(at >= self.recent_since for at in s.carried)

    def load(self, s: Supporter) -> float:
        """Half open cases against capacity, half cases carried in the recent window."""
        recent = min(self.recent(s), self.recent_full) / self.recent_full
        return 1 - (s.open_cases / s.max_open_cases + recent) / 2

    def fits(self, s: Supporter) -> tuple[float, float, float, float, float, float]:
        """Function, seniority, age, load, wait and department fit, each from 0 to 1."""
        last = s.last_assigned_at
        waited = 1.0 if last is None else min(1.0, max(0.0, (self.now - last) / WAIT_SPAN))
        department = 0.0
        if self.department_rule is DepartmentRule.PREFER:
            department = 1.0 if _folded(s.department) == self.department else 0.0
        return (
            self.function_fit[s.function],
            self.seniority_fit[s.seniority_years],
            self.age_fit[s.birth_year],
            self.load(s),
            waited,
            department,
        )

    def score(self, s: Supporter) -> float:
        w = self.weights
        function, seniority, age, load, waited, department = self.fits(s)
        return (
            w.function * function
            + w.seniority * seniority
            + w.age * age
            + w.load * load
            + w.waited * waited
            + w.department * department
            + (CHOSEN_POINTS if s.contact.supporter_id == self.named else 0.0)
        )


_WISHED_RULE: dict[str | None, DepartmentRule] = {
    "own": DepartmentRule.PREFER,
    "other": DepartmentRule.AVOID,
}
"""The colleague's wish about the department sets the hospital's rule aside for their case."""
CHOSEN_POINTS = 100.0
"""A supporter the colleague asked for by name comes first, if no rule turns them away."""


class _Table(dict[int | None, float]):
    """A fit against the colleague's value, computed once per supporter value met."""

    def __init__(self, colleague: int | None, fit: Callable[[int, int], float]) -> None:
        super().__init__({None: UNKNOWN_FIT})
        self.colleague = colleague
        self.fit = fit

    def __missing__(self, value: int | None) -> float:
        self[value] = (
            UNKNOWN_FIT
            if self.colleague is None or value is None
            else self.fit(value, self.colleague)
        )
        return self[value]


def _seniority_fit(years: int, colleague_years: int) -> float:
    shortfall = colleague_years - years
    return 1.0 if shortfall <= 0 else max(0.0, 1 - shortfall / SENIORITY_SPAN)


def _age_fit(birth_year: int, colleague_birth_year: int) -> float:
    return max(0.0, 1 - abs(birth_year - colleague_birth_year) / AGE_SPAN)


def rank(
    case: Case,
    roster: Iterable[Supporter],
    policy: Policy,
    now: datetime,
    incident_share: Mapping[str, int] | None = None,
    best: int | None = None,
) -> Ranking:
    """`incident_share`: how many cases of this case's incident each supporter holds;
    `best`: keep only that many candidates (the rest are counted, not ranked)."""
    judge = _Judge(case, policy, now, incident_share or {})
    refusal, score = judge.refusal, judge.score
    ranking = Ranking()
    refused = ranking.refusals
    scored: list[tuple[float, datetime, str, Supporter]] = []
    named_refusal: Refusal | None = None
    for supporter in roster:
        if reason := refusal(supporter):
            refused[reason] += 1
            if supporter.contact.supporter_id == judge.named:
                named_refusal = reason
        else:
            scored.append(
                (
                    -score(supporter),
                    supporter.last_assigned_at or _NEVER,
                    supporter.contact.supporter_id,
                    supporter,
                )
            )
    ranking.eligible = len(scored)
    if judge.named and judge.named not in {entry[2] for entry in scored}:
        ranking.passed_over = PassedOver(
            supporter_id=judge.named, refusal=named_refusal or "not_on_the_roster"
        )
    top = sorted(scored, key=_ORDER) if best is None else heapq.nsmallest(best, scored, _ORDER)
    ranking.candidates = [Candidate(entry[3], -entry[0]) for entry in top]
    return ranking


@dataclass(frozen=True)
class Judged:
    """One supporter as the coordinator's candidate list shows them."""

    supporter: Supporter
    score: float
    refusal: Refusal | None

    @property
    def overridable(self) -> bool:
        return self.refusal is None or self.refusal in OVERRIDABLE


def judge_each(
    case: Case,
    roster: Iterable[Supporter],
    policy: Policy,
    now: datetime,
    incident_share: Mapping[str, int] | None = None,
) -> list[Judged]:
    """Every supporter of the case's hospital with their score and the first rule that turns
    them away: those who fit first, then those a coordinator may still choose, then the rest,
    each by score (ties as in `rank`)."""
    judge = _Judge(case, policy, now, incident_share or {})
    judged = [
        Judged(s, judge.score(s), judge.refusal(s))
        for s in roster
        if s.hospital_id == case.hospital_id
    ]

    def order(j: Judged) -> tuple[int, float, datetime, str]:
        tier = 0 if j.refusal is None else 1 if j.overridable else 2
        return (tier, -j.score, j.supporter.last_assigned_at or _NEVER, j.supporter.supporter_id)

    return sorted(judged, key=order)


_NEVER = datetime.min.replace(tzinfo=UTC)
_ORDER = itemgetter(0, 1, 2)


def explain(case: Case, supporter: Supporter, policy: Policy, now: datetime) -> list[ScoreItem]:
    """The score's breakdown and the protective rules met, as a coordinator reads them."""
    judge = _Judge(case, policy, now, {})
    fits = judge.fits(supporter)
    return [
        *_score_items(case.colleague, supporter, policy.weights, fits, judge.recent(supporter)),
        *_rule_items(case.colleague, supporter, policy.weights, judge, department=fits[-1]),
    ]


def _score_items(
    colleague: Colleague, supporter: Supporter, w: Weights, fits: tuple[float, ...], recent: int
) -> list[ScoreItem]:
    function, seniority, age, load, waited, _ = fits
    fit = {1.0: "same", 0.5: "related"}.get(function, "different")
    last = supporter.last_assigned_at
    return [
        ScoreItem(
            rule="function",
            points=w.function * function,
            detail=f"{fit} function: {supporter.function}, colleague {colleague.function}",
            terms={"fit": fit, "function": supporter.function, "colleague": colleague.function},
        ),
        ScoreItem(
            rule="seniority",
            points=w.seniority * seniority,
            detail=(
                f"{_known(supporter.seniority_years)} years of experience, "
                f"colleague {_known(colleague.seniority_years)}"
            ),
            terms={
                "years": _known(supporter.seniority_years),
                "colleague": _known(colleague.seniority_years),
            },
        ),
        ScoreItem(
            rule="age",
            points=w.age * age,
            detail=f"born {_known(supporter.birth_year)}, colleague {_known(colleague.birth_year)}",
            terms={
                "years_apart": str(abs(supporter.birth_year - colleague.birth_year))
                if supporter.birth_year and colleague.birth_year
                else "unknown"
            },
        ),
        ScoreItem(
            rule="open_cases",
            points=w.load * load,
            detail=(
                f"{supporter.open_cases} of at most {supporter.max_open_cases} open cases, "
                f"{recent} carried recently"
            ),
            terms={
                "open": str(supporter.open_cases),
                "max": str(supporter.max_open_cases),
                "recent": str(recent),
            },
        ),
        ScoreItem(
            rule="waited",
            points=w.waited * waited,
            detail=f"last assigned {last:%Y-%m-%d}" if last else "never assigned before",
            terms={"last_assigned": f"{last:%Y-%m-%d}" if last else ""},
        ),
    ]


def _rule_items(
    colleague: Colleague, supporter: Supporter, w: Weights, judge: "_Judge", department: float
) -> list[ScoreItem]:
    """The department's part where the hospital has a rule, the protective rules, language."""
    items = []
    if judge.department_rule is not DepartmentRule.EITHER:
        same = department == 1.0
        items.append(
            ScoreItem(
                rule="department",
                points=w.department * department,
                detail=(
                    f"works in {supporter.department}, "
                    + ("the colleague's own department" if same else "outside the colleague's")
                    + f" ({colleague.department})"
                ),
                terms={"same": str(same).lower(), "department": colleague.department},
            )
        )
    if supporter.contact.supporter_id == judge.named:
        items.append(
            ScoreItem(
                rule="chosen_by_colleague",
                points=CHOSEN_POINTS,
                detail="the colleague asked for this supporter by name",
            )
        )
    items.append(
        ScoreItem(
            rule="protected",
            points=0.0,
            detail="not involved in the incident, not investigating it, not the colleague's "
            "line manager, not on the colleague's team",
        )
    )
    if judge.languages:
        shared = sorted(judge.languages & supporter.languages)
        items.append(
            ScoreItem(
                rule="language",
                points=0.0,
                detail=f"speaks {', '.join(shared)} with the colleague",
                terms={"languages": ", ".join(shared)},
            )
        )
    return items


def _known(value: int | None) -> str:
    return "unknown" if value is None else str(value)


@functools.cache
def _folded(department: str) -> str:
    return department.strip().casefold()


# --- What matching announces -------------------------------------------------------------------


def assignment_for(
    case: Case,
    candidate: Candidate,
    attempt: int,
    policy: Policy,
    at: datetime,
    caused_by: uuid.UUID,
    chosen_by_coordinator: bool = False,
    passed_over: PassedOver | None = None,
) -> PeerAssigned:
    explanation = explain(case, candidate.supporter, policy, at)
    if chosen_by_coordinator:
        explanation.append(CHOSEN_BY_COORDINATOR)
    return PeerAssigned(
        event_id=peer_assigned_id(case.case_id, attempt),
        assignment_id=assignment_id_for(case.case_id, attempt),
        case_id=case.case_id,
        attempt=attempt,
        profile=case.profile,
        supporter_id=candidate.supporter.supporter_id,
        score=round(candidate.score, 3),
        explanation=explanation,
        respond_by=at + policy.response_time(case.profile),
        case_opened_at=case.opened_at,
        passed_over=passed_over,
        **_envelope(case, at, caused_by),
    )


CHOSEN_BY_COORDINATOR = ScoreItem(
    rule="chosen_by_coordinator",
    points=0,
    detail="the programme's coordinator asked you personally",
)
"""The coordinator's reason stays in matching's audit log: it is free text."""


def assignment_id_for(case_id: uuid.UUID, attempt: int) -> uuid.UUID:
    return derived_event_id("assignment", case_id, attempt)


def peer_assigned_id(case_id: uuid.UUID, attempt: int) -> uuid.UUID:
    """The event that made an offer: what its cancellation for no response is caused by."""
    return derived_event_id("peer_assigned", case_id, attempt)


def escalation_for(
    case: Case,
    attempt: int,
    reason: EscalationReason,
    refusals: Counter[Refusal],
    at: datetime,
    caused_by: uuid.UUID,
    passed_over: PassedOver | None = None,
) -> CaseEscalated:
    return CaseEscalated(
        event_id=derived_event_id("case_escalated", case.case_id, attempt, reason),
        case_id=case.case_id,
        attempt=attempt,
        profile=case.profile,
        reason=reason,
        rejections={str(r): n for r, n in sorted(refusals.items())},
        passed_over=passed_over,
        **_envelope(case, at, caused_by),
    )


def cancellation_for(
    case: Case,
    attempt: int,
    supporter_id: str,
    reason: CancelReason,
    at: datetime,
    caused_by: uuid.UUID,
) -> AssignmentCancelled:
    return AssignmentCancelled(
        event_id=derived_event_id("assignment_cancelled", case.case_id, attempt),
        assignment_id=assignment_id_for(case.case_id, attempt),
        case_id=case.case_id,
        profile=case.profile,
        supporter_id=supporter_id,
        reason=reason,
        **_envelope(case, at, caused_by),
    )


def withdrawal_for(case: Case, attempt: int, at: datetime, caused_by: uuid.UUID) -> SupportEnded:
    """Support under way ends when the incident is withdrawn or entered in error."""
    return support_ended_for(case, attempt, SupportOutcome.WITHDRAWN, None, at, caused_by)


def support_ended_for(
    case: Case,
    attempt: int,
    outcome: SupportOutcome,
    referral: ReferralKind | None,
    at: datetime,
    caused_by: uuid.UUID,
) -> SupportEnded:
    """Matching ends a case (a withdrawal, or a coordinator's decision). The event id is the
    one any end of this assignment has, so it is counted once whoever ends it."""
    assignment_id = assignment_id_for(case.case_id, attempt)
    return SupportEnded(
        event_id=derived_event_id("support_ended", assignment_id),
        assignment_id=assignment_id,
        case_id=case.case_id,
        profile=case.profile,
        outcome=outcome,
        referral=referral,
        case_opened_at=case.opened_at,
        **_envelope(case, at, caused_by),
    )


def moved_deadline_for(
    case: Case, attempt: int, respond_by: datetime, at: datetime, caused_by: uuid.UUID
) -> ResponseDeadlineMoved:
    return ResponseDeadlineMoved(
        event_id=derived_event_id("deadline_moved", case.case_id, attempt, respond_by.isoformat()),
        assignment_id=assignment_id_for(case.case_id, attempt),
        case_id=case.case_id,
        profile=case.profile,
        respond_by=respond_by,
        **_envelope(case, at, caused_by),
    )


def _envelope(case: Case, at: datetime, caused_by: uuid.UUID) -> dict[str, Any]:
    return {
        "occurred_at": at,
        "producer": PRODUCER,
        "correlation_id": case.correlation_id,
        "causation_id": caused_by,
        "hospital_id": case.hospital_id,
    }
