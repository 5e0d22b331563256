"""intake's settings: the common ones, the pseudonym key, and when to reach out."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from pydantic import Field

from services.intake.cases import IntakePolicy
from services.intake.requests import SOURCE as REQUEST_PAGE
from shared.events import HospitalId
from shared.pseudonyms import PseudonymKeys
from shared.settings import AccessSettings, ExclusionSettings, MailSettings, PseudonymSettings

SERVICE = "intake"


class IntakeSettings(AccessSettings, PseudonymSettings, ExclusionSettings, MailSettings):
    """The common settings, the provisioning tokens of the staff directory's SCIM endpoint,
    the pseudonym key (which only intake and the roster use), the exclusion key (intake's and
    matching's) and the mail server the request page's confirmations go through."""

    def pseudonym_keys(self) -> PseudonymKeys:
        return replace(super().pseudonym_keys(), tag_key=self.tag_key())

    near_miss_outreach: bool = True
    """Reach out after near misses (`actuality: potential`) too."""
    large_incident: int = Field(default=5, ge=1)
    """More professionals than this in one incident: suggest a group debriefing."""
    plausible_since: date = date(2000, 1, 1)
    plausible_ahead: timedelta = timedelta(days=1)
    """An event dated before `PLAUSIBLE_SINCE`, or more than `PLAUSIBLE_AHEAD` (ISO 8601) ahead
    of now, is dead-lettered: its date cannot be right."""
    incidents_settle_after: timedelta = timedelta(days=180)
    """An incident (or request) unchanged this long (ISO 8601, e.g. `P180D`) is settled:
    intake forgets the pseudonyms of those involved; a later change of it is dead-lettered."""
    settle_scan_seconds: float = Field(default=3600, gt=0)
    source_systems: dict[str, list[str]] | None = None
    """The hospitals each source system may report for, as JSON, e.g. `{"epd-zh-a":
    ["ZH-A"]}`; an event from another, or for another hospital, is dead-lettered. Unset: any
    source may report for any hospital (a warning says so at startup)."""

    mail_domains: dict[HospitalId, list[str]] = Field(default_factory=dict)
    """Each hospital's staff mail domains, e.g. `{"ZH-A": ["zh-a.nl"]}`: the hospitals the
    request page takes requests for. Confirmations go to the staff directory's addresses."""
    trusted_identity_header: str | None = None
    """A header the hospital's sign-in proxy sets to the staff id of who is signed in, e.g.
    `X-Staff-Id`: then nobody needs to confirm by mail."""
    request_url: str = "http://127.0.0.1:8081"
    """Where staff reach the request page: the base of the confirmation links."""
    request_confirm_hours: float = Field(default=24, gt=0, le=72)
    requests_allowed: int = Field(default=5, ge=1)
    """Requests and choices in the window per identity the sign-in proxy vouches for, and
    per confirming address from one client address: nobody on one machine can bury a
    colleague in links, nor use up the colleague's own allowance."""
    requests_allowed_per_recipient: int = Field(default=20, ge=1)
    """Confirmation links one address receives in the window, from everyone together."""
    requests_allowed_per_hospital: int = Field(default=200, ge=1)
    """Requests and choices in the window for one hospital, from everyone together: bounds
    what a flood of made-up addresses can send."""
    requests_window_seconds: float = Field(default=3600, gt=0)

    def policy(self) -> IntakePolicy:
        return IntakePolicy(
            self.near_miss_outreach,
            self.large_incident,
            self.sources(),
            datetime.combine(self.plausible_since, datetime.min.time(), UTC),
            self.plausible_ahead,
        )

    def sources(self) -> dict[str, frozenset[str]] | None:
        """The request page publishes for the hospitals it takes requests for."""
        if self.source_systems is None:
            return None
        sources = {
            source: frozenset(hospitals) for source, hospitals in self.source_systems.items()
        }
        return {**sources, REQUEST_PAGE: frozenset(self.mail_domains)}
