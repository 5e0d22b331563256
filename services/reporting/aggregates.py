"""Anonymised aggregates of the programme: pure, no I/O.

A cell is a month x hospital x function x harm level, and holds counts only. Every event
counts towards the cell of the case it concerns (the month the incident occurred), so a
cohort's cases, assignments and notifications stay comparable. Cells smaller than the minimum
cell size are suppressed when they are served, never when they are stored.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shared.events import (
    AssignmentAccepted,
    AssignmentDeclined,
    CaseEscalated,
    CaseEvent,
    CaseProfile,
    PeerAssigned,
    PeerNotified,
    SupportCaseOpened,
    SupportContactLogged,
)

DIMENSIONS = ("month", "hospital_id", "function", "harm")
MEASURES = (
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
)


def measures_of(event: CaseEvent) -> tuple[CaseProfile, dict[str, int]] | None:
    """The cell an event counts in and what it adds; None for an event not counted."""
    match event:
        case SupportCaseOpened():
            return event.profile, {"cases_opened": 1, "opted_out": int(event.opted_out)}
        case PeerAssigned():
            return event.profile, {"peers_assigned": 1}
        case CaseEscalated():
            return event.profile, {"escalated": 1}
        case PeerNotified(step="offer"):
            return event.profile, {"peers_notified": 1}
        case PeerNotified(step="reminder"):
            return event.profile, {"reminded": 1}
        case AssignmentAccepted():
            return event.profile, {"accepted": 1}
        case AssignmentDeclined():
            return event.profile, {"declined": 1}
        case SupportContactLogged():
            return event.profile, {
                "contacts_logged": 1,
                "supporter_minutes": event.minutes,
                "referrals": int(event.referred),
            }
    return None


@dataclass(frozen=True, order=True)
class Cell:
    month: str
    hospital_id: str
    function: str
    harm: str

    @classmethod
    def of(cls, profile: CaseProfile) -> "Cell":
        return cls(profile.month, profile.hospital_id, profile.function.value, profile.harm.value)

    @property
    def key(self) -> str:
        return "|".join((self.month, self.hospital_id, self.function, self.harm))

    def dimensions(self) -> dict[str, str]:
        return {d: getattr(self, d) for d in DIMENSIONS}


def tally(events: Iterable[CaseEvent]) -> dict[Cell, Counter[str]]:
    """Pre-aggregate a batch, so that writes scale with the cells touched, not the events."""
    cells: dict[Cell, Counter[str]] = {}
    for event in events:
        if counted := measures_of(event):
            profile, amounts = counted
            cells.setdefault(Cell.of(profile), Counter()).update(amounts)
    return cells


@dataclass
class Row:
    dimensions: dict[str, str]
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEASURES, 0))


@dataclass(frozen=True)
class ServedRow:
    dimensions: dict[str, str]
    counts: dict[str, int | None]
    suppressed: bool

    def as_json(self) -> dict[str, str | int | bool | None]:
        return {**self.dimensions, **self.counts, "suppressed": self.suppressed}


def roll_up(rows: Iterable[Row], group_by: Sequence[str]) -> list[Row]:
    """Sum rows over the dimensions not grouped by, sorted by the grouped ones."""
    grouped: dict[tuple[str, ...], Row] = {}
    for row in rows:
        key = tuple(row.dimensions[d] for d in group_by)
        target = grouped.setdefault(key, Row(dict(zip(group_by, key, strict=True))))
        for measure, n in row.counts.items():
            target.counts[measure] += n
    return [grouped[key] for key in sorted(grouped)]


def suppress(rows: Iterable[Row], min_cell_size: int) -> list[ServedRow]:
    """Hide every count of a cell with fewer cases than the minimum: small cells identify."""
    return [
        ServedRow(row.dimensions, dict(row.counts), suppressed=False)
        if row.counts["cases_opened"] >= min_cell_size
        else ServedRow(row.dimensions, dict.fromkeys(MEASURES), suppressed=True)
        for row in rows
    ]
