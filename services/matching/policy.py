"""Who may support a colleague, and who should: pure, no I/O.

Hard rules turn a supporter away: they protect the colleague (nobody involved, investigating
or managing them, never from their own team) and the supporter (trained, available, within
capacity). Among those left, a weighted score prefers a peer the colleague can relate to
(function, seniority, age) and shares the work fairly (fewest open cases, longest wait since
the last assignment). Every assignment carries the score's breakdown, so a coordinator can
see why this peer.
"""

import functools
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from services.matching.supporters import (
    FUNCTIONS,
    Mask,
    RosterColumns,
    Supporter,
    as_columns,
    folded,
)
from shared.events import (
    AssignmentCancelled,
    CancelReason,
    CaseEscalated,
    CaseProfile,
    Colleague,
    ConcernRaisedBy,
    EscalationReason,
    Exclusions,
    Function,
    Harm,
    PassedOver,
    PeerAssigned,
    ReferralKind,
    ResponseDeadlineMoved,
    SafetyConcernRaised,
    ScoreItem,
    SupportCaseOpened,
    SupportEnded,
    SupportOutcome,
    SupportPreferences,
    SupportReopened,
    derived_event_id,
)
from shared.pseudonyms import key_fingerprint, tagged

PRODUCER = "matching"

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
    """Loaded without the pseudonym key the case was opened with, or this matching without
    the `EXCLUSION_KEY` its tags were made with: who they are among those involved cannot be
    told, so they do not take it."""
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
    tag_key: bytes | None = None
    """`EXCLUSION_KEY`: what the tags of cases opened with it are compared with."""

    def tag_key_for(self, exclusions: Exclusions) -> bytes | Literal[False] | None:
        """The key to tag a supporter's pseudonym with for this case: None for a case tagged
        with its salt alone, False when this matching lacks the key its tags were made with
        (then no supporter can be told apart from those involved)."""
        if exclusions.tag_key_id is None:
            return None
        if self.tag_key is None or key_fingerprint(self.tag_key) != exclusions.tag_key_id:
            return False
        return self.tag_key

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


def excludes(exclusions: Exclusions, supporter: Supporter, policy: Policy) -> bool:
    """Whether the incident excludes the supporter: involved in it or investigating it, or
    not to be told apart from those who are (loaded without the case's pseudonym key, or
    this matching without the key its tags were made with)."""
    pseudonym = supporter.pseudonym_under(exclusions.key_id)
    tag_key = policy.tag_key_for(exclusions)
    if pseudonym is None or tag_key is False:
        return True
    tag = tagged(exclusions.salt, pseudonym, tag_key)
    return tag in exclusions.involved_pseudonyms or tag in exclusions.investigator_pseudonyms


@dataclass(frozen=True)
class Case:
    """A case as matching sees it: the colleague pseudonymised, no contact details."""

    case_id: uuid.UUID
    correlation_id: str
    incident: str
    """What the incident's cases share: its random reference (for a case opened before
    references, its correlation id, the incident's key). Large incidents cap shares by it."""
    profile: CaseProfile
    colleague: Colleague
    exclusions: Exclusions
    tried: frozenset[str] = frozenset()
    """Supporters who declined or did not answer this case before."""
    opened_at: datetime | None = None
    preferences: SupportPreferences = field(default_factory=SupportPreferences)
    """What the colleague asked for, each a soft rule."""

    @classmethod
    def of(cls, opened: SupportCaseOpened, tried: frozenset[str] = frozenset()) -> "Case":
        return cls(
            case_id=opened.case_id,
            correlation_id=opened.correlation_id,
            incident=opened.incident_ref or opened.correlation_id,
            profile=opened.profile,
            colleague=opened.colleague,
            exclusions=opened.exclusions,
            tried=tried,
            opened_at=opened.occurred_at,
            preferences=opened.preferences,
        )

    @property
    def hospital_id(self) -> str:
        return self.profile.hospital_id


@dataclass(frozen=True)
class Candidate:
    supporter: Supporter
    score: float


@dataclass
class Ranking:
    candidates: list[Candidate]
    """Best first; ties go to whoever waited longest since their last assignment."""
    passed_over: PassedOver | None
    """The supporter the colleague asked for, when a rule turned them away."""
    count_refusals: Callable[[], Counter["Refusal"]] = field(repr=False)

    @functools.cached_property
    def refusals(self) -> Counter["Refusal"]:
        """How many supporters each rule turned away: worked out only when asked (for an
        escalation), since it tells apart everyone the incident excludes."""
        return self.count_refusals()


