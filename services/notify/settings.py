"""notify's settings: the mail server, the SMS provider, links, the outreach cadence and the
coordinators it tells."""

from datetime import timedelta

from pydantic import Field, SecretStr

from shared.events import Email, HospitalId
from shared.settings import ErasureSettings, MailSettings, Secret, ServiceSettings


class NotifySettings(ServiceSettings, MailSettings, ErasureSettings):
    http_port: int = 8083
    sms_webhook_url: str | None = None
    """The SMS/pager provider's endpoint; without it, supporters are reached by email only."""
    sms_webhook_token: SecretStr | None = None
    sending_lease_seconds: float = 120.0
    """How long a claimed message may stay unsent before another worker may take it."""
    public_url: str = "http://127.0.0.1:8083"
    """Where supporters reach notify's pages: the base of every link in a message."""
    link_secret: Secret
    """Signs the links in messages. Required: with a known secret anyone could answer."""
    link_max_age_seconds: int = Field(default=45 * 24 * 3600, ge=60)
    """Longer than the last follow-up, whose link records contacts."""
    timezone: str = "Europe/Amsterdam"
    """Times in messages are shown in this zone."""
    follow_up_after: list[timedelta] = Field(
        default_factory=lambda: [timedelta(days=d) for d in (1, 3, 7, 30)]
    )
    """When after acceptance the supporter is prompted to check in again (ISO 8601
    durations or seconds, e.g. `["P1D", "P3D", "P7D", "P30D"]`)."""
    support_ends_after: timedelta = timedelta(days=14)
    """After the last follow-up: with no contact logged and no "still supporting" for this
    long (ISO 8601, e.g. `P14D`), support ends by itself as `lapsed`."""
    still_supporting_after: timedelta = timedelta(days=7)
    """"Still supporting" schedules one more follow-up this long after (ISO 8601)."""
    scan_seconds: float = Field(default=5.0, gt=0)
    """How often due reminders, follow-ups and retries are looked for."""
    scan_batch: int = Field(default=100, ge=1)
    sends_at_once: int = Field(default=8, ge=1)
    """Messages sent concurrently (each claimed on its own): a burst of offers need not wait
    for each mail server's answer in turn."""
    retry_max_seconds: float = Field(default=600.0, gt=0)
    """Ceiling of the pause before a message that failed for a passing reason is retried."""
    coordinators: dict[HospitalId, list[Email]] = Field(default_factory=dict)
    """Each hospital's coordinators, e.g. `{"ZH-A": ["peer-support@zh-a.example"]}`: told at
    once of an urgent escalation, daily of the rest."""
    safety_contacts: dict[HospitalId, list[Email]] = Field(default_factory=dict)
    """Each hospital's professional back-up for a concern about a colleague's safety (the
    on-call psychologist, the occupational physician), e.g.
    `{"ZH-A": ["psychologist-on-call@zh-a.example"]}`: mailed at once with the coordinators."""
    desk_url: str = "http://127.0.0.1:8082"
    """Where coordinators reach the desk (matching): the base of the links in their mail."""
    coordinator_digest_every: timedelta = timedelta(days=1)
    """At most one digest a hospital this often (ISO 8601, e.g. `P1D`)."""
    coordinator_contact_grace: timedelta = timedelta(seconds=60)
    """An urgent alert about a case nobody fits waits this long for the colleague's contact
    details before it is mailed without them."""
