"""Counting a batch of case events into the cells; a malformed one is dead-lettered without
failing the rest of its batch."""

from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from services.reporting.store import CellStore
from shared.errors import describe
from shared.events import CaseEvent, case_event
from shared.kafka import DeadLetters


async def count_batch(
    records: Sequence[ConsumerRecord[bytes, bytes]],
    store: CellStore,
    dead_letters: DeadLetters,
    log: Any,
) -> None:
    events: list[CaseEvent] = []
    malformed = []
    for record in records:
        try:
            events.append(case_event.validate_json(record.value or b""))
        except ValidationError as error:
            malformed.append((record, describe(error)))
    counted = await store.count_events(events)
    for record, reason in malformed:
        await dead_letters.send(record, reason)
    log.info("case events counted", received=len(records), counted=counted)
