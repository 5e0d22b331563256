"""Who may support a colleague, and who should: pure, no I/O.

Hard rules turn a supporter away; among those left, the least loaded goes first and, when
loads are equal, the one who waited longest since their last assignment, so the work is
shared fairly. Every candidate carries the reasons a coordinator would want to read.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.events import (
    Function,
    NoPeerAvailable,
    PeerAssigned,
    ScoreItem,
    SupportCaseOpened,
    SupporterContact,
    derived_event_id,
)

PRODUCER = "matching"


class Refusal(StrEnum):
    """Why a supporter cannot take a case, in the order the rules are checked."""

    INACTIVE = "inactive"
    OTHER_HOSPITAL = "other_hospital"
    INVOLVED = "involved_in_incident"
    SAME_DEPARTMENT = "same_department"
    AT_CAPACITY = "at_capacity"


@dataclass(frozen=True)
class Supporter:
    supporter_id: str
    hospital_id: str
    pseudonym: str
    display_name: str
    email: str
    function: Function
    department: str
    max_open_cases: int
    open_cases: int = 0
    active: bool = True
    phone: str | None = None
    language: str = "nl"
    seniority_years: int | None = None
    birth_year: int | None = None
    last_assigned_at: datetime | None = None

    @property
    def contact(self) -> SupporterContact:
        return SupporterContact(
            supporter_id=self.supporter_id,
            display_name=self.display_name,
            email=self.email,
            phone=self.phone,
            language=self.language,
        )


@dataclass(frozen=True)
class Candidate:
    supporter: Supporter
    explanation: list[ScoreItem]


@dataclass
class Ranking:
    candidates: list[Candidate] = field(default_factory=list)
    refusals: Counter[Refusal] = field(default_factory=Counter)


def refusal(case: SupportCaseOpened, supporter: Supporter) -> Refusal | None:
    if not supporter.active:
        return Refusal.INACTIVE
    if supporter.hospital_id != case.hospital_id:
        return Refusal.OTHER_HOSPITAL
    if supporter.pseudonym in case.involved_pseudonyms:
        return Refusal.INVOLVED
    if _same_department(supporter.department, case.colleague.department):
        return Refusal.SAME_DEPARTMENT
    if supporter.open_cases >= supporter.max_open_cases:
        return Refusal.AT_CAPACITY
    return None


def rank(case: SupportCaseOpened, roster: Iterable[Supporter]) -> Ranking:
    ranking = Ranking()
    eligible: list[Supporter] = []
    for supporter in roster:
        if reason := refusal(case, supporter):
            ranking.refusals[reason] += 1
        else:
            eligible.append(supporter)
    eligible.sort(key=_fairness)
    ranking.candidates = [Candidate(s, explain(case, s)) for s in eligible]
    return ranking


def explain(case: SupportCaseOpened, supporter: Supporter) -> list[ScoreItem]:
    last = supporter.last_assigned_at
    return [
        ScoreItem(
            rule="open_cases",
            value=supporter.open_cases,
            detail=f"{supporter.open_cases} of at most {supporter.max_open_cases} open cases",
        ),
        ScoreItem(
            rule="last_assigned",
            value=last.timestamp() if last else 0.0,
            detail=f"last assigned {last:%Y-%m-%d}" if last else "never assigned before",
        ),
        ScoreItem(
            rule="department",
            value=1.0,
            detail=(
                f"works in {supporter.department}, "
                f"outside the colleague's department {case.colleague.department}"
            ),
        ),
        ScoreItem(
            rule="not_involved",
            value=1.0,
            detail="not among the staff involved in the incident",
        ),
    ]


def _fairness(supporter: Supporter) -> tuple[int, float, str]:
    last = supporter.last_assigned_at.timestamp() if supporter.last_assigned_at else 0.0
    return (supporter.open_cases, last, supporter.supporter_id)


def _same_department(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def assignment_for(case: SupportCaseOpened, candidate: Candidate, at: datetime) -> PeerAssigned:
    attempt = 1
    return PeerAssigned(
        event_id=derived_event_id("peer_assigned", case.case_id, attempt),
        assignment_id=derived_event_id("assignment", case.case_id, attempt),
        case_id=case.case_id,
        attempt=attempt,
        profile=case.profile,
        supporter=candidate.supporter.contact,
        explanation=candidate.explanation,
        **_caused_by(case, at),
    )


def no_peer_for(case: SupportCaseOpened, ranking: Ranking, at: datetime) -> NoPeerAvailable:
    attempt = 1
    return NoPeerAvailable(
        event_id=derived_event_id("no_peer_available", case.case_id, attempt),
        case_id=case.case_id,
        attempt=attempt,
        profile=case.profile,
        rejections={str(reason): n for reason, n in sorted(ranking.refusals.items())},
        **_caused_by(case, at),
    )


def _caused_by(case: SupportCaseOpened, at: datetime) -> dict[str, Any]:
    return {
        "occurred_at": at,
        "producer": PRODUCER,
        "correlation_id": case.correlation_id,
        "causation_id": case.event_id,
        "hospital_id": case.hospital_id,
    }
