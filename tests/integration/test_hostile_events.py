"""Hostile or broken events from a hospital system, each followed on its partition by a valid one.

Whatever the first is, it reaches the dead-letter topic on its first attempt with a readable
reason, and the valid incident behind it is taken in within seconds.
"""

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from tests.factories import hospital_event, incident_json, outreach_choice_json, participant
from tests.integration.pipeline import Pipeline

WITHIN = 30.0
"""Seconds for the valid event behind the hostile one: generous for a loaded machine, far
below the five retries with growing pauses that an undecided event used to cost."""


def nested(depth: int) -> bytes:
    return b'{"event_type": "incident.reported", "x": ' + b"[" * depth + b"]" * depth + b"}"


def with_changes(hospital: str, **changes: Any) -> bytes:
    return json.dumps(incident_json("INC-HOSTILE", hospital_id=hospital, **changes)).encode()


def thousand_violations(hospital: str) -> bytes:
    broken = {"staff_id": "", "function": "wizard", "department": "", "birth_year": "x"}
    return with_changes(hospital, participants=[dict(broken, n=i) for i in range(100)])


HOSTILE: dict[str, tuple[Callable[[str], bytes], str]] = {
    "nested 1,000 levels deep": (lambda h: nested(1000), "not a JSON document"),
    "a revision of 2^70": (
        lambda h: with_changes(h, revision=2**70),
        "revision: Input should be less than or equal to",
    ),
    "a date that overflows in UTC": (
        lambda h: with_changes(h, occurred_at="9999-12-31T23:30:00-01:00"),
        "occurred_at: Value error, the time cannot be expressed in UTC",
    ),
    "a year far ahead": (
        lambda h: with_changes(h, occurred_at="3000-01-01T00:00:00+00:00"),
        "occurred_at: Value error, year 3000 is outside",
    ),
    "a date decades ahead": (
        lambda h: with_changes(h, occurred_at="2099-06-01T10:00:00+02:00"),
        "occurred_at 2099-06-01T10:00:00+02:00 lies in the future",
    ),
    "invalid UTF-8": (lambda h: b'{"hospital_id": "\xff\xfe"}', "not a JSON document"),
    "a JSON array": (lambda h: b"[1, 2, 3]", "contract violation"),
    "an infinite number": (
        lambda h: with_changes(h, participants=[participant("E1", seniority_years=1e400)]),
        "seniority_years",
    ),
    "a thousand violations": (thousand_violations, "and "),
    "another hospital's incident under this one's key": (
        lambda h: json.dumps(incident_json("INC-HOSTILE", hospital_id=f"{h}X")).encode(),
        "the Kafka key",
    ),
    "a huge string": (
        lambda h: with_changes(h, source_system="S" * 200_000),
        "source_system: String should match pattern",
    ),
}


@pytest.mark.parametrize("kind", HOSTILE)
async def test_a_hostile_event_is_dead_lettered_and_the_one_behind_it_flows(
    pipeline: Pipeline, kind: str
) -> None:
    hospital = f"H{uuid.uuid4().hex[:6]}"
    make, expected = HOSTILE[kind]
    hostile_key = f"{hospital}:INC-HOSTILE".encode()
    hostile = make(hospital)
    partition = await pipeline.send_raw(hostile, hostile_key)
    valid = incident_json("INC-VALID", [participant("E40001")], hospital_id=hospital)
    started = time.monotonic()
    await pipeline.report(valid, partition)

    await pipeline.until(
        lambda: pipeline.log.at(pipeline.topics.cases, hospital), within=WITHIN, what=kind
    )
    taken_in = time.monotonic() - started
    dlq = f"{pipeline.topics.incidents_reported}.dlq"
    await pipeline.until(lambda: pipeline.log.on(dlq, hostile_key.decode()), what="dead letter")
    (letter,) = pipeline.log.on(dlq, hostile_key.decode())
    headers = {k: v.decode() for k, v in letter.headers}
    assert expected in headers["dlq-reason"], headers["dlq-reason"]
    assert len(headers["dlq-reason"]) <= 2000
    assert letter.value == hostile
    print(f"{kind}: the valid event behind it taken in after {taken_in:.2f} s")


async def test_an_event_larger_than_a_produce_request_is_dead_lettered_in_part(
    pipeline: Pipeline,
) -> None:
    """1.5 MB is more than the service's own producer may send: its first bytes, size and
    digest go to the dead-letter topic, and the partition flows on."""
    hospital = f"H{uuid.uuid4().hex[:6]}"
    huge = with_changes(hospital, padding="x" * 1_500_000)
    big_producer = AIOKafkaProducer(
        bootstrap_servers=pipeline.bootstrap_servers, max_request_size=4 * 1024 * 1024
    )
    await big_producer.start()
    try:
        sent = await big_producer.send_and_wait(
            pipeline.topics.incidents_reported, huge, key=f"{hospital}:INC-HUGE".encode()
        )
    finally:
        await big_producer.stop()
    valid = incident_json("INC-VALID", [participant("E40002")], hospital_id=hospital)
    await pipeline.report(valid, sent.partition)

    await pipeline.until(lambda: pipeline.log.at(pipeline.topics.cases, hospital), within=WITHIN)
    dlq = f"{pipeline.topics.incidents_reported}.dlq"
    await pipeline.until(lambda: pipeline.log.on(dlq, f"{hospital}:INC-HUGE"))
    (letter,) = pipeline.log.on(dlq, f"{hospital}:INC-HUGE")
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["dlq-reason"].startswith(f"event of {len(huge)} bytes exceeds the limit")
    assert headers["dlq-truncated"] == "true"
    assert headers["dlq-original-bytes"] == str(len(huge))
    assert headers["dlq-original-sha256"] == hashlib.sha256(huge).hexdigest()
    assert huge.startswith(letter.value or b"x")
    assert 0 < len(letter.value or b"") < len(huge)


async def test_an_outreach_choice_dated_beyond_utc_is_dead_lettered_at_once(
    pipeline: Pipeline,
) -> None:
    hospital = f"H{uuid.uuid4().hex[:6]}"
    choice = outreach_choice_json(
        "E40003", "declined", hospital_id=hospital, occurred_at="9999-12-31T23:30:00-01:00"
    )
    request = hospital_event(
        "support.requested", hospital, request_id="REQ-1", professional=participant("E40004")
    )
    key = f"{hospital}:E40003"
    sent = await pipeline.producer.send_and_wait(
        pipeline.topics.staff, json.dumps(choice).encode(), key=key.encode()
    )
    await pipeline.producer.send_and_wait(
        pipeline.topics.staff,
        json.dumps(request).encode(),
        key=f"{hospital}:REQ-1".encode(),
        partition=sent.partition,
    )
    await pipeline.until(
        lambda: any(
            e["hospital_id"] == hospital for e in pipeline.log.events(pipeline.topics.cases)
        ),
        within=WITHIN,
        what="the request behind the choice opened a case",
    )
    dlq = f"{pipeline.topics.staff}.dlq"
    await pipeline.until(lambda: pipeline.log.on(dlq, key))
    (letter,) = pipeline.log.on(dlq, key)
    reason = dict(letter.headers)["dlq-reason"].decode()
    assert "occurred_at: Value error, the time cannot be expressed in UTC" in reason
