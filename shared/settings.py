"""Settings every service reads from its environment (or a `.env` file)."""

import math
import os
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shared.i18n import Language
from shared.pseudonyms import PseudonymKeys

MIN_SECRET_BITS = 48


def estimated_bits(secret: str) -> float:
    """The secret's length times the entropy of its characters' spread: a key of one repeated
    character or a short pattern scores low, whatever its length."""
    counts = Counter(secret).values()
    return -sum(n * math.log2(n / len(secret)) for n in counts)


def _unpredictable(value: SecretStr) -> SecretStr:
    bits = estimated_bits(value.get_secret_value())
    if bits < MIN_SECRET_BITS:
        raise ValueError(
            f"too predictable (about {bits:.0f} bits, at least {MIN_SECRET_BITS} needed): use a "
            "random one, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return value


Secret = Annotated[SecretStr, Field(min_length=16), AfterValidator(_unpredictable)]
"""A key or signing secret: long, and refused when it is plainly not random."""


class FromFiles(PydanticBaseSettingsSource):
    """`<NAME>_FILE=/run/secrets/...` gives a setting the content of that file (a Docker or
    Kubernetes secret), so no secret need stand in the environment."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        prefix = self.settings_cls.model_config.get("env_prefix", "")
        path = os.environ.get(f"{prefix}{field_name}_FILE".upper())
        value: Any = Path(path).read_text().rstrip("\r\n") if path else None
        if value is not None and self.field_is_complex(field):
            value = self.decode_complex_value(field_name, field, value)
        return value, field_name, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    """Settings from the environment, from `<NAME>_FILE` secrets, or from `.env`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, FromFiles(settings_cls), dotenv_settings


class Topics(BaseSettings):
    """Topic names; the dead letters of topic T go to `T.dlq`."""

    model_config = SettingsConfigDict(env_prefix="TOPIC_", env_file=".env", extra="ignore")

    incidents_reported: str = "incidents.reported.v1"
    """Public: incident.reported, .updated and .withdrawn from hospital incident systems."""
    staff: str = "staff.events.v1"
    """Public: support requests and outreach preferences from staff-facing systems."""
    roster: str = "roster.supporters.v1"
    """Supporters' profiles and pseudonyms, for matching alone."""
    roster_contacts: str = "roster.contacts.v1"
    """How to reach each supporter (name, e-mail, phone, language, channel), for notify."""
    cases: str = "support.cases.v1"
    case_counts: str = "support.case_counts.v1"
    """Each case opened, as reporting counts it: nothing about whom."""
    step_counts: str = "support.step_counts.v1"
    """Each later step of a case (an offer, an answer, a contact, the end) as reporting counts
    it: nobody's roster id."""
    contacts: str = "support.contacts.v1"
    """The colleague's contact details, sealed to their case's key."""
    contact_keys: str = "support.contact_keys.v1"
    """notify's public key for each case, to seal its contact details to."""
    assignments: str = "support.assignments.v1"
    responses: str = "support.responses.v1"
    notifications: str = "support.notifications.v1"

    def all(self) -> list[str]:
        return list(self.model_dump().values())

    def ingress(self) -> list[str]:
        """The topics hospital and staff systems write to, which intake reads at once."""
        return [self.incidents_reported, self.staff]

    def counted(self) -> list[str]:
        """The topics reporting counts from: written for it alone."""
        return [self.case_counts, self.step_counts]


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


class TopicLayout(BaseSettings):
    """How the product's topics are created where they are missing (`ensure_topics`, run by
    `make up`, the demo and the Kubernetes topic Job); existing topics are left as they are."""

    model_config = SettingsConfigDict(env_prefix="TOPICS_", env_file=".env", extra="ignore")

    partitions: int = Field(default=3, ge=1)
    """The most instances of a service that share a topic's work."""
    replication_factor: int = Field(default=1, ge=1)
    """3 on a production cluster."""
    min_insync_replicas: int | None = Field(default=None, ge=1)
    """2 on a production cluster: an acknowledged event survives the loss of a broker."""
    retention_days: float = Field(default=30, gt=0)
    """How long events stay replayable (a rebuild reads them). Keep it below reporting's
    `COUNTED_EVENT_RETENTION_DAYS`, so a late redelivery is still recognised."""
    dead_letter_retention_days: float = Field(default=14, gt=0)
    """Dead letters hold original events in full: kept only as long as it takes to look."""
    ingress_retention_days: float = Field(default=7, gt=0)
    """The hospitals' and staff systems' own events (staff ids, contact details) are read by
    intake at once: kept long enough to ride out an outage, and gone well before
    `PURGE_AFTER` has erased what intake made of them."""

    def configs(self, dead_letters: bool, ingress: bool = False) -> dict[str, str]:
        days = self.dead_letter_retention_days if dead_letters else self.retention_days
        if ingress:
            days = min(days, self.ingress_retention_days)
        configs = {"cleanup.policy": "delete", "retention.ms": str(int(days * 86_400_000))}
        if self.min_insync_replicas:
            configs["min.insync.replicas"] = str(self.min_insync_replicas)
        return configs


class ServiceSettings(Settings):
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_group_prefix: str = ""
    """Prefix of every consumer group: several deployments on one Kafka cluster (with their
    TOPIC_* names set apart too) never share a group."""
    kafka_enable_idempotence: bool = False
    """Switch on where the broker is Apache Kafka; the local Tansu build lacks it."""
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_file: str | None = None
    """Certificates to trust for the broker's TLS besides the system's."""
    kafka_max_request_bytes: int = Field(default=1024 * 1024, ge=128 * 1024)
    """Largest produce request; keep it at or below the broker's `message.max.bytes`."""
    mongodb_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongodb_timeout_seconds: float = Field(default=10.0, gt=0)
    """Longest any store operation may take before it fails (and is retried as passing)."""
    mongodb_database_prefix: str = "peer_support_"
    topics: Topics = Field(default_factory=Topics)
    log_level: str = "INFO"
    http_host: str = "127.0.0.1"
    http_port: int = 8081
    """Health, metrics (and reporting's API); each service has its own default."""
    consumers_per_topic: int = Field(default=3, ge=1)
    """Members of each consumer group in one process (partitions handled concurrently); more
    than a topic's partitions leaves the extra ones idle."""
    kafka_fetch_max_wait_ms: int = Field(default=25, ge=1)
    """Longest a fetch of the consumers every case passes through on its way to a
    supporter's offer (`subscription(..., outreach=True)`) waits at the broker for records.
    A broker that keeps a fetch waiting after records have come (Tansu does) adds up to this
    much to each of the path's hops; an idle consumer asks this often."""
    kafka_background_fetch_max_wait_ms: int = Field(default=250, ge=1)
    """The same for every other consumer (answers, the roster, staff messages, counts, the
    desk): asking less often leaves the broker's time to the outreach path."""
    batch_max_records: int = Field(default=200, ge=1)
    """Most events a batch subscriber takes in one transaction (group commit)."""
    batch_wait_ms: int = Field(default=10, ge=1)
    """A batch subscriber's pause after a fetch that brought nothing: what a record arriving
    then waits, at most, beyond the broker's own delivery."""
    retry_backoff_max_seconds: float = 30.0
    """Ceiling of the pause before a message that failed for a passing reason is retried."""
    outbox_relay_after_seconds: float = Field(default=5.0, gt=0)
    """An outbox entry this old was left by a process that died after its commit: relayed."""
    lag_check_seconds: float = Field(default=15.0, gt=0)
    """How often consumer lag is measured (the `consumer_lag_*` gauges, readiness)."""
    stall_after_seconds: float = Field(default=120.0, gt=0)
    """A partition whose messages wait this long with no progress makes the service not ready."""
    metrics_token: SecretStr | None = None
    """When set, `/metrics` answers only requests with `Authorization: Bearer <token>`;
    unset, only callers on this host."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses or networks (CIDR) of the proxies in front of the service: only from these
    are `X-Forwarded-For` and `X-Forwarded-Proto` believed (and intake's
    `TRUSTED_IDENTITY_HEADER`). None by default, loopback included."""
    secure_cookies: bool = False
    """The service is reached over HTTPS only: every answer carries HSTS, and session cookies
    are marked `Secure` even where the TLS proxy is not among `TRUSTED_PROXIES`."""
    page_language: Language = "nl"
    """Pages for a browser that asks for no language the product speaks (nl, en); a person
    switches on any page, and the API answers in English."""
    max_event_bytes: int = Field(default=256 * 1024, ge=1024)
    """A larger event is refused (dead-lettered) before it is parsed."""

    def database_name(self, service: str) -> str:
        return f"{self.mongodb_database_prefix}{service}"


class AccessSettings(ServiceSettings):
    """A service that people sign in to with bearer tokens (reporting's analysts, matching's
    coordinators)."""

    api_token_days: int = Field(default=90, ge=1, le=730)
    """A token issued now stops working this many days later."""
    session_hours: float = Field(default=8.0, gt=0, le=24)
    """How long a browser sign-in lasts."""
    sign_in_failures_allowed: int = Field(default=10, ge=1)
    sign_in_window_seconds: float = Field(default=300.0, gt=0)
    """Past that many unknown tokens from one address in this window, it gets 429."""


class IdentityProviderSettings(Settings):
    """The hospital's identity provider, where coordinators and analysts sign in to the pages
    (OpenID Connect): a leaver's account closed there can sign in nowhere here. Tokens stay
    for the API's machine clients, and for the pages when no provider is set."""

    oidc_issuer: str | None = None
    """The provider's issuer URL, e.g. `https://login.microsoftonline.com/<tenant>/v2.0`; its
    `/.well-known/openid-configuration` says the rest."""
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scope_claim: str = "peer_support_scope"
    """The ID token's claim that says what someone may see: `network` or one hospital id.
    Someone whose token lacks it is refused."""


class PagesSettings(AccessSettings, IdentityProviderSettings):
    """A service whose pages coordinators or analysts sign in to (matching's desk, reporting's
    dashboard)."""


class ErasureSettings(Settings):
    """How long what identifies a colleague outlives the end of their support."""

    purge_after: timedelta = timedelta(days=30)
    """A case's identifiable data is deleted this long after the case ended (ISO 8601,
    e.g. `P30D`): the colleague's contact details, the pseudonym's links, the offers."""
    purge_scan_seconds: float = Field(default=300.0, gt=0)
    """How often cases due for erasure are looked for."""


class MailSettings(Settings):
    """The mail server a service sends through (notify's outreach, intake's confirmations)."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_ca_file: str | None = None
    """A CA bundle to trust for STARTTLS, for a relay with a certificate of the hospital's own."""
    mail_from: str = "peer-support@hospital.example"


class ExclusionSettings(Settings):
    """The key a case's tags of pseudonyms are made with (intake) and compared with
    (matching): nobody else holds it, so nobody who reads the topics can tell from the tags
    which supporter was in which incident."""

    exclusion_key: Secret | None = None
    """Unset: tags are made with each case's salt alone, which anyone reading the cases and
    roster topics can repeat (a warning says so at startup). A matching without the key a case
    was tagged with refuses every supporter for it rather than guess."""

    def tag_key(self) -> bytes | None:
        return self.exclusion_key.get_secret_value().encode() if self.exclusion_key else None


class PseudonymSettings(Settings):
    pseudonym_key: Secret
    """HMAC key for staff pseudonyms, the same in intake and in the roster loader. Required:
    a default key would let anyone who reads this code recompute every pseudonym."""
    pseudonym_keys_retired: list[Secret] = Field(default_factory=list, max_length=5)
    """Keys `PSEUDONYM_KEY` replaced (JSON list), still recognised: keep one until every case
    opened with it has ended and been erased, then drop it."""

    def pseudonym_keys(self) -> PseudonymKeys:
        return PseudonymKeys(
            self.pseudonym_key.get_secret_value().encode(),
            tuple(key.get_secret_value().encode() for key in self.pseudonym_keys_retired),
        )
