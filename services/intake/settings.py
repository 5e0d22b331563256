"""intake's settings: the common ones, the pseudonym key, and when to reach out."""

from datetime import UTC, date, datetime, timedelta

from pydantic import Field

from services.intake.cases import IntakePolicy
from shared.settings import PseudonymSettings, ServiceSettings

SERVICE = "intake"


class IntakeSettings(ServiceSettings, PseudonymSettings):
    """The common settings and the pseudonym key, which only intake and the roster use."""

    near_miss_outreach: bool = True
    """Reach out after near misses (`actuality: potential`) too."""
    large_incident: int = Field(default=5, ge=1)
    """More professionals than this in one incident: suggest a group debriefing."""
    plausible_since: date = date(2000, 1, 1)
    plausible_ahead: timedelta = timedelta(days=1)
    """An event dated before `PLAUSIBLE_SINCE`, or more than `PLAUSIBLE_AHEAD` (ISO 8601) ahead
    of now, is dead-lettered: its date cannot be right."""
    source_systems: dict[str, list[str]] | None = None
    """The hospitals each source system may report for, as JSON, e.g. `{"epd-zh-a":
    ["ZH-A"]}`; an event from another, or for another hospital, is dead-lettered. Unset: any
    source may report for any hospital (a warning says so at startup)."""

    def policy(self) -> IntakePolicy:
        return IntakePolicy(
            self.near_miss_outreach,
            self.large_incident,
            self.sources(),
            datetime.combine(self.plausible_since, datetime.min.time(), UTC),
            self.plausible_ahead,
        )

    def sources(self) -> dict[str, frozenset[str]] | None:
        if self.source_systems is None:
            return None
        return {source: frozenset(hospitals) for source, hospitals in self.source_systems.items()}
