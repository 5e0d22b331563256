"""intake's settings: the common ones, the pseudonym key, and when to reach out."""

from pydantic import Field

from shared.settings import PseudonymSettings, ServiceSettings

SERVICE = "intake"


class IntakeSettings(ServiceSettings, PseudonymSettings):
    """The common settings and the pseudonym key, which only intake and the roster use."""

    near_miss_outreach: bool = True
    """Reach out after near misses (`actuality: potential`) too."""
    large_incident: int = Field(default=5, ge=1)
    """More professionals than this in one incident: suggest a group debriefing."""
    source_systems: dict[str, list[str]] | None = None
    """The hospitals each source system may report for, as JSON, e.g. `{"epd-zh-a":
    ["ZH-A"]}`; an event from another, or for another hospital, is dead-lettered. Unset: any
    source may report for any hospital (a warning says so at startup)."""

    def sources(self) -> dict[str, frozenset[str]] | None:
        if self.source_systems is None:
            return None
        return {source: frozenset(hospitals) for source, hospitals in self.source_systems.items()}
