"""The delivery policy every handler runs under, on FastStream's in-memory test broker.

Poison goes to `T.dlq` with the original bytes and a readable reason; a passing failure is
retried, never dead-lettered.
"""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import CollectorRegistry

from shared.errors import RejectedEvent, RetryLater
from shared.events import IncidentReported
from shared.kafka import MAX_ATTEMPTS_FOR_UNEXPECTED_ERRORS, create_broker, subscription
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
