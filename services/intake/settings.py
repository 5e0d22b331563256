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
