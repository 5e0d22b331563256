"""The main job, end to end: incidents in, aggregates an analyst can read out."""

import asyncio
import json
import math
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from deploy.feed import (
    Counted,
    expected_cases,
    publish_incidents,
    publish_raw,
    wait_until_settled,
)
from deploy.incidents import incidents
from deploy.stack import Stack
from deploy.supporters import (
    answer_offers,
    body_of,
    end_support,
    hospitals_today,
    is_offer,
    log_contacts,
)
from shared.events import ReferralKind, SupportOutcome
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


async def records_on(
    bootstrap_servers: str, *topics: str, quiet_ms: int = 1500
) -> list[ConsumerRecord]:
    """Every record on these topics so far, read from the start until none comes for a while."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    read: list[ConsumerRecord] = []
    try:
        while batches := await consumer.getmany(timeout_ms=quiet_ms):
            read.extend(record for records in batches.values() for record in records)
    finally:
        await consumer.stop()
    return read


async def dead_letters(bootstrap_servers: str, topic: str) -> list[tuple[bytes, str]]:
    """What landed in a dead-letter topic so far: (original bytes, reason)."""
    return [
        (record.value or b"", dict(record.headers).get("dlq-reason", b"").decode())
        for record in await records_on(bootstrap_servers, dead_letter_topic(topic), quiet_ms=3000)
    ]


DEMO_TIMING = {
    "URGENT_RESPONSE_SECONDS": "60",
    "RESPONSE_SECONDS": "90",
    # matching takes the demo's burst of some 300 answers one at a time: the last waited
    # 27 s in one run, and an answer given in time must still arrive before its offer expires.
    "ANSWER_GRACE_SECONDS": "45",
    "FOLLOW_UP_AFTER": '["PT2S", "PT4S"]',
    "SUPPORT_ENDS_AFTER": "PT60S",
    "STILL_SUPPORTING_AFTER": "PT5S",
    "SCAN_SECONDS": "1",
    "RELEASE_DELAY": "PT20S",
    "RELEASE_SCAN_SECONDS": "1",
}
"""The demo compresses time: offers are reminded after 30 or 45 seconds instead of 1 or 12
hours, follow-ups come 2 and 4 seconds after acceptance instead of on days 1, 3, 7, 30,
support nobody continues lapses a minute after the last follow-up instead of 14 days, and
a hospital's closed month is released to analysts 20 seconds after its first event was
counted instead of a week."""

OUTCOME_COLUMNS = tuple(f"ended_{o}" for o in SupportOutcome)
REFERRAL_COLUMNS = tuple(f"referred_{kind}" for kind in ReferralKind)
LOAD_COLUMNS = (
    "first_contact_within_target_percent",
    "days_in_support_p50",
    "days_in_support_p90",
    "contacts_per_case_p50",
    "contacts_per_case_p90",
    "supporter_minutes",
)


async def supporter_activity(bootstrap_servers: str) -> Counter[str]:
    """What notify announced so far: offers, reminders and follow-ups sent, answers, contacts."""
    topics = Topics()
    tally: Counter[str] = Counter()
    for record in await records_on(bootstrap_servers, topics.notifications, topics.responses):
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


def offers_as_counted(stack: Stack) -> tuple[int, int]:
    """Offers mailed and offers reporting counted, read together once they agree (within
    60 s): offers keep coming while declines and unanswered ones are offered to the next
    peer, so the two are compared at one moment, not a count of before with mail of after."""
    deadline = time.monotonic() + 60
    while True:
        offers = sum(is_offer(m) for m in stack.servers.received_mail())
        counted = stack.counted.totals()["peers_notified"]
        if counted == offers or time.monotonic() > deadline:
            return offers, counted
        time.sleep(1)


@dataclass
class Supporters:
    """What the simulated supporters have done so far, across the waves."""

    answered: set[str] = field(default_factory=set)
    logged: set[str] = field(default_factory=set)
    ended: set[str] = field(default_factory=set)
    did: Counter[str] = field(default_factory=Counter)
    endings: Counter[str] = field(default_factory=Counter)
    """How supporters said support ended, or that they left it to lapse."""


def supporters_act(stack: Stack, people: Supporters) -> tuple[Counter[str], Counter[str]]:
    """Supporters answer their offers and, once followed up, record a contact; returns what
    they did and what notify announced."""
    did = people.did
    now = answer_offers(stack.servers.received_mail(), people.answered)
    did.update(now)
    print(
        f"\nSupporters open the link in their mail: {now['accept']} accept, "
        f"{now['decline']} decline, {now['unanswered']} do not answer (yet). {_TIMING_NOTE}",
        flush=True,
    )
    bootstrap = stack.servers.kafka_bootstrap_servers
    deadline = time.monotonic() + 180
    while True:
        did.update(answer_offers(stack.servers.received_mail(), people.answered))  # re-offers
        mails = stack.servers.received_mail()
        did["contacts"] += log_contacts(mails, people.logged, hospitals_today())
        people.endings.update(end_support(mails, people.ended))
        seen = asyncio.run(supporter_activity(bootstrap))
        done = (
            seen["reminder"] >= did["unanswered"]
            and len(people.logged) >= did["accept"]  # each acceptor tried their contact link
            and seen["contacts logged"] >= did["contacts"]
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


async def feed_with_faults(bootstrap: str, events: list[dict[str, Any]], topic: str) -> None:
    """The incidents, a malformed event, a resend of ten, and an incident that ZH-A's system
    sends as ZH-B's: the malformed and the forged one end as dead letters with their reason."""
    await publish_incidents(bootstrap, events)
    await publish_raw(bootstrap, b'{"event_type": "incident.reported"', b"ZH-A:BROKEN", topic)
    await publish_incidents(bootstrap, events[:10])
    forged = {**events[0], "event_id": str(uuid.uuid4()), "source_system": "epd-zh-a"}
    forged |= {"hospital_id": "ZH-B", "incident_id": "INC-FORGED"}
    await publish_incidents(bootstrap, [forged])


