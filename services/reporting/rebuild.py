"""Rebuilding the aggregates from the retained topics, as if reporting had just started.

The topics are the record: replaying them into an empty database gives the cells the
service built incrementally (repeats are dropped by their ids, as the counted-event ledger
drops them). What is replayed is tallied in memory (`Replay`) and written when it holds
`held_cells` cells and at the end, so the writes scale with the cells, not with the events,
and nothing is read back from the database being filled.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from services.reporting.aggregates import Replay
from services.reporting.store import CellStore
from shared.events import CaseEvent, case_event


@dataclass(frozen=True)
class Rebuilt:
    events: int
    counted: int
    malformed: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def rebuild(
    bootstrap_servers: str,
    topics: Sequence[str],
    store: CellStore,
    batch: int = 5_000,
    held_cells: int = 20_000,
    **options: Any,
) -> Rebuilt:
    """Replay every retained event of `topics` into `store`, which should be empty;
    `options`: the connection's (`client_options`)."""
    await store.ensure_indexes()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None, **options
    )
    await consumer.start()
    started = time.perf_counter()
    replay = Replay(store.dimensions)
    events = counted = malformed = 0
    try:
        await consumer.topics()  # fetches the metadata that lists the partitions
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        caught_up = False
        while True:
            # Once at the end offsets, one short poll confirms nothing more has arrived.
            wait_ms = 200 if caught_up else 1_000
            fetched = await consumer.getmany(timeout_ms=wait_ms, max_records=batch)
            records = [record for batch_of in fetched.values() for record in batch_of]
            parsed: list[CaseEvent] = []
            for record in records:
                try:
                    parsed.append(case_event.validate_json(record.value or b""))
                except ValidationError:
                    malformed += 1
            counted += replay.count(parsed)
            if len(replay.cells) >= held_cells:
                await store.fill(replay, datetime.now(UTC))
            events += len(records)
            positions = [await consumer.position(tp) for tp in ends]
            caught_up = all(at >= end for at, end in zip(positions, ends.values(), strict=True))
            if caught_up and not records:
                break
        await store.fill(replay, datetime.now(UTC))
    finally:
        await consumer.stop()
    return Rebuilt(events, counted, malformed, time.perf_counter() - started)