_REFUSALS = tuple(Refusal)
_NONE = len(_REFUSALS)
"""The code of no refusal: after every rule's."""
_CODE = {refusal: code for code, refusal in enumerate(_REFUSALS)}


class _Judge:
    """The facts of one case and one day, judged against every row of a roster at once.

    Whether the incident excludes a supporter needs their pseudonym tagged with the case's
    salt, an HMAC each: it is worked out only for the supporters a decision reaches, best
    first, unless every refusal must be counted."""

    def __init__(
        self,
        case: Case,
        policy: Policy,
        now: datetime,
        incident_share: Mapping[str, int],
        roster: RosterColumns,
    ) -> None:
        assert roster.carried_kept >= policy.recent_cases_full, "the load would miss cases"
        colleague, wishes = case.colleague, case.preferences
        self.case, self.roster, self.weights, self.now = case, roster, policy.weights, now
        self.recent_since = now - policy.recent_window
        self.recent_full = policy.recent_cases_full
        self.today = policy.today(now)
        self.salt, tag_key = case.exclusions.salt, policy.tag_key_for(case.exclusions)
        self.tag_key = tag_key or None
        self.pseudonyms, without_key = roster.pseudonyms_under(case.exclusions.key_id)
        if tag_key is False:
            without_key = np.ones(len(roster), np.bool_)
        self.excluded = {
            **dict.fromkeys(case.exclusions.involved_pseudonyms, Refusal.INVOLVED),
            **dict.fromkeys(case.exclusions.investigator_pseudonyms, Refusal.INVESTIGATOR),
            **(
                {colleague.line_manager_pseudonym: Refusal.LINE_MANAGER}
                if colleague.line_manager_pseudonym
                else {}
            ),
        }
        self.named = wishes.supporter_id
        self.languages = frozenset([wishes.language] if wishes.language else colleague.languages)
        self.department_rule = _WISHED_RULE.get(
            wishes.department, policy.department_rule(case.hospital_id)
        )
        self.before_tags = _first_refusals(
            len(roster),
            (Refusal.INACTIVE, ~roster.active),
            (Refusal.OTHER_HOSPITAL, roster.hospital != roster.number_of(case.hospital_id)),
            (Refusal.NOT_TRAINED, roster.trained > self.today.toordinal()),
            (Refusal.UNAVAILABLE, _unavailable(roster.days, self.today)),
            (Refusal.ABSENT, roster.absent_on(self.today)),
            (Refusal.TRIED_BEFORE, roster.rows_of(case.tried)),
            (Refusal.KEY_UNKNOWN, without_key),
        )
        department = folded(colleague.department)
        self.same_department = roster.department == roster.number_of(department)
        large = case.exclusions.incident_size > policy.large_incident
        self.after_tags = self._refusals_after_tags(
            incident_share, policy.share_in_large_incident if large else None
        )

    def _refusals_after_tags(
        self, incident_share: Mapping[str, int], share_limit: int | None
    ) -> npt.NDArray[np.int64]:
        """The rules checked after those the incident's exclusions make."""
        roster, avoid = self.roster, self.department_rule is DepartmentRule.AVOID
        return _first_refusals(
            len(roster),
            (Refusal.SAME_TEAM, roster.team == roster.number_of(self.case.colleague.team)),
            (Refusal.SAME_DEPARTMENT, self.same_department if avoid else None),
            (
                Refusal.NO_SHARED_LANGUAGE,
                ~roster.speaking_any(self.languages) if self.languages else None,
            ),
            (
                Refusal.INCIDENT_SHARE,
                roster.counts_of(incident_share) >= share_limit if share_limit else None,
            ),
            (Refusal.AT_CAPACITY, roster.open_cases >= roster.max_open_cases),
        )

    def tag_refusal(self, row: int) -> Refusal | None:
        pseudonym = self.pseudonyms[row]
        assert pseudonym is not None, "a supporter loaded without the key is refused before"
        return self.excluded.get(tagged(self.salt, pseudonym, self.tag_key))

    def refusal_of(self, row: int) -> Refusal | None:
        """The first hard rule that turns the supporter away, in the order of `Refusal`."""
        for code in (int(self.before_tags[row]), None, int(self.after_tags[row])):
            if code is None:
                if tag := self.tag_refusal(row):
                    return tag
            elif code != _NONE:
                return _REFUSALS[code]
        return None

    def refusal_codes(self) -> npt.NDArray[np.int64]:
        """Every supporter's first refusal: the HMAC for everyone the cheaper rules let by."""
        codes = self.before_tags.copy()
        for row in np.flatnonzero(codes == _NONE):
            if tag := self.tag_refusal(int(row)):
                codes[row] = _CODE[tag]
        return np.where(codes == _NONE, self.after_tags, codes)

    def count_refusals(self) -> Counter[Refusal]:
        counted = np.bincount(self.refusal_codes(), minlength=_NONE + 1)
        return Counter({_REFUSALS[code]: int(n) for code, n in enumerate(counted[:_NONE]) if n})

    def fits(self) -> tuple[npt.NDArray[np.float64], ...]:
        """Function, seniority, age, load, wait and department fit, each from 0 to 1."""
        roster, colleague = self.roster, self.case.colleague
        wished = self.case.preferences.function or colleague.function
        family = _FUNCTION_FAMILY.get(wished)
        function_fit = np.array(
            [
                1.0 if f == wished else 0.5 if family and _FUNCTION_FAMILY.get(f) == family else 0
                for f in FUNCTIONS
            ]
        )
        recent = (roster.carried >= self.recent_since.timestamp()).sum(axis=1)
        recent = np.minimum(recent, self.recent_full) / self.recent_full
        waited = (self.now.timestamp() - roster.last_assigned) / WAIT_SPAN.total_seconds()
        prefers = self.department_rule is DepartmentRule.PREFER
        return (
            function_fit[roster.function],
            _fit(roster.seniority, colleague.seniority_years, _seniority_fit),
            _fit(roster.birth_year, colleague.birth_year, _age_fit),
            1 - (roster.open_cases / roster.max_open_cases + recent) / 2,
            np.clip(waited, 0.0, 1.0),
            self.same_department.astype(np.float64) if prefers else np.zeros(len(roster)),
        )

    def scores(self) -> npt.NDArray[np.float64]:
        w = self.weights
        function, seniority, age, load, waited, department = self.fits()
        chosen = self.roster.rows_of([self.named] if self.named else [])
        return (
            w.function * function
            + w.seniority * seniority
            + w.age * age
            + w.load * load
            + w.waited * waited
            + w.department * department
            + CHOSEN_POINTS * chosen
        )

    def order(self, rows: npt.NDArray[np.intp], scores: npt.NDArray[np.float64]) -> list[int]:
        """Best score first; ties to whoever waited longest, then by supporter id."""
        roster = self.roster
        keys = (roster.id_order[rows], roster.last_assigned[rows], -scores[rows])
        return [int(row) for row in rows[np.lexsort(keys)]]

    def ranking(self, best: int | None) -> Ranking:
        rows = np.flatnonzero((self.before_tags == _NONE) & (self.after_tags == _NONE))
        scores = self.scores()
        candidates: list[Candidate] = []
        for row in self._best_first(rows, scores, best):
            if self.tag_refusal(row) is None:
                candidates.append(Candidate(self.roster.supporters[row], float(scores[row])))
                if len(candidates) == best:
                    break
        return Ranking(candidates, self._passed_over(), self.count_refusals)

    def _best_first(
        self, rows: npt.NDArray[np.intp], scores: npt.NDArray[np.float64], best: int | None
    ) -> Iterator[int]:
        """`rows` in order, sorting only the best few unless more are asked for: enough for
        `best` however many of them the incident excludes."""
        enough = len(rows) if best is None else best + len(self.excluded)
        if enough < len(rows):
            cut = np.partition(-scores[rows], enough - 1)[enough - 1]
            top = -scores[rows] <= cut
            yield from self.order(rows[top], scores)
            rows = rows[~top]
        yield from self.order(rows, scores)

    def _passed_over(self) -> PassedOver | None:
        if not self.named:
            return None
        row = self.roster.index.get(self.named)
        refusal = "not_on_the_roster" if row is None else self.refusal_of(row)
        return PassedOver(supporter_id=self.named, refusal=refusal) if refusal else None