def run_demo(stack: Stack, incident_count: int) -> None:
    topic = Topics().incidents_reported
    bootstrap = stack.servers.kafka_bootstrap_servers
    events = incidents(incident_count)
    cases = expected_cases(events)
    participants = sum(len(e["participants"]) for e in events)
    hospitals = sorted({e["hospital_id"] for e in events})
    print(
        f"\nFeeding {len(events)} incidents from {', '.join(hospitals)} "
        f"({participants} professionals involved), then 10 of them again (a resend), one "
        "malformed event and one from ZH-A's system claiming to be ZH-B's.",
        flush=True,
    )
    asyncio.run(feed_with_faults(bootstrap, events, topic))
    asyncio.run(wait_until_settled(stack.counted, cases, within=600))
    mails = stack.servers.received_mail()
    sample = next(m for m in mails if is_offer(m))
    people = Supporters()
    did, seen = supporters_act(stack, people)
    reported = counted_by_reporting(stack.counted, seen)
    as_released(stack)

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

    offers, reported["peers_notified"] = offers_as_counted(stack)
    mails = stack.servers.received_mail()
    letters = asyncio.run(dead_letters(bootstrap, topic))
    print(f"\n{len(mails)} mails in the SMTP sink ({stack.servers.maildir}), {offers} offers.")
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
    _check(reported, cases, offers, letters, did, seen)
    second_wave(stack, incident_count, people)

    analysts_see_months(stack)
    waiting = coordinators_see(stack)
    print(
        f"\nDashboard: {stack.reporting_url}/  (sign in with the demo's network token "
        f"{stack.api_token})\n"
        f"Coordinator desk: {stack.desk_url}/  ({waiting} items on the worklist; sign in with "
        f"the demo's coordinator token {stack.coordinator_token})",
        flush=True,
    )
    print("demo OK")


