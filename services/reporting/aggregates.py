"""Anonymised aggregates of the programme: pure, no I/O.

A cell is a month x the configured dimensions (hospital, function, department, harm level)
and holds counts and histogram buckets only. Every event counts towards the cell of the case
it concerns (the month the incident occurred), so a cohort's cases, assignments and contacts
stay comparable. Which cells may be shown is decided when they are served (`disclosure`),
never when they are stored.
"""

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.events import (
    AnswerCounted,
    AssignmentCounted,
    CaseEvent,
    CaseOrigin,
    CaseProfile,
    ConcernCounted,
    ContactCounted,
    EndCounted,
    EscalationCounted,
    NotificationCounted,
    ReferralKind,
    StepCounted,
    SupportCaseCounted,
    SupportOutcome,
)

DIMENSIONS = ("hospital_id", "function", "department", "harm")
"""What cells can be split by besides the month; `REPORTING_DIMENSIONS` picks a subset."""
COUNTS = (
    "cases_opened",
    "opted_out",
    "peers_assigned",
    "escalated",
    "peers_notified",
    "reminded",
    "accepted",
    "declined",
    "contacts_logged",
    "supporter_minutes",
    "referrals",
    "safety_concerns",
    *(f"ended_{outcome}" for outcome in SupportOutcome),
    *(f"referred_{kind}" for kind in ReferralKind),
    *(f"opened_from_{origin}" for origin in CaseOrigin),
)
"""`referrals` counts contacts that referred; `referred_<kind>` cases that ended so;
`opened_from_<origin>` cases opened after an incident, a request or a colleague's referral;
`safety_concerns` concerns raised for a colleague's safety (never what was said)."""


@dataclass(frozen=True)
class Histogram:
    """A duration counted per bucket: buckets add up over months and hospitals, which
    percentiles do not, so p50 and p90 are read from the merged buckets when served."""

    name: str
    unit: str
    bounds: tuple[int, ...]
    """Each bucket's inclusive upper bound; the last bucket also holds everything beyond."""

    @property
    def buckets(self) -> list[str]:
        return [f"{self.name}_le_{bound}" for bound in self.bounds]

    def bucket(self, value: float) -> str:
        bound = next((b for b in self.bounds if value <= b), self.bounds[-1])
        return f"{self.name}_le_{bound}"

    def percentile(self, counts: Mapping[str, int], share: float) -> int | None:
        """The bound of the bucket holding that share of the values: 'within so long'."""
        tallies = [counts.get(bucket, 0) for bucket in self.buckets]
        if not (total := sum(tallies)):
            return None
        needed, seen = math.ceil(share * total), 0
        for bound, n in zip(self.bounds, tallies, strict=True):
            seen += n
            if seen >= needed:
                return bound
        return self.bounds[-1]

    def served(self, counts: Mapping[str, int]) -> dict[str, int | None]:
        return {
            f"{self.name}_p50": self.percentile(counts, 0.5),
            f"{self.name}_p90": self.percentile(counts, 0.9),
        }


TO_ASSIGNMENT = Histogram("hours_to_assignment", "hours", (1, 2, 4, 8, 12, 24, 48, 72, 168, 720))
"""From the case opening to its first offer; 720 reads '30 days or more'."""
TO_FIRST_CONTACT = Histogram("days_to_first_contact", "days", (0, 1, 2, 3, 5, 7, 14, 28, 90))
"""From the case opening to the first contact a supporter logged, in the hospital's days."""
IN_SUPPORT = Histogram("days_in_support", "days", (7, 14, 30, 60, 90, 180, 365))
"""From the case opening to the end of support, whatever the outcome."""
CONTACTS_PER_CASE = Histogram("contacts_per_case", "contacts", (0, 1, 2, 3, 4, 5, 7, 10))
"""Contacts logged in a support that ended (ends by matching, unknown, are not counted)."""
HISTOGRAMS = (TO_ASSIGNMENT, TO_FIRST_CONTACT, IN_SUPPORT, CONTACTS_PER_CASE)
MEASURES = (*COUNTS, *(bucket for h in HISTOGRAMS for bucket in h.buckets))
"""What a cell stores."""
WITHIN_TARGET = ("first_contact_within_target", "first_contact_within_target_percent")
SERVED = (*COUNTS, *(name for h in HISTOGRAMS for name in h.served({})), *WITHIN_TARGET)
"""What a row shows."""
FIRST_CONTACT_TARGET_DAYS = 3
"""The programme's target for a first contact (72 hours), in the hospital's days."""


def within_target(counts: Mapping[str, int], target_days: int) -> dict[str, int | None]:
    """First contacts within the target, and their share of the accepted cases: read from
    the merged buckets when served, so the target is a setting, not part of the cells."""
    within = sum(
        counts.get(bucket, 0)
        for bound, bucket in zip(TO_FIRST_CONTACT.bounds, TO_FIRST_CONTACT.buckets, strict=True)
        if bound <= target_days
    )
    accepted = counts.get("accepted", 0)
    percent = round(100 * within / accepted) if accepted else None
    return dict(zip(WITHIN_TARGET, (within, percent), strict=True))


