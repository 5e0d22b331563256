"""The delivery policy every handler runs under, on FastStream's in-memory test broker.

Poison goes to `T.dlq` with the original bytes and a readable reason; a passing failure is
retried, never dead-lettered.
"""

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from shared.errors import RejectedEvent, RetryLater
from shared.events import IncidentReported
from shared.kafka import (
    MAX_ATTEMPTS_FOR_UNEXPECTED_ERRORS,
    DeadLetters,
    create_broker,
    subscription,
)
from shared.settings import ServiceSettings
from tests.factories import incident_json

TOPIC = "incidents"


@dataclass
class Harness:
    broker: KafkaBroker
    handled: list[IncidentReported] = field(default_factory=list)
    dead: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    failure: Exception | None = None

    async def send(self, body: bytes | dict[str, object]) -> None:
        value = body if isinstance(body, bytes) else json.dumps(body).encode()
        await self.broker.publish(value, TOPIC, key=b"ZH-A:INC-1")


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    settings = ServiceSettings(retry_backoff_max_seconds=0.01)
    broker, _ = create_broker(settings, "intake", CollectorRegistry())
    harness = Harness(broker)

    @broker.subscriber(TOPIC, **subscription(settings, "intake", "incidents"))
    async def on_incident(incident: IncidentReported) -> None:
        if harness.failure:
            raise harness.failure
        harness.handled.append(incident)

    @broker.subscriber(f"{TOPIC}.dlq")
    async def on_dead_letter(message: KafkaMessage) -> None:
        harness.dead.append((message.body, dict(message.headers)))

    async with TestKafkaBroker(broker):
        yield harness


async def test_a_malformed_event_is_dead_lettered_with_its_bytes(harness: Harness) -> None:
    await harness.send(b"{not json")
    await harness.send(incident_json())
    ((body, headers),) = harness.dead
    assert body == b"{not json"
    assert headers["dlq-reason"] == "not a JSON document"
    assert headers["dlq-service"] == "intake"
    assert len(harness.handled) == 1  # the event behind it was handled


async def test_a_contract_violation_names_the_field(harness: Harness) -> None:
    await harness.send(incident_json(harm="catastrophic"))
    ((_, headers),) = harness.dead
    reason = headers["dlq-reason"]
    assert reason.startswith("1 contract violation(s): incident.harm: Input should be 'none'")


async def test_an_event_the_domain_refuses_is_dead_lettered(harness: Harness) -> None:
    harness.failure = RejectedEvent("incident from an unknown hospital")
    await harness.send(incident_json())
    ((_, headers),) = harness.dead
    assert headers["dlq-reason"] == "incident from an unknown hospital"


async def test_a_passing_failure_is_never_dead_lettered(harness: Harness) -> None:
    harness.failure = RetryLater("MongoDB is unreachable")
    for _ in range(MAX_ATTEMPTS_FOR_UNEXPECTED_ERRORS + 2):
        with pytest.raises(RetryLater):
            await harness.send(incident_json())
    assert harness.dead == []


async def test_an_event_failing_again_and_again_is_dead_lettered_at_last(harness: Harness) -> None:
    harness.failure = ValueError("a bug meets this event")
    for _ in range(MAX_ATTEMPTS_FOR_UNEXPECTED_ERRORS - 1):
        with pytest.raises(ValueError, match="a bug"):
            await harness.send(incident_json())
    assert harness.dead == []
    await harness.send(incident_json())
    ((_, headers),) = harness.dead
    assert headers["dlq-reason"] == "failed 5 times: ValueError: a bug meets this event"


async def test_an_error_no_retry_can_mend_is_dead_lettered_on_the_first_attempt(
    harness: Harness,
) -> None:
    harness.failure = OverflowError("MongoDB can only handle up to 8-byte ints")
    await harness.send(incident_json())
    ((_, headers),) = harness.dead
    assert headers["dlq-reason"] == "OverflowError: MongoDB can only handle up to 8-byte ints"


async def test_thousands_of_violations_make_a_short_reason(harness: Harness) -> None:
    broken = {"staff_id": "", "function": "wizard", "department": ""}
    await harness.send(incident_json(participants=[broken] * 100, investigators=[""] * 50))
    ((_, headers),) = harness.dead
    reason = headers["dlq-reason"]
    assert reason.startswith("350 contract violation(s): ")
    assert reason.endswith("; and 340 more")


async def test_a_large_event_keeps_its_size_and_digest_beside_its_first_bytes() -> None:
    settings = ServiceSettings(kafka_max_request_bytes=128 * 1024, max_event_bytes=512 * 1024)
    broker, _ = create_broker(settings, "intake", CollectorRegistry())
    dead: list[tuple[bytes, dict[str, str]]] = []

    @broker.subscriber(TOPIC, **subscription(settings, "intake", "incidents"))
    async def on_incident(incident: IncidentReported) -> None:
        raise AssertionError("an invalid event never reaches the handler")

    @broker.subscriber(f"{TOPIC}.dlq")
    async def on_dead_letter(message: KafkaMessage) -> None:
        dead.append((message.body, dict(message.headers)))

    large = json.dumps(incident_json(harm="x" * 300_000)).encode()
    async with TestKafkaBroker(broker):
        await broker.publish(large, TOPIC, key=b"ZH-A:INC-1")
    ((body, headers),) = dead
    assert large.startswith(body)
    assert len(body) == 64 * 1024
    assert headers["dlq-truncated"] == "true"
    assert headers["dlq-original-bytes"] == str(len(large))
    assert headers["dlq-original-sha256"] == hashlib.sha256(large).hexdigest()


async def test_a_dead_letter_that_cannot_be_written_is_retried_after_a_pause(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    async def broker_down(*args: object, **kwargs: object) -> None:
        raise KafkaConnectionError("the broker is away")

    monkeypatch.setattr(asyncio, "sleep", pause)
    (dead_letters,) = [m for m in harness.broker.middlewares if isinstance(m, DeadLetters)]
    monkeypatch.setattr(dead_letters, "_publish", broker_down)
    for _ in range(3):
        with pytest.raises(ValidationError):
            await harness.send(incident_json(harm="catastrophic"))
    assert len(pauses) == 3
    assert all(p > 0 for p in pauses)
    assert harness.dead == []

    monkeypatch.undo()
    await harness.send(incident_json(harm="catastrophic"))
    assert len(harness.dead) == 1