def _first_refusals(size: int, *rules: tuple[Refusal, Mask | None]) -> npt.NDArray[np.int64]:
    """Each row's first rule (in the order given) that turns it away; `_NONE` for none."""
    codes = np.full(size, _NONE, np.int64)
    for refusal, refused in reversed(rules):
        if refused is not None:
            codes[refused] = _CODE[refusal]
    return codes


def _unavailable(days: npt.NDArray[np.int64], today: date) -> Mask:
    """Those who take cases only on some days, and not on this one."""
    unavailable: Mask = (days != 0) & (days & (1 << today.weekday()) == 0)
    return unavailable


def _fit(
    values: npt.NDArray[np.float64],
    colleague: int | None,
    fit: Callable[[npt.NDArray[np.float64], int], npt.NDArray[np.float64]],
) -> npt.NDArray[np.float64]:
    """A fit against the colleague's value; a value not given (either side) is unknown."""
    if colleague is None:
        return np.full(len(values), UNKNOWN_FIT)
    return np.where(np.isnan(values), UNKNOWN_FIT, fit(values, colleague))


def _seniority_fit(years: npt.NDArray[np.float64], colleague: int) -> npt.NDArray[np.float64]:
    shortfall = colleague - years
    return np.where(shortfall <= 0, 1.0, np.maximum(0.0, 1 - shortfall / SENIORITY_SPAN))