def analysts_see_months(stack: Stack) -> None:
    as_released(stack)
    by_month = stack.analyst.aggregates(["period", "harm"])
    print(
        f"\nCases by month and harm level, as analysts see them: rows of fewer than "
        f"{by_month['min_cell_size']} cases, and the rows that would give those away, are "
        "suppressed, one row a month (harm `*`).\n"
        + format_table(by_month["rows"], ["period", "harm"], TIME_COLUMNS)
    )


def as_released(stack: Stack) -> None:
    """Until reporting published every release and correction due (within 60 s); what
    analysts are shown then."""
    k = int(stack.analyst.aggregates([])["min_cell_size"])
    deadline = time.monotonic() + 60
    while not (releases := stack.counted.releases(datetime.now(UTC))).caught_up(k):
        if time.monotonic() > deadline:
            raise SystemExit(f"demo FAILED: reporting did not release what is due: {releases}")
        time.sleep(1)
    print(
        f"\nAnalysts see each hospital's month once it has closed and been released: "
        f"{releases.released} hospital-months released, {releases.corrected} of them corrected "
        f"since (by at least {k} cases at a time); {sum(releases.waiting)} cases counted since "
        f"wait for their hospital's next correction; {releases.open_months} hospital-months "
        "of the month still open are not shown yet.",
        flush=True,
    )


def coordinators_see(stack: Stack) -> int:
    """The desk's worklist, and what coordinators were mailed; returns the worklist's size."""
    items = stack.coordinator.worklist()
    needs = Counter(str(item["need"]).replace("_", " ") for item in items)
    subjects = [str(m["Subject"]) for m in stack.servers.received_mail()]
    alerts = sum(s.startswith("Peer support: a case needs you now") for s in subjects)
    digests = sum(s.startswith("Peer support: the coordinator's digest") for s in subjects)
    print(
        f"\nWhat coordinators see: {len(items)} items on the desk's worklist ("
        + ", ".join(f"{n} {need}" for need, n in needs.most_common())
        + f"); {alerts} urgent alerts and {digests} digests mailed to them. The first:"
    )
    for item in items[:5]:
        about = (
            f"case {item['case_id'][:8]}" if item["case_id"] else f"incident {item['incident_id']}"
        )
        print(
            f"  {item['hospital_id']:<6} {about:<22} {item['need']:<26} waited "
            f"{item['waited_minutes']} of {item['target_minutes']} min"
            + (" (urgent)" if item["urgent"] else "")
        )
    return len(items)


async def wave_decisions(bootstrap: str, since: float, until: float = math.inf) -> Counter[str]:
    """Of the cases opened between these times (seconds since the epoch): how many, how many
    offered to a peer, how many escalated (nobody fitted, at least for a while), as the topics
    tell it. A wave is told apart by when its cases opened: no event after intake names the
    incident it came from."""
    topics = Topics()
    opened: set[str] = set()
    decided: dict[str, set[str]] = {"assigned": set(), "escalated": set(), "opted out": set()}
    for record in await records_on(bootstrap, topics.cases, topics.assignments):
        event = json.loads(record.value or b"{}")
        kind = event.get("event_type")
        if kind == "support.case_opened" and since <= record.timestamp / 1000 < until:
            opened.add(event["case_id"])
            if event["opted_out"]:
                decided["opted out"].add(event["case_id"])
        elif kind == "support.peer_assigned":
            decided["assigned"].add(event["case_id"])
        elif kind == "support.case_escalated":
            decided["escalated"].add(event["case_id"])
    decided = {what: cases & opened for what, cases in decided.items()}
    tally = Counter({"cases opened": len(opened)})
    tally.update({what: len(cases) for what, cases in decided.items()})
    tally["undecided"] = len(opened - set().union(*decided.values()))
    return tally


