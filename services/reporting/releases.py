"""When a hospital's month is released to analysts, and when it is corrected: pure, no I/O.

Analysts never see the cells as they are counted. A month's figures are released once,
`RELEASE_DELAY` after the month closed, and are then fixed: what arrives later (most ends,
contacts and referrals do) waits, and is released as a correction only once it concerns at
least k cases (`MIN_CELL_SIZE`). So two answers about a hospital's month either come from one
release and are identical, or differ by the events of at least k people; a poll before and
after one late incident never shows that one incident.

The unit released is a hospital's month: a hospital's token reads its own months, so a
correction has to be large within the hospital, not only across the network. A month counted
long after it closed (a hospital joining with its history, a rebuild) gets the same delay
after its first event was counted, so its release is not a trickle of its first events.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class ReleaseUnit:
    """One hospital's month as reporting holds it: what analysts were last given of it,
    and how many cases have events counted since."""

    month: str
    hospital_id: str
    first_counted_at: datetime
    version: int | None
    """0 for the release, 1 and up for its corrections; None before the release."""
    waiting_cases: int
    """Cases with events counted since the latest release or correction."""

    @property
    def key(self) -> str:
        return f"{self.month}|{self.hospital_id}"


@dataclass(frozen=True)
class Release:
    """What analysts are shown of one hospital's month."""

    month: str
    hospital_id: str
    version: int
    released_at: datetime
    cases: int
    """The cases whose events this release or correction brought."""

    @property
    def kind(self) -> str:
        return "release" if self.version == 0 else f"correction {self.version}"

    def as_json(self) -> dict[str, str | int]:
        """As analysts are shown it: without `cases`, which on a small month would give away
        the very count its rows suppress (operators read it in the log)."""
        return {
            "month": self.month,
            "hospital_id": self.hospital_id,
            "version": self.version,
            "released_at": self.released_at.isoformat(),
        }


def month_end(month: str) -> datetime:
    """The first instant after the month, in UTC ('2026-11' gives 2026-12-01T00:00Z)."""
    year, number = int(month[:4]), int(month[5:])
    return datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)


def release_due(unit: ReleaseUnit, delay: timedelta) -> datetime:
    """`delay` after the month closed, or after its first event was counted if later."""
    return max(month_end(unit.month), unit.first_counted_at) + delay


def next_version(unit: ReleaseUnit, now: datetime, delay: timedelta, min_cases: int) -> int | None:
    """The version to publish now, if any: the release once due, then a correction each
    time at least `min_cases` cases are waiting."""
    if unit.version is None:
        return 0 if now >= release_due(unit, delay) else None
    return unit.version + 1 if unit.waiting_cases >= min_cases else None
