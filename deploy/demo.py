"""The main job, end to end: incidents in, aggregates an analyst can read out."""

import asyncio
import json
import textwrap
import time
from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any

from aiokafka import AIOKafkaConsumer

from deploy.feed import (
    Counted,
    expected_cases,
    publish_incidents,
    publish_raw,
    wait_until_settled,
)
from deploy.incidents import incidents
from deploy.stack import Stack
from deploy.supporters import answer_offers, body_of, is_offer, log_contacts
from shared.settings import Topics, dead_letter_topic

COLUMNS = ("cases_opened", "opted_out", "peers_assigned", "escalated", "peers_notified")


TIME_COLUMNS = (
    "cases_opened",
    "accepted",
    "supporter_minutes",
    "hours_to_assignment_p50",
    "hours_to_assignment_p90",
    "days_to_first_contact_p50",
    "days_to_first_contact_p90",
)
SUPPORT_COLUMNS = (
    "accepted",
    "declined",
    "reminded",
    "contacts_logged",
    "supporter_minutes",
    "referrals",
)


def format_table(
    rows: Sequence[dict[str, Any]], dimensions: Sequence[str], columns: Sequence[str] = COLUMNS
) -> str:
    header = [*dimensions, *columns]
    cells = [
        [
            *(str(row[d]) for d in dimensions),
            *(("suppressed" if row["suppressed"] else str(row[c])) for c in columns),
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


DEMO_TIMING = {
    "URGENT_RESPONSE_SECONDS": "60",
    "RESPONSE_SECONDS": "90",
    "FOLLOW_UP_AFTER": '["PT2S", "PT4S"]',
    "SCAN_SECONDS": "1",
}
"""The demo compresses time: offers are reminded after 30 or 45 seconds instead of 1 or 12
hours, and follow-ups come 2 and 4 seconds after acceptance instead of on days 1, 3, 7, 30."""


async def supporter_activity(bootstrap_servers: str) -> Counter[str]:
    """What notify announced so far: offers, reminders and follow-ups sent, answers, contacts."""
    topics = Topics()
    consumer = AIOKafkaConsumer(
        topics.notifications,
        topics.responses,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    tally: Counter[str] = Counter()
    try:
        while batches := await consumer.getmany(timeout_ms=1500):
            for records in batches.values():
                for record in records:
                    event = json.loads(record.value or b"{}")
                    kind = event.get("event_type", "")
                    if kind == "support.peer_notified":
                        tally[str(event["step"]).split("_day_")[0]] += 1
                    elif kind == "support.contact_logged":
                        tally["contacts logged"] += 1
                        tally["minutes"] += int(event["minutes"])
                        tally["referred"] += bool(event["referred"])
                    else:
                        tally[kind.removeprefix("assignment.").removeprefix("support.")] += 1
    finally:
        await consumer.stop()
    return tally


def counted_by_reporting(reporting: Counted, seen: Counter[str]) -> dict[str, int]:
    """Reporting's totals once it has counted what notify announced (within 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        row = reporting.totals()
        counted = (row["accepted"], row["declined"], row["contacts_logged"])
        if counted == (seen["accepted"], seen["declined"], seen["contacts logged"]):
            return row
        if time.monotonic() > deadline:
            raise SystemExit(f"demo FAILED: reporting counted {counted}, notify announced {seen}")
        time.sleep(1)


def supporters_act(stack: Stack) -> tuple[Counter[str], Counter[str]]:
    """Supporters answer their offers and, once followed up, record a contact; returns what
    they did and what notify announced."""
    answered: set[str] = set()
    logged: set[str] = set()
    did = answer_offers(stack.servers.received_mail(), answered)
    print(
        f"\nSupporters open the link in their mail: {did['accept']} accept, "
        f"{did['decline']} decline, {did['unanswered']} do not answer (yet). {_TIMING_NOTE}",
        flush=True,
    )
    bootstrap = stack.servers.kafka_bootstrap_servers
    deadline = time.monotonic() + 180
    while True:
        did.update(answer_offers(stack.servers.received_mail(), answered))  # re-offers
        did["contacts"] += log_contacts(stack.servers.received_mail(), logged, date.today())
        seen = asyncio.run(supporter_activity(bootstrap))
        done = (
            seen["reminder"] >= did["unanswered"]
            and seen["contacts logged"] >= did["accept"]
            and seen["accepted"] == did["accept"]
        )
        if done or time.monotonic() > deadline:
            return did, seen
        print(
            f"  so far: {seen['reminder']} reminded, {seen['follow_up']} followed up, "
            f"{seen['contacts logged']} contacts logged",
            flush=True,
        )
        time.sleep(3)


_TIMING_NOTE = "(Demo timing: reminders after 30-45 s, follow-ups after 2 and 4 s.)"


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
    asyncio.run(wait_until_settled(stack.counted, cases, within=600))
    mails = stack.servers.received_mail()
    sample = next(m for m in mails if is_offer(m))
    did, seen = supporters_act(stack)
    reported = counted_by_reporting(stack.counted, seen)

    print(f"\nAggregates from {stack.reporting_url}/api/v1/aggregates", flush=True)
    for dimensions, period in (
        (["period", "hospital_id"], "year"),
        (["period", "function"], "year"),
        (["period", "harm"], "year"),
    ):
        result = stack.analyst.aggregates(dimensions, period=period)
        print(f"\nby {' x '.join(dimensions)} ({period}):")
        print(format_table(result["rows"], dimensions))
    total = [stack.analyst.totals()]
    print("\ntotal (shown only when every year in it is):\n" + format_table(total, []))
    by_harm = stack.analyst.aggregates(["harm"], period="year")["rows"]
    print("\nsupport given, by harm:\n" + format_table(by_harm, ["harm"], SUPPORT_COLUMNS))
    print("total:\n" + format_table(total, [], SUPPORT_COLUMNS))

    mails = stack.servers.received_mail()
    offers = [m for m in mails if is_offer(m)]
    letters = asyncio.run(dead_letters(bootstrap, topic))
    print(f"\n{len(mails)} mails in the SMTP sink ({stack.servers.maildir}), {len(offers)} offers.")
    print(f"One offer, to {sample['To']}: {sample['Subject']}\n")
    print(textwrap.indent(body_of(sample).strip(), "  | ", lambda _: True))
    print(
        f"\nSupporters: {seen['offer']} notified, {seen['accepted']} accepted, "
        f"{seen['declined']} declined, {seen['reminder']} reminded, {seen['follow_up']} "
        f"follow-ups, {seen['contacts logged']} contacts logged ({seen['minutes']} minutes of "
        f"support, {seen['referred']} referred to professional help)"
    )
    for value, reason in letters:
        print(f"dead-lettered on {dead_letter_topic(topic)}: {value[:40]!r}: {reason}")
    print(f"Service logs: {stack.workdir / 'logs'}")
    _check(reported, cases, len(offers), letters, did, seen)

    by_month = stack.analyst.aggregates(["period", "harm"])
    print(
        f"\nCases by month and harm level, as analysts see them: rows of fewer than "
        f"{by_month['min_cell_size']} cases, and the rows that would give those away, are "
        "suppressed.\n" + format_table(by_month["rows"], ["period", "harm"], TIME_COLUMNS)
    )
    print(
        f"\nDashboard: {stack.reporting_url}/  (sign in with the demo's network token "
        f"{stack.api_token})",
        flush=True,
    )


def _check(
    totals: dict[str, Any],
    cases: int,
    offers: int,
    letters: list[Any],
    did: Counter[str],
    seen: Counter[str],
) -> None:
    """The demo fails loudly when the pipeline did not do what it printed."""
    problems = []
    if totals["peers_notified"] != offers:
        problems.append(f"{offers} offers mailed but {totals['peers_notified']} counted")
    if totals["cases_opened"] != cases:
        problems.append(f"{totals['cases_opened']} cases counted, {cases} expected (a resend?)")
    if len(letters) != 1:
        problems.append(f"{len(letters)} dead letters, expected 1: {letters!r}")
    if (seen["accepted"], seen["declined"]) != (did["accept"], did["decline"]):
        problems.append(f"answers given {dict(did)} but announced {dict(seen)}")
    if seen["reminder"] < did["unanswered"] or seen["contacts logged"] < did["accept"]:
        problems.append(f"reminders or contacts missing: {dict(seen)}")
    if problems:
        raise SystemExit("demo FAILED: " + "; ".join(problems))
    print("demo OK")
