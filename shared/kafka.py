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
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import structlog
from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from faststream import AckPolicy
from faststream._internal.context.repository import ContextRepo
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.message import StreamMessage
from faststream.middlewares import BaseMiddleware
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure, PyMongoError

from shared.errors import RejectedEvent, RetryLater, describe
from shared.settings import ServiceSettings, dead_letter_topic

log = structlog.get_logger(__name__)

MAX_ATTEMPTS_FOR_UNEXPECTED_ERRORS = 5


PASSING_ERRORS: tuple[type[BaseException], ...] = (
    RetryLater,
    ConnectionFailure,
    KafkaError,
    OSError,
    TimeoutError,
)


def is_passing(error: BaseException) -> bool:
    if isinstance(error, PyMongoError) and error.has_error_label("TransientTransactionError"):
        return True
    return isinstance(error, PASSING_ERRORS)


def is_poison(error: BaseException) -> bool:
    return isinstance(error, ValidationError | RejectedEvent | json.JSONDecodeError | UnicodeError)


class DeadLetters:
    """Broker middleware factory: one scope per consumed message (or batch)."""

    def __init__(
        self,
        service: str,
        backoff_max_seconds: float,
        registry: CollectorRegistry,
        max_event_bytes: int,
    ):
        self.service = service
        self.backoff_max_seconds = backoff_max_seconds
        self.max_event_bytes = max_event_bytes
        self.broker: KafkaBroker | None = None
        self.failures: dict[tuple[str, int, int], int] = {}
        self.dead_lettered = Counter(
            "dead_lettered_messages",
            "Messages sent to a dead-letter topic, by source topic",
            ["topic"],
            registry=registry,
        )
        self.retried = Counter(
            "retried_messages",
            "Message deliveries that failed and will be retried, by source topic",
            ["topic"],
            registry=registry,
        )

    def __call__(self, msg: Any, /, *, context: ContextRepo) -> "_DeadLetterScope":
        return _DeadLetterScope(msg, context=context, policy=self)

    async def send(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        assert self.broker is not None, "DeadLetters.broker is set when the broker is built"
        headers = {k: v.decode(errors="replace") for k, v in record.headers or ()}
        headers |= {
            "dlq-reason": reason,
            "dlq-failed-at": datetime.now(UTC).isoformat(),
            "dlq-service": self.service,
            "dlq-source": f"{record.topic}/{record.partition}/{record.offset}",
        }
        await self.broker.publish(
            record.value or b"",
            topic=dead_letter_topic(record.topic),
            key=record.key,
            headers=headers,
        )
        self.dead_lettered.labels(record.topic).inc()
        log.warning(
            "event dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )


class _DeadLetterScope(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: ContextRepo, policy: DeadLetters) -> None:
        super().__init__(msg, context=context)
        self.policy = policy
        # FastStream also opens a middleware scope with no message around each publish.
        records = () if msg is None else msg if isinstance(msg, tuple) else (msg,)
        self.records: tuple[ConsumerRecord[bytes, bytes], ...] = records
        self.position = (
            (records[0].topic, records[0].partition, records[0].offset) if records else ("", 0, 0)
        )

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        with structlog.contextvars.bound_contextvars(
            topic=self.position[0], **_correlation_of(self.records)
        ):
            limit = self.policy.max_event_bytes
            if len(self.records) == 1 and len(self.records[0].value or b"") > limit:
                size = len(self.records[0].value or b"")
                raise RejectedEvent(f"event of {size} bytes exceeds the limit of {limit} bytes")
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
        batch = len(self.records) > 1
        if not batch and (
            is_poison(exc_val)
            or (not is_passing(exc_val) and attempt >= MAX_ATTEMPTS_FOR_UNEXPECTED_ERRORS)
        ):
            self.policy.failures.pop(self.position, None)
            reason = describe(exc_val)
            if not _is_json(self.records[0].value):
                reason = "not a JSON document"
            elif not is_poison(exc_val):
                reason = f"failed {attempt} times: {reason}"
            await self.policy.send(self.records[0], reason)
            return True  # handled: the offset is committed, the next message flows
        self.policy.failures[self.position] = attempt
        self.policy.retried.labels(self.position[0]).inc()
        pause = min(self.policy.backoff_max_seconds, 0.2 * 2**attempt)
        log.warning(
            "handler failed, will retry",
            topic=self.position[0],
            offset=self.position[2],
            attempt=attempt,
            retry_in_seconds=pause,
            error=describe(exc_val),
            exc_info=not is_passing(exc_val),
        )
        await asyncio.sleep(pause)
        return False  # the subscriber's NACK_ON_ERROR rewinds to this message


def _is_json(value: bytes | None) -> bool:
    try:
        json.loads(value or b"")
    except ValueError:
        return False
    return True


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
        service, settings.retry_backoff_max_seconds, registry, settings.max_event_bytes
    )
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=service,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        middlewares=[
            dead_letters,
            KafkaPrometheusMiddleware(registry=registry, app_name=service),
        ],
        graceful_timeout=30.0,
        logger=logging.getLogger(f"{service}.broker"),
    )
    dead_letters.broker = broker
    return broker, dead_letters


def subscription(
    settings: ServiceSettings, service: str, handler: str, *, concurrent: bool = True
) -> dict[str, Any]:
    """Options every subscriber shares: commit after success, one consumer group per handler.

    A group per handler (not per service) keeps each group's members on the same topics, so
    instances of a service split each topic's partitions between them. A `concurrent`
    subscriber runs `consumers_per_topic` members of the group in this process, each handling
    its own partitions in order: concurrency between partitions, never within one.
    """
    consumers = settings.consumers_per_topic if concurrent else 1
    return {
        "group_id": f"{settings.kafka_group_prefix}{service}.{handler}",
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "auto_offset_reset": "earliest",
        **({"max_workers": consumers} if consumers > 1 else {}),
    }


async def ensure_topics(bootstrap_servers: str, topics: Sequence[str], partitions: int = 3) -> None:
    """Create each topic and its dead-letter topic if missing."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [t for topic in topics for t in (topic, dead_letter_topic(topic))]
        missing = [n for n in names if n not in existing]
        if missing:
            # Another process may create one between our list and our create: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing]
                )
    finally:
        await admin.close()
