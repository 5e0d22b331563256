"""Kafka at the edge of every service: the broker, its delivery policy and its dead letters.

Delivery is at least once: an offset is committed only after its handler succeeded, and
every handler is idempotent. A failed message is then one of two things:

- *poison* (it can never succeed: malformed JSON, a contract violation, an event rejected by
  the domain, or a handler failing on it again and again): it goes to `T.dlq` with the
  original bytes, the reason and the time, and the messages behind it flow on;
- *passing* (a server is unreachable): it is retried after a growing pause, as often as it
  takes, because dead-lettering valid events during an outage would lose them in practice.
"""

import asyncio
import contextlib
import hashlib
import json
import logging
import random
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeAlias

import structlog
from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from bson.errors import BSONError
from faststream import AckPolicy
from faststream._internal.context.repository import ContextRepo
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.message import StreamMessage
from faststream.middlewares import BaseMiddleware
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure, PyMongoError

from shared.errors import RejectedEvent, RetryLater, describe
from shared.metrics import NAMESPACE
from shared.settings import ServiceSettings, TopicLayout, dead_letter_topic
from shared.tracing import tracer_provider

log = structlog.get_logger(__name__)

MAX_ATTEMPTS_FOR_UNEXPECTED_ERRORS = 5
DEAD_LETTER_EXCERPT_BYTES = 64 * 1024
"""What a dead letter keeps of an event too large to forward whole."""
HEADROOM_BYTES = 16 * 1024
"""Room left in a produce request for the dead letter's key, headers and framing."""
MAX_COPIED_HEADERS = 32
MAX_HEADER_CHARS = 512


PASSING_ERRORS: tuple[type[BaseException], ...] = (
    RetryLater,
    ConnectionFailure,
    KafkaError,
    OSError,
    TimeoutError,
)

POISON_ERRORS: tuple[type[BaseException], ...] = (
    ValidationError,
    RejectedEvent,
    json.JSONDecodeError,
    UnicodeError,
    RecursionError,
    OverflowError,
    BSONError,
)
"""Failures that depend on the event alone: retrying cannot help. `BSONError` covers a value
the store cannot encode (`OverflowError` too) and `DocumentTooLarge`."""


def is_passing(error: BaseException) -> bool:
    if isinstance(error, PyMongoError) and (
        error.timeout or error.has_error_label("TransientTransactionError")
    ):
        return True
    return isinstance(error, PASSING_ERRORS) and not isinstance(error, POISON_ERRORS)


def is_poison(error: BaseException) -> bool:
    return isinstance(error, POISON_ERRORS)


def retry_pause(attempt: int, ceiling: float) -> float:
    """Exponential with full jitter: retries of many messages never fall into step."""
    return min(ceiling, 0.2 * 2.0 ** min(attempt, 30)) * random.uniform(0.5, 1.0)