def measures_of(event: CaseEvent) -> tuple[CaseProfile, dict[str, int]] | None:
    """The cell an event counts in and what it adds; None for an event not counted."""
    match event:
        case SupportCaseCounted():
            return event.profile, {
                "cases_opened": 1,
                "opted_out": int(event.opted_out),
                f"opened_from_{event.profile.origin}": 1,
            }
        case AssignmentCounted():
            return event.profile, _assigned(event)
        case EscalationCounted():
            return event.profile, {"escalated": 1}
        case NotificationCounted(step="offer"):
            return event.profile, {"peers_notified": 1}
        case NotificationCounted(step="reminder"):
            return event.profile, {"reminded": 1}
        case AnswerCounted(accepted=True):
            return event.profile, {"accepted": 1}
        case AnswerCounted(accepted=False):
            return event.profile, {"declined": 1}
        case EndCounted():
            return event.profile, _ended(event)
        case ContactCounted():
            return event.profile, _contact(event)
        case ConcernCounted():
            return event.profile, {"safety_concerns": 1}
    return None


def counted_as(event: CaseEvent) -> str:
    """The id reporting counts an event under: a step's is the id of the event it counts."""
    return str(event.counts if isinstance(event, StepCounted) else event.event_id)


def _assigned(event: AssignmentCounted) -> dict[str, int]:
    amounts = {"peers_assigned": 1}
    if event.attempt == 1 and event.case_opened_at:
        amounts[TO_ASSIGNMENT.bucket(_hours_between(event.case_opened_at, event.occurred_at))] = 1
    return amounts


def _ended(event: EndCounted) -> dict[str, int]:
    amounts = {f"ended_{event.outcome}": 1}
    if event.referral:
        amounts[f"referred_{event.referral}"] = 1
    if event.case_opened_at:
        days = _hours_between(event.case_opened_at, event.occurred_at) / 24
        amounts[IN_SUPPORT.bucket(days)] = 1
    if event.contacts is not None:
        amounts[CONTACTS_PER_CASE.bucket(event.contacts)] = 1
    return amounts


def _contact(event: ContactCounted) -> dict[str, int]:
    amounts = {
        "contacts_logged": 1,
        "supporter_minutes": event.minutes,
        "referrals": int(event.referred),
    }
    if event.first_of_case and event.case_opened_at:
        # The hospital's own day: the incident's time carries its offset.
        local = event.case_opened_at.astimezone(event.profile.incident_occurred_at.tzinfo)
        days = max((event.contact_date - local.date()).days, 0)
        amounts[TO_FIRST_CONTACT.bucket(days)] = 1
    return amounts


def _hours_between(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0) / 3600


@dataclass(frozen=True, order=True)
class Cell:
    month: str
    values: tuple[str, ...]
    """One value per dimension the cells are split by, in that order."""

    @classmethod
    def of(cls, profile: CaseProfile, dimensions: Sequence[str]) -> "Cell":
        known = {
            "hospital_id": profile.hospital_id,
            "function": profile.function.value,
            "department": profile.department,
            "harm": profile.harm.value,
        }
        return cls(profile.month, tuple(known[d] for d in dimensions))

    @property
    def key(self) -> str:
        return "|".join((self.month, *self.values))


def waiting_cases(events: Iterable[CaseEvent]) -> dict[tuple[str, str], set[str]]:
    """Per hospital's month (`releases`), the cases whose events are counted in it."""
    waiting: dict[tuple[str, str], set[str]] = {}
    for event in events:
        if measures_of(event):
            unit = (event.profile.month, event.profile.hospital_id)
            waiting.setdefault(unit, set()).add(str(event.case_id))
    return waiting


def tally(events: Iterable[CaseEvent], dimensions: Sequence[str]) -> dict[Cell, Counter[str]]:
    """Pre-aggregate a batch, so that writes scale with the cells touched, not the events."""
    cells: dict[Cell, Counter[str]] = {}
    for event in events:
        if counted := measures_of(event):
            profile, amounts = counted
            cells.setdefault(Cell.of(profile, dimensions), Counter()).update(amounts)
    return cells


@dataclass(frozen=True)
class Row:
    """A stored cell as read back: its month, its dimensions' values, its measures."""

    month: str
    dimensions: Mapping[str, str]
    counts: Mapping[str, int]


class Replay:
    """A rebuild's counting, held in memory: repeats dropped by their ids, cells merged across
    batches until written, and which cells and hospitals' months it has written, so that the
    store it fills is never read back and a cell is inserted once, then only added to."""

    def __init__(self, dimensions: Sequence[str]) -> None:
        self.dimensions = tuple(dimensions)
        self.counted: set[str] = set()
        """Every id counted (a rebuild's ledger: an event id, some 100 bytes each)."""
        self.cells: dict[Cell, Counter[str]] = {}
        self.waiting: dict[tuple[str, str], set[str]] = {}
        self.unwritten: list[str] = []
        """The ids counted since the last write."""
        self.written_cells: set[str] = set()
        self.written_units: set[tuple[str, str]] = set()

    def count(self, events: Iterable[CaseEvent]) -> int:
        """Add the events not counted before; returns how many were new."""
        fresh = [e for e in events if counted_as(e) not in self.counted]
        fresh = list({counted_as(e): e for e in fresh}.values())
        for cell, counts in tally(fresh, self.dimensions).items():
            self.cells.setdefault(cell, Counter()).update(counts)
        for unit, cases in waiting_cases(fresh).items():
            self.waiting.setdefault(unit, set()).update(cases)
        ids = [counted_as(e) for e in fresh]
        self.counted.update(ids)
        self.unwritten.extend(ids)
        return len(ids)

    def written(self) -> None:
        """What was held is now in the store."""
        self.written_cells.update(cell.key for cell in self.cells)
        self.written_units.update(self.waiting)
        self.cells, self.waiting, self.unwritten = {}, {}, []