def _age_fit(birth_year: npt.NDArray[np.float64], colleague: int) -> npt.NDArray[np.float64]:
    return np.maximum(0.0, 1 - np.abs(birth_year - colleague) / AGE_SPAN)


_WISHED_RULE: dict[str | None, DepartmentRule] = {
    "own": DepartmentRule.PREFER,
    "other": DepartmentRule.AVOID,
}
"""The colleague's wish about the department sets the hospital's rule aside for their case."""
CHOSEN_POINTS = 100.0
"""A supporter the colleague asked for by name comes first, if no rule turns them away."""


def rank(
    case: Case,
    roster: RosterColumns | Iterable[Supporter],
    policy: Policy,
    now: datetime,
    incident_share: Mapping[str, int] | None = None,
    best: int | None = None,
) -> Ranking:
    """`incident_share`: how many cases of this case's incident each supporter holds;
    `best`: keep only that many candidates."""
    columns = as_columns(roster, policy.recent_cases_full)
    return _Judge(case, policy, now, incident_share or {}, columns).ranking(best)


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
    roster: RosterColumns | Iterable[Supporter],
    policy: Policy,
    now: datetime,
    incident_share: Mapping[str, int] | None = None,
) -> list[Judged]:
    """Every supporter of the case's hospital with their score and the first rule that turns
    them away: those who fit first, then those a coordinator may still choose, then the rest,
    each by score (ties as in `rank`)."""
    columns = as_columns(roster, policy.recent_cases_full)
    judge = _Judge(case, policy, now, incident_share or {}, columns)
    codes, scores = judge.refusal_codes(), judge.scores()
    rows = np.flatnonzero(columns.hospital == columns.number_of(case.hospital_id))
    refusals = {int(row): None if codes[row] == _NONE else _REFUSALS[codes[row]] for row in rows}
    tiers = np.array([0 if r is None else 1 if r in OVERRIDABLE else 2 for r in refusals.values()])
    ordered = [judge.order(rows[tiers == tier], scores) for tier in (0, 1, 2)]
    return [
        Judged(columns.supporters[row], float(scores[row]), refusals[row])
        for tier in ordered
        for row in tier
    ]


def explain(case: Case, supporter: Supporter, policy: Policy, now: datetime) -> list[ScoreItem]:
    """The score's breakdown and the protective rules met, as a coordinator reads them."""
    judge = _Judge(case, policy, now, {}, RosterColumns([supporter], policy.recent_cases_full))
    fits = tuple(float(fit[0]) for fit in judge.fits())
    recent = supporter.carried_since(judge.recent_since)
    return [
        *_score_items(case.colleague, supporter, policy.weights, fits, recent),
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
        same = supporter.department == colleague.department
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


def concern_for(
    case: Case,
    raised_by: ConcernRaisedBy,
    supporter_id: str | None,
    at: datetime,
    caused_by: uuid.UUID,
) -> SafetyConcernRaised:
    return SafetyConcernRaised(
        event_id=uuid.uuid4(),
        case_id=case.case_id,
        profile=case.profile,
        raised_by=raised_by,
        supporter_id=supporter_id,
        **_envelope(case, at, caused_by),
    )


def reopening_for(
    case: Case, ended_outcome: SupportOutcome, at: datetime, caused_by: uuid.UUID
) -> SupportReopened:
    return SupportReopened(
        event_id=uuid.uuid4(),
        case_id=case.case_id,
        profile=case.profile,
        ended_outcome=ended_outcome,
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