class DeadLetters:
    """Broker middleware factory: one scope per consumed message (or batch)."""

    def __init__(
        self,
        service: str,
        backoff_max_seconds: float,
        registry: CollectorRegistry,
        max_event_bytes: int,
        max_request_bytes: int,
    ):
        self.service = service
        self.backoff_max_seconds = backoff_max_seconds
        self.max_event_bytes = max_event_bytes
        self.max_dead_letter_bytes = max(
            DEAD_LETTER_EXCERPT_BYTES, max_request_bytes - HEADROOM_BYTES
        )
        self.broker: KafkaBroker | None = None
        self.failures: dict[tuple[str, int, int], int] = {}
        self.dead_lettered = Counter(
            "dead_lettered_messages",
            "Messages sent to a dead-letter topic, by source topic",
            ["topic"],
            registry=registry,
            namespace=NAMESPACE,
        )
        self.retried = Counter(
            "retried_messages",
            "Message deliveries that failed and will be retried, by source topic",
            ["topic"],
            registry=registry,
            namespace=NAMESPACE,
        )

    def expect(self, topics: Sequence[str]) -> None:
        """Series at zero for the topics consumed, so that an alert on their rise has a start."""
        for topic in topics:
            self.dead_lettered.labels(topic)
            self.retried.labels(topic)

    def __call__(self, msg: Any, /, *, context: ContextRepo) -> "_DeadLetterScope":
        return _DeadLetterScope(msg, context=context, policy=self)

    async def send(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        """Forward the event whole when a produce request can hold it, else its first bytes;
        its size and digest always travel in the headers, so nothing is lost unnoticed."""
        assert self.broker is not None, "DeadLetters.broker is set when the broker is built"
        value = record.value or b""
        headers = _copied_headers(record.headers)
        headers |= {
            "dlq-reason": reason,
            "dlq-failed-at": datetime.now(UTC).isoformat(),
            "dlq-service": self.service,
            "dlq-source": f"{record.topic}/{record.partition}/{record.offset}",
            "dlq-original-bytes": str(len(value)),
            "dlq-original-sha256": hashlib.sha256(value).hexdigest(),
        }
        key = record.key if record.key is None or len(record.key) <= MAX_HEADER_CHARS else None
        body = value
        if len(value) > self.max_dead_letter_bytes:
            body = value[:DEAD_LETTER_EXCERPT_BYTES]
        try:
            await self._publish(record.topic, body, key, headers, truncated=body is not value)
        except MessageSizeTooLargeError:  # the broker's own limit is lower than ours
            body = value[:DEAD_LETTER_EXCERPT_BYTES]
            await self._publish(record.topic, body, key, headers, truncated=True)
        self.dead_lettered.labels(record.topic).inc()
        log.warning(
            "event dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
            original_bytes=len(value),
        )

    async def _publish(
        self,
        topic: str,
        body: bytes,
        key: bytes | None,
        headers: dict[str, str],
        *,
        truncated: bool,
    ) -> None:
        assert self.broker is not None
        await self.broker.publish(
            body,
            topic=dead_letter_topic(topic),
            key=key,
            headers=headers | ({"dlq-truncated": "true"} if truncated else {}),
        )


def _copied_headers(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    """The event's own headers, bounded: a hostile producer's headers cannot swell the letter."""
    copied: dict[str, str] = {}
    for name, value in list(headers or ())[:MAX_COPIED_HEADERS]:
        if not name.startswith("dlq-") and len(name) <= MAX_HEADER_CHARS:
            copied[name] = value.decode(errors="replace")[:MAX_HEADER_CHARS]
    return copied


class _DeadLetterScope(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: ContextRepo, policy: DeadLetters) -> None:
        super().__init__(msg, context=context)
        self.policy = policy
        records = records_of(msg)
        self.records = records
        self.position = (
            (records[0].topic, records[0].partition, records[0].offset) if records else ("", 0, 0)
        )
        self.batch = isinstance(msg, tuple | list)
        self.not_json = False

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        with structlog.contextvars.bound_contextvars(
            topic=self.position[0], **_correlation_of(self.records)
        ):
            limit = self.policy.max_event_bytes
            if len(self.records) == 1 and len(self.records[0].value or b"") > limit:
                size = len(self.records[0].value or b"")
                raise RejectedEvent(f"event of {size} bytes exceeds the limit of {limit} bytes")
            if not self.batch:
                self.not_json = await _not_json(msg)
            return await call_next(msg)

    async def after_processed(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool:
        if not self.records:
            return False
        if exc_val is None:
            self.policy.failures.pop(self.position, None)
            return False
        if not isinstance(exc_val, Exception):
            return False  # cancellation and exits are not the message's fault
        attempt = self.policy.failures.get(self.position, 0) + 1
        self.policy.failures[self.position] = attempt
        batch = len(self.records) > 1
        if not batch and (
            is_poison(exc_val)
            or (not is_passing(exc_val) and attempt >= MAX_ATTEMPTS_FOR_UNEXPECTED_ERRORS)
        ):
            reason = "not a JSON document" if self.not_json else describe(exc_val)
            if not is_poison(exc_val):
                reason = f"failed {attempt} times: {reason}"
            try:
                await self.policy.send(self.records[0], reason)
            except Exception as error:
                return await self._retry(attempt, error, "dead letter not written, will retry")
            self.policy.failures.pop(self.position, None)
            return True  # handled: the offset is committed, the next message flows
        return await self._retry(attempt, exc_val, "handler failed, will retry")

    async def _retry(self, attempt: int, error: Exception, what: str) -> bool:
        """Pause, then let the subscriber's NACK_ON_ERROR rewind to this message."""
        self.policy.retried.labels(self.position[0]).inc()
        pause = retry_pause(attempt, self.policy.backoff_max_seconds)
        log.warning(
            what,
            topic=self.position[0],
            offset=self.position[2],
            attempt=attempt,
            retry_in_seconds=round(pause, 2),
            error=describe(error),
            exc_info=not is_passing(error),
        )
        await asyncio.sleep(pause)
        return False


async def _not_json(msg: StreamMessage[Any]) -> bool:
    """Decode the body before any handler does (FastStream caches it for the handler): a
    parser failure, such as the RecursionError of deep nesting, is the event's, decided now.
    Returns whether a non-empty body was left undecoded, as bytes that are not JSON."""
    try:
        decoded = await msg.decode()
    except Exception as error:
        raise RejectedEvent(f"not a JSON document ({describe(error)})") from error
    return isinstance(decoded, bytes | str) and bool(decoded)


def _correlation_of(records: tuple[ConsumerRecord[bytes, bytes], ...]) -> dict[str, str]:
    if len(records) != 1:
        return {}
    record = records[0]
    headers = dict(record.headers or ())
    if correlation := headers.get("correlation_id"):
        return {"correlation_id": correlation.decode(errors="replace")}
    if record.key:
        return {"correlation_id": record.key.decode(errors="replace")}
    return {}


def create_broker(
    settings: ServiceSettings, service: str, registry: CollectorRegistry
) -> tuple[KafkaBroker, DeadLetters]:
    dead_letters = DeadLetters(
        service,
        settings.retry_backoff_max_seconds,
        registry,
        settings.max_event_bytes,
        settings.kafka_max_request_bytes,
    )
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=service,
        acks="all",
        max_request_size=settings.kafka_max_request_bytes,
        enable_idempotence=settings.kafka_enable_idempotence,
        security=broker_security(settings),
        middlewares=[
            KafkaTelemetryMiddleware(tracer_provider=tracer_provider(service)),
            dead_letters,
            KafkaPrometheusMiddleware(
                registry=registry, app_name=service, metrics_prefix=NAMESPACE
            ),
        ],
        graceful_timeout=30.0,
        logger=logging.getLogger(f"{service}.broker"),
    )
    dead_letters.broker = broker
    return broker, dead_letters


Record: TypeAlias = ConsumerRecord[bytes, bytes]


def records_of(received: Record | Sequence[Record] | None) -> tuple[Record, ...]:
    """What a subscriber was given: one record, or a batch of them (a list on FastStream's
    test broker); FastStream also opens a middleware scope with no message around each
    publish."""
    if received is None:
        return ()
    return tuple(received) if isinstance(received, tuple | list) else (received,)


async def undecoded(message: StreamMessage[Any]) -> list[bytes]:
    """A batch subscriber's decoder: the bodies as they came, for `shared.batches` to check
    one at a time. FastStream's own would fail the whole batch on one body that says it is
    JSON and is not."""
    return [record.value or b"" for record in records_of(message.raw_message)]


def subscription(
    settings: ServiceSettings,
    service: str,
    handler: str,
    *,
    concurrent: bool = True,
    batch: bool = False,
    outreach: bool = False,
) -> dict[str, Any]:
    """Options every subscriber shares: commit after success, one consumer group per handler.

    A group per handler (not per service) keeps each group's members on the same topics, so
    instances of a service split each topic's partitions between them. A `concurrent`
    subscriber runs `consumers_per_topic` members of the group in this process, each handling
    its own partitions in order: concurrency between partitions, never within one. A `batch`
    subscriber (see `shared.batches`) takes what one fetch brings, up to `batch_max_records`,
    without waiting once a record has come. An `outreach` subscriber is one every case
    passes through on its way to a supporter's offer: its fetches wait the least at the
    broker (`kafka_fetch_max_wait_ms`), the others' longer.
    """
    consumers = settings.consumers_per_topic if concurrent and not batch else 1
    batching = {
        "batch": True,
        "max_records": settings.batch_max_records,
        "batch_timeout_ms": settings.batch_wait_ms,
        "decoder": undecoded,
    }
    return {
        "group_id": f"{settings.kafka_group_prefix}{service}.{handler}",
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": (
            settings.kafka_fetch_max_wait_ms
            if outreach
            else settings.kafka_background_fetch_max_wait_ms
        ),
        **({"max_workers": consumers} if consumers > 1 else {}),
        **(batching if batch else {}),
    }


async def ensure_topics(
    bootstrap_servers: str,
    topics: Sequence[str],
    layout: TopicLayout | None = None,
    *,
    ingress: Collection[str] = (),
    **options: Any,
) -> None:
    """Create each topic and its dead-letter topic if missing, as `layout` (by default the
    `TOPICS_*` settings) says, those in `ingress` kept shorter (`Topics.ingress`);
    `options`: the connection's (`client_options`)."""
    layout = layout or TopicLayout()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **options)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [t for topic in topics for t in (topic, dead_letter_topic(topic))]
        missing = [n for n in names if n not in existing]
        if missing:
            # Another process may create one between our list and our create: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            name,
                            num_partitions=layout.partitions,
                            replication_factor=layout.replication_factor,
                            topic_configs=layout.configs(
                                name.endswith(".dlq"), name.removesuffix(".dlq") in ingress
                            ),
                        )
                        for name in missing
                    ]
                )
    finally:
        await admin.close()


def client_options(settings: ServiceSettings) -> dict[str, Any]:
    """How an aiokafka client reaches the broker: TLS and SASL as the settings say."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_ca_file)
    if settings.kafka_security_protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": password.get_secret_value() if password else None,
        }
    return options


def broker_security(settings: ServiceSettings) -> BaseSecurity | None:
    """The same, as FastStream's broker takes it."""
    options = client_options(settings)
    tls = options.get("ssl_context")
    if not settings.kafka_security_protocol.startswith("SASL"):
        return BaseSecurity(ssl_context=tls) if tls else None
    kind = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
    return kind[settings.kafka_sasl_mechanism](
        options["sasl_plain_username"] or "",
        options["sasl_plain_password"] or "",
        ssl_context=tls,
        use_ssl=bool(tls),
    )
