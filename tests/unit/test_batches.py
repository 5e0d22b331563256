"""Batched handling (`shared.batches`) on FastStream's in-memory test broker: a batch is taken
together, in order; one bad event is dead-lettered and never fails its neighbours; an outage
retries the batch and dead-letters nothing."""

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated

import pytest
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry import trace
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter
from pymongo.errors import ConnectionFailure

from shared.batches import Batches, Delivery, Unchecked
from shared.errors import RejectedEvent, RetryLater
from shared.events import IncidentEvent
from shared.kafka import MAX_ATTEMPTS_FOR_UNEXPECTED_ERRORS, create_broker, subscription
from shared.settings import ServiceSettings
from tests.factories import incident_json

TOPIC = "incidents"
INCIDENTS = TypeAdapter(IncidentEvent)
REFUSED = "INC-REFUSED"


@dataclass
class Harness:
    broker: KafkaBroker
    batches: Batches
    taken_together: list[list[str]] = field(default_factory=list)
    """The incident ids of each batch taken together."""
    taken_alone: list[str] = field(default_factory=list)
    dead: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    outages: int = 0
    """How many more times taking a batch together meets an unreachable store."""
    failure: Exception = field(default_factory=lambda: RejectedEvent("the domain refuses it"))
    """What taking the REFUSED incident raises."""

    async def send(self, *bodies: bytes | str) -> None:
        """One batch of incidents (by id) or raw bodies."""
        await self.broker.publish_batch(*map(_value, bodies), topic=TOPIC)

    async def take(self, *incident_ids: str) -> None:
        """The same batch as a consumer fetches it again and again: FastStream's test
        broker numbers every record 0, a partition numbers them in turn."""
        records = [
            ConsumerRecord(TOPIC, 0, offset, 0, 0, None, _value(incident), None, 0, 0, [])
            for offset, incident in enumerate(incident_ids)
        ]
        await self.batches.handle(records, INCIDENTS, self.together, self.alone)

    async def together(self, batch: Sequence[Delivery[IncidentEvent]]) -> None:
        if self.outages:
            self.outages -= 1
            raise ConnectionFailure("the store is unreachable")
        self.taken_together.append([self._taken(one.event) for one in batch])

    async def alone(self, one: Delivery[IncidentEvent]) -> None:
        self.taken_alone.append(self._taken(one.event))

    def _taken(self, incident: IncidentEvent) -> str:
        if incident.incident_id == REFUSED:
            raise self.failure
        return incident.incident_id

    def dead_reasons(self) -> list[str]:
        return [headers["dlq-reason"] for _, headers in self.dead]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    settings = ServiceSettings(retry_backoff_max_seconds=0.01)
    broker, dead_letters = create_broker(settings, "intake", CollectorRegistry())
    harness = Harness(broker, Batches(dead_letters, _Quiet(), trace.get_tracer(__name__)))

    @broker.subscriber(TOPIC, **subscription(settings, "intake", "incidents", batch=True))
    async def on_incidents(
        incidents: Annotated[list[IncidentEvent], Unchecked], message: KafkaMessage
    ) -> None:
        await harness.batches.handle(
            message.raw_message, INCIDENTS, harness.together, harness.alone
        )

    @broker.subscriber(f"{TOPIC}.dlq")
    async def on_dead_letter(message: KafkaMessage) -> None:
        harness.dead.append((message.body, dict(message.headers)))

    async with TestKafkaBroker(broker):
        yield harness


def _value(body: bytes | str) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(incident_json(body)).encode()


class _Quiet:
    def info(self, *args: object, **kwargs: object) -> None:
        pass


async def test_a_batch_is_taken_together_in_its_order(harness: Harness) -> None:
    await harness.send("INC-1", "INC-2", "INC-3")
    assert harness.taken_together == [["INC-1", "INC-2", "INC-3"]]
    assert harness.taken_alone == []


async def test_a_malformed_event_is_dead_lettered_and_its_neighbours_taken_together(
    harness: Harness,
) -> None:
    await harness.send("INC-1", b"{not json", b'{"event_type": "incident.reported"}', "INC-2")
    assert harness.taken_together == [["INC-1", "INC-2"]]
    assert [body for body, _ in harness.dead] == [
        b"{not json",
        b'{"event_type": "incident.reported"}',
    ]
    not_json, violation = harness.dead_reasons()
    assert not_json == "not a JSON document"
    assert "contract violation(s): incident.reported.event_id: Field required" in violation


async def test_an_event_the_domain_refuses_fails_none_of_its_neighbours(
    harness: Harness,
) -> None:
    await harness.send("INC-1", REFUSED, "INC-2")
    assert harness.taken_together == []
    assert harness.taken_alone == ["INC-1", "INC-2"]
    assert harness.dead_reasons() == ["the domain refuses it"]
    assert json.loads(harness.dead[0][0])["incident_id"] == REFUSED


async def test_an_outage_retries_the_whole_batch_and_dead_letters_nothing(
    harness: Harness,
) -> None:
    harness.outages = 1
    with pytest.raises(ConnectionFailure):
        await harness.send("INC-1", "INC-2")
    await harness.send("INC-1", "INC-2")  # the redelivery, as the rewound consumer gets it
    assert harness.taken_together == [["INC-1", "INC-2"]]
    assert harness.dead == []


async def test_an_event_failing_alone_again_and_again_is_dead_lettered_at_last(
    harness: Harness,
) -> None:
    harness.failure = ValueError("a bug meets this event")
    for _ in range(MAX_ATTEMPTS_FOR_UNEXPECTED_ERRORS - 1):
        with pytest.raises(RetryLater, match="a bug"):
            await harness.take("INC-1", REFUSED, "INC-2")
    assert harness.dead == []
    await harness.take("INC-1", REFUSED, "INC-2")
    assert harness.dead_reasons() == ["failed 5 times: ValueError: a bug meets this event"]
    assert harness.taken_alone[-2:] == ["INC-1", "INC-2"], "the event behind it is taken at last"
