"""Settings every service reads from its environment (or a `.env` file)."""

import math
from collections import Counter
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class Topics(BaseSettings):
    """Topic names; the dead letters of topic T go to `T.dlq`."""

    model_config = SettingsConfigDict(env_prefix="TOPIC_", env_file=".env", extra="ignore")

    incidents_reported: str = "incidents.reported.v1"
    """Public: incident.reported, .updated and .withdrawn from hospital incident systems."""
    staff: str = "staff.events.v1"
    """Public: support requests and outreach preferences from staff-facing systems."""
    roster: str = "roster.supporters.v1"
    cases: str = "support.cases.v1"
    contacts: str = "support.contacts.v1"
    assignments: str = "support.assignments.v1"
    responses: str = "support.responses.v1"
    notifications: str = "support.notifications.v1"

    def all(self) -> list[str]:
        return list(self.model_dump().values())

    def counted(self) -> list[str]:
        """The topics reporting counts from."""
        return [self.cases, self.assignments, self.responses, self.notifications]


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_group_prefix: str = ""
    """Prefix of every consumer group: several deployments on one Kafka cluster (with their
    TOPIC_* names set apart too) never share a group."""
    kafka_enable_idempotence: bool = False
    """Switch on where the broker is Apache Kafka; the local Tansu build lacks it."""
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
    retry_backoff_max_seconds: float = 30.0
    """Ceiling of the pause before a message that failed for a passing reason is retried."""
    outbox_relay_after_seconds: float = Field(default=5.0, gt=0)
    """An outbox entry this old was left by a process that died after its commit: relayed."""
    lag_check_seconds: float = Field(default=15.0, gt=0)
    """How often consumer lag is measured (the `consumer_lag_*` gauges, readiness)."""
    stall_after_seconds: float = Field(default=120.0, gt=0)
    """A partition whose messages wait this long with no progress makes the service not ready."""
    max_event_bytes: int = Field(default=256 * 1024, ge=1024)
    """A larger event is refused (dead-lettered) before it is parsed."""

    def database_name(self, service: str) -> str:
        return f"{self.mongodb_database_prefix}{service}"


class PseudonymSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    pseudonym_key: Secret
    """HMAC key for staff pseudonyms, the same in intake and in the roster loader. Required:
    a default key would let anyone who reads this code recompute every pseudonym."""
