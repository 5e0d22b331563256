"""Batched handling: what one fetch from Kafka brought, handled together (group commit).

A batch subscriber gets each partition's records in their order. `Batches` decodes each
record on its own, so a malformed one is dead-lettered at once and its neighbours flow on;
the handler then takes the rest together, typically in one unit of work (`run_steps`), so a
batch costs one commit, one outbox write and one publish. Order per key holds because a key
lives on one partition and the batch is handled in order; a redelivered batch is harmless
because every handler is idempotent.

A batch that cannot be taken whole for a reason of one of its events (one the domain
refuses, a bug one event triggers) is taken again one event at a time, with the
single-message rules: a poison event is dead-lettered, an unexpected failure retried and
dead-lettered after `MAX_ATTEMPTS_FOR_UNEXPECTED_ERRORS`. A passing failure (a server is
unreachable) is no event's: the whole batch waits and is retried.
"""

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, get_args

from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Tracer
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, TypeAdapter
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from shared.errors import RejectedEvent, RetryLater, describe
from shared.kafka import (
    MAX_ATTEMPTS_FOR_UNEXPECTED_ERRORS,
    DeadLetters,
    Record,
    is_passing,
    is_poison,
    records_of,
)
from shared.tracing import current_context, within

E = TypeVar("E")
E_co = TypeVar("E_co", covariant=True)
TRACE_HEADERS = ("traceparent", "tracestate")


@dataclass(frozen=True)
class Delivery(Generic[E_co]):
    """An event as a batch brought it, with the record it came in."""

    record: Record
    event: E_co
    trace: dict[str, str]
    """The trace it belongs to: its producer's, or one begun for it (`Batches.trace_of`)."""

    @property
    def key(self) -> bytes | None:
        key: bytes | None = self.record.key
        return key


@dataclass
class Batches:
    """How a service's batch subscribers take what they are given."""

    dead_letters: DeadLetters
    log: Any
    tracer: Tracer
    failures: dict[tuple[str, int, int], int] = field(default_factory=dict)
    """Unexpected failures of an event taken alone, by its position, until it succeeds or
    is dead-lettered."""

    async def handle(
        self,
        received: Record | Sequence[Record],
        contract: TypeAdapter[E],
        together: Callable[[Sequence[Delivery[E]]], Awaitable[None]],
        alone: Callable[[Delivery[E]], Awaitable[None]],
    ) -> None:
        """`together`: the batch's well-formed events, in order; `alone`: one of them, by
        the handler's usual single-event path; `received`: a batch subscriber's message."""
        deliveries = []
        for record in records_of(received):
            try:
                event = self._decoded(record, contract)
                deliveries.append(Delivery(record, event, self.trace_of(record)))
            except Exception as error:
                if not is_poison(error):
                    raise
                await self.dead_letters.send(record, describe(error))
        if not deliveries:
            return
        try:
            await together(deliveries)
        except Exception as error:
            if is_passing(error):
                raise
            self.log.info(
                "batch not taken whole; its events one at a time",
                events=len(deliveries),
                error=describe(error),
            )
            for delivery in deliveries:
                await self._alone(delivery, alone)

    async def handle_events(
        self,
        received: Record | Sequence[Record],
        contract: TypeAdapter[E],
        take: Callable[[Sequence[E]], Awaitable[None]],
    ) -> None:
        """The same, for a handler that takes events in order, a batch's as readily as one."""
        await self.handle(
            received,
            contract,
            lambda batch: take([one.event for one in batch]),
            lambda one: take([one.event]),
        )

    def trace_of(self, record: Record) -> dict[str, str]:
        """The trace the record's producer put it in, as its headers carry it. An event
        from outside any trace (a hospital's system) begins one of its own here: FastStream
        makes one span of a whole batch, and one incident's path should be one trace."""
        carried = {
            name: value.decode(errors="replace")
            for name, value in record.headers or ()
            if name in TRACE_HEADERS
        }
        if carried:
            return carried
        attributes = {
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.kafka.destination.partition": record.partition,
            "messaging.kafka.message.offset": record.offset,
            **({"messaging.kafka.message.key": record.key} if record.key else {}),
        }
        with self.tracer.start_as_current_span(
            f"{record.topic} receive",
            context=Context(),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ):
            return current_context()

    def _decoded(self, record: Record, contract: TypeAdapter[E]) -> E:
        value = record.value or b""
        if len(value) > (limit := self.dead_letters.max_event_bytes):
            raise RejectedEvent(f"event of {len(value)} bytes exceeds the limit of {limit} bytes")
        try:
            document = json.loads(value)
        except (ValueError, RecursionError) as error:
            raise RejectedEvent("not a JSON document") from error
        return contract.validate_python(document)

    async def _alone(
        self, delivery: Delivery[E], alone: Callable[[Delivery[E]], Awaitable[None]]
    ) -> None:
        record = delivery.record
        position = (record.topic, record.partition, record.offset)
        try:
            with within(delivery.trace):
                await alone(delivery)
        except Exception as error:
            if is_passing(error):
                raise
            attempt = self.failures.get(position, 0) + 1
            if is_poison(error) or attempt >= MAX_ATTEMPTS_FOR_UNEXPECTED_ERRORS:
                reason = describe(error)
                await self.dead_letters.send(
                    record, reason if is_poison(error) else f"failed {attempt} times: {reason}"
                )
            else:
                self.failures[position] = attempt
                raise RetryLater(f"failed {attempt} times: {describe(error)}") from error
        self.failures.pop(position, None)


class Unchecked:
    """Marks a batch subscriber's parameter, `Annotated[list[Contract], Unchecked]`: the
    service's AsyncAPI document shows each message's contract, while FastStream passes the
    bodies through unchecked (`shared.kafka.undecoded`) for `Batches` to check one by one."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        (contract,) = get_args(source)
        return core_schema.no_info_plain_validator_function(
            lambda bodies: bodies, json_schema_input_schema=handler.generate_schema(contract)
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """A lone reference to the contract wrapped: FastStream takes a parameter's lone
        reference for the first of its definitions, whichever that is."""
        contract = handler(schema)
        return {"allOf": [contract]} if "$ref" in contract else contract
