"""The main job, end to end: incidents in, aggregates an analyst can read out."""

import asyncio
import textwrap
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer

from deploy.feed import (
    aggregates,
    expected_cases,
    publish_incidents,
    publish_raw,
    wait_until_settled,
)
from deploy.incidents import incidents
from deploy.stack import Stack
from shared.settings import Topics, dead_letter_topic

COLUMNS = ("cases_opened", "opted_out", "peers_assigned", "escalated", "peers_notified")


def format_table(rows: Sequence[dict[str, Any]], dimensions: Sequence[str]) -> str:
    header = [*dimensions, *COLUMNS]
    cells = [
        [
            *(str(row[d]) for d in dimensions),
            *(("suppressed" if row["suppressed"] else str(row[c])) for c in COLUMNS),
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    lines = [
        "  ".join(
            text.ljust(width) if i < len(dimensions) else text.rjust(width)
            for i, (text, width) in enumerate(zip(line, widths, strict=True))
        )
        for line in [header, *cells]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def dead_letters(bootstrap_servers: str, topic: str) -> list[tuple[bytes, str]]:
    """What landed in a dead-letter topic so far: (original bytes, reason)."""
    consumer = AIOKafkaConsumer(
        dead_letter_topic(topic),
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
    finally:
        await consumer.stop()
    return [
        (record.value or b"", dict(record.headers).get("dlq-reason", b"").decode())
        for records in batches.values()
        for record in records
    ]


def run_demo(stack: Stack, incident_count: int) -> None:
    topic = Topics().incidents_reported
    bootstrap = stack.servers.kafka_bootstrap_servers
    events = incidents(incident_count)
    cases = expected_cases(events)
    participants = sum(len(e["participants"]) for e in events)
    hospitals = sorted({e["hospital_id"] for e in events})
    print(
        f"\nFeeding {len(events)} incidents from {', '.join(hospitals)} "
        f"({participants} professionals involved), then 10 of them again (a resend) and one "
        "malformed event.",
        flush=True,
    )
    asyncio.run(publish_incidents(bootstrap, events))
    asyncio.run(
        publish_raw(bootstrap, b'{"event_type": "incident.reported"', b"ZH-A:BROKEN", topic)
    )
    asyncio.run(publish_incidents(bootstrap, events[:10]))
    totals = asyncio.run(wait_until_settled(stack.reporting_url, cases, within=600))

    print(f"\nAggregates from {stack.reporting_url}/api/v1/aggregates", flush=True)
    for dimensions in (["month", "hospital_id"], ["function"], ["harm"]):
        result = aggregates(stack.reporting_url, dimensions)
        print(f"\nby {' x '.join(dimensions)} (cells under {result['min_cell_size']} cases "
              "suppressed):")  # fmt: skip
        print(format_table(result["rows"], dimensions))
    print("\ntotal:\n" + format_table([totals], []))

    mails = stack.servers.received_mail()
    letters = asyncio.run(dead_letters(bootstrap, topic))
    print(f"\n{len(mails)} supporters were emailed (SMTP sink: {stack.servers.maildir}).")
    if mails:
        sample = mails[0]
        print(f"One of them, to {sample['To']}: {sample['Subject']}\n")
        body = sample.get_payload(decode=True)
        assert isinstance(body, bytes)
        print(textwrap.indent(body.decode().strip(), "  | ", lambda _: True))
    for value, reason in letters:
        print(f"dead-lettered on {dead_letter_topic(topic)}: {value[:40]!r}: {reason}")
    print(f"Service logs: {stack.workdir / 'logs'}")
    _check(totals, cases, len(mails), letters)


def _check(totals: dict[str, Any], cases: int, mails: int, letters: list[Any]) -> None:
    """The demo fails loudly when the pipeline did not do what it printed."""
    problems = []
    if totals["peers_notified"] != mails:
        problems.append(f"{mails} emails received but {totals['peers_notified']} counted")
    if totals["cases_opened"] != cases:
        problems.append(f"{totals['cases_opened']} cases counted, {cases} expected (a resend?)")
    if len(letters) != 1:
        problems.append(f"{len(letters)} dead letters, expected 1: {letters!r}")
    if problems:
        raise SystemExit("demo FAILED: " + "; ".join(problems))
    print("demo OK")