def second_wave(stack: Stack, count: int, people: Supporters) -> None:
    """Supporters end support for the first wave (or let it lapse); a second wave, fed
    afterwards and answered as the first was, is matched as fully as the first."""
    chosen = {what: n for what, n in people.endings.items() if what in set(SupportOutcome)}
    print(
        "\nSupporters said how support ended, from their follow-ups: "
        + ", ".join(f"{n} {what}" for what, n in sorted(chosen.items()))
        + "; the others leave it to lapse.",
        flush=True,
    )
    asyncio.run(until_ended(stack, sum(chosen.values())))
    bootstrap = stack.servers.kafka_bootstrap_servers
    events = incidents(count, seed=2027, first=100_001)
    print(f"\nFeeding a second wave of {len(events)} incidents.", flush=True)
    second_fed = time.time()
    asyncio.run(publish_incidents(bootstrap, events))
    waves = [(0.0, second_fed), (second_fed, math.inf)]
    deadline = time.monotonic() + 600
    while (second := asyncio.run(wave_decisions(bootstrap, *waves[1])))["cases opened"] < (
        expected_cases(events)
    ) or second["undecided"]:
        if time.monotonic() > deadline:
            raise SystemExit(f"demo FAILED: the second wave was not decided: {dict(second)}")
        print(f"  second wave so far: {dict(second)}", flush=True)
        time.sleep(3)
    supporters_act(stack, people)
    tallies = [asyncio.run(wave_decisions(bootstrap, *wave)) for wave in waves]
    columns = ("cases opened", "assigned", "escalated", "opted out")
    rows = [{"wave": str(n), "suppressed": False, **t} for n, t in enumerate(tallies, 1)]
    print(
        "\nWaves, each answered by the supporters in turn (a case counts once as assigned, "
        "once as escalated while nobody fitted):\n" + format_table(rows, ["wave"], columns)
    )
    share = [t["assigned"] / max(t["cases opened"], 1) for t in tallies]
    if share[1] < share[0] - 0.1:
        raise SystemExit(f"demo FAILED: the second wave was matched worse: {share}")
    total = [asyncio.run(wait_until_ended(stack, people.endings))]
    print("\nHow support ended, as analysts see it:\n" + format_table(total, [], OUTCOME_COLUMNS))
    print("\nReferrals by kind:\n" + format_table(total, [], REFERRAL_COLUMNS))
    print("\nHow heavy support was:\n" + format_table(total, [], LOAD_COLUMNS))


async def until_ended(stack: Stack, ends: int) -> None:
    """Until reporting counted the ends the supporters chose: their capacity is back."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        row = await asyncio.to_thread(stack.counted.totals)
        if (counted := sum(row[c] for c in OUTCOME_COLUMNS)) >= ends:
            return
        print(f"  support ended so far: {counted} of {ends}", flush=True)
        await asyncio.sleep(5)


async def wait_until_ended(stack: Stack, did: Counter[str]) -> dict[str, Any]:
    """The analysts' totals once they show the ends the supporters chose (answers come from
    a snapshot up to `SNAPSHOT_SECONDS` old)."""
    chosen = sum(n for what, n in did.items() if what in {o.value for o in SupportOutcome})
    deadline = time.monotonic() + 120
    while True:
        row: dict[str, Any] = await asyncio.to_thread(stack.analyst.totals)
        counted = sum(row.get(c) or 0 for c in OUTCOME_COLUMNS) - (row.get("ended_lapsed") or 0)
        if counted >= chosen or time.monotonic() > deadline:
            return row
        await asyncio.sleep(2)


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
    if len(letters) != 2:
        problems.append(f"{len(letters)} dead letters, expected 2: {letters!r}")
    if (seen["accepted"], seen["declined"]) != (did["accept"], did["decline"]):
        problems.append(f"answers given {dict(did)} but announced {dict(seen)}")
    if seen["reminder"] < did["unanswered"] or seen["contacts logged"] < did["contacts"]:
        problems.append(f"reminders or contacts missing: {dict(seen)}, {dict(did)}")
    if problems:
        raise SystemExit("demo FAILED: " + "; ".join(problems))
