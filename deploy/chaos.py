"""`make chaos`: the whole stack fed with incidents while its processes are killed and its
servers paused, then what happened compared with what should have.

Faults, in a seeded random order while incidents flow and simulated supporters answer: SIGKILL
of one service (and of two at once), pauses of the store and of the broker, one SIGKILL and
restart of the store. Every killed process is restarted. Afterwards, read from the topics, the
mailbox and the databases (the operator's view):

- every case opened once and decided once (an offer or an escalation), never twice;
- every offer mailed at most once, and each one mailed, reported unconfirmed or cancelled;
- reporting's counts equal to the events, and to a rebuild from the topics;
- no consumer group behind on any partition, every outbox empty.
"""

import asyncio
import json
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient

from deploy.feed import expected_cases, publish_incidents
from deploy.incidents import incidents
from deploy.localservers import HOST, Process
from deploy.stack import SERVICES, Stack
from deploy.supporters import answer_offers, hospitals_today, log_contacts
from services.reporting.aggregates import DIMENSIONS
from services.reporting.rebuild import rebuild
from services.reporting.store import CellStore
from shared.mongo import Document
from shared.settings import ServiceSettings, Topics

CHAOS_TIMING = {
    "URGENT_RESPONSE_SECONDS": "40",
    "RESPONSE_SECONDS": "60",
    "ANSWER_GRACE_SECONDS": "3",
    "FOLLOW_UP_AFTER": '["PT2S"]',
    "SCAN_SECONDS": "1",
    "SENDING_LEASE_SECONDS": "5",
    "OUTBOX_RELAY_AFTER_SECONDS": "3",
    "LAG_CHECK_SECONDS": "5",
    "RETRY_BACKOFF_MAX_SECONDS": "3",
    "MONGODB_TIMEOUT_SECONDS": "5",
}
"""Time compressed as in the demo, with short leases and relays so that recovery is seen."""


@dataclass(frozen=True)
class Fault:
    at: float
    kind: str
    target: str
    seconds: float


@dataclass
class Findings:
    faults: list[Fault]
    lost: Counter[str] = field(default_factory=Counter)
    doubled: Counter[str] = field(default_factory=Counter)
    facts: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"chaos: {len(self.faults)} faults, {sum(self.lost.values())} lost, "
            f"{sum(self.doubled.values())} doubled"
        )

    def table(self) -> str:
        lines = ["  at (s)  fault            target                        for (s)"]
        lines += [
            f"  {f.at:6.1f}  {f.kind:<15}  {f.target:<28}  {f.seconds:6.1f}" for f in self.faults
        ]
        lines.append("")
        lines += [f"  {name}: {value}" for name, value in self.facts.items()]
        lines += [f"  LOST {what}: {n}" for what, n in sorted(self.lost.items()) if n]
        lines += [f"  DOUBLED {what}: {n}" for what, n in sorted(self.doubled.items()) if n]
        return "\n".join(lines)


class Saboteur:
    """Injects the faults on the stack's own processes, and restarts what it killed."""

    def __init__(self, stack: Stack, rng: random.Random) -> None:
        self.stack = stack
        self.rng = rng
        self.started = time.monotonic()
        self.faults: list[Fault] = []

    def _server(self, prefix: str) -> Process:
        return next(p for p in self.stack.servers.processes if p.name.startswith(prefix))

    def _note(self, kind: str, target: str, began: float) -> None:
        at = began - self.started
        self.faults.append(Fault(at, kind, target, time.monotonic() - began))
        print(f"  fault at {at:5.1f} s: {kind} {target}", flush=True)

    def kill_services(self, count: int) -> None:
        began = time.monotonic()
        victims = self.rng.sample(self.stack.services, count)
        for process in victims:
            _kill(process)
        time.sleep(self.rng.uniform(0.5, 2.5))
        for process in victims:
            process.start()
        self.stack.save_state()
        self.stack.wait_until_ready(within=120)
        self._note("kill -9", " + ".join(p.name for p in victims), began)

    def pause(self, prefix: str) -> None:
        began, process = time.monotonic(), self._server(prefix)
        os.killpg(process.pid, signal.SIGSTOP)
        try:
            time.sleep(self.rng.uniform(2.0, 6.0))
        finally:
            os.killpg(process.pid, signal.SIGCONT)
        self._note("pause", process.name, began)

    def restart_store(self) -> None:
        began, process = time.monotonic(), self._server("mongodb")
        _kill(process)
        process.start()
        asyncio.run(self.stack.servers.wait_until_ready(60))
        self.stack.save_state()
        self.stack.wait_until_ready(within=120)
        self._note("kill -9 + start", process.name, began)

    def plan(self, kills: int) -> list[Callable[[], None]]:
        """At least `kills` kills, one of them of two services at once, and each server fault."""
        faults: list[Callable[[], None]] = [lambda: self.kill_services(2)]
        faults += [lambda: self.kill_services(1) for _ in range(max(kills - 2, 0))]
        faults += [lambda: self.pause("mongodb"), lambda: self.pause("kafka")]
        self.rng.shuffle(faults)
        faults.insert(len(faults) // 2, self.restart_store)
        return faults


def _kill(process: Process) -> None:
    assert process.popen is not None
    os.killpg(process.pid, signal.SIGKILL)
    process.popen.wait()


def run_chaos(stack: Stack, count: int, kills: int, seed: int) -> Findings:
    rng = random.Random(seed)
    events = incidents(count, seed=seed, first=seed * 1_000 + 1)
    saboteur = Saboteur(stack, rng)
    stop = threading.Event()
    supporters = threading.Thread(target=_supporters, args=(stack, stop), daemon=True)
    supporters.start()
    feeding = threading.Thread(
        target=lambda: asyncio.run(
            publish_incidents(stack.servers.kafka_bootstrap_servers, events, per_second=3)
        ),
        daemon=True,
    )
    feeding.start()
    try:
        for fault in saboteur.plan(kills):
            time.sleep(rng.uniform(0.5, 2.0))
            fault()
        feeding.join()
        print("  faults done; waiting for the pipeline to settle", flush=True)
        expected = expected_cases(events)
        asyncio.run(_until(lambda: _settled(stack, expected), 300, "every case decided"))
    finally:
        stop.set()
        supporters.join(timeout=30)
    return asyncio.run(_compare(stack, expected, saboteur.faults))


def _supporters(stack: Stack, stop: threading.Event) -> None:
    answered: set[str] = set()
    logged: set[str] = set()
    while not stop.wait(1.0):
        mails = stack.servers.received_mail()
        answer_offers(mails, answered)
        log_contacts(mails, logged, hospitals_today())


async def _compare(stack: Stack, expected: int, faults: list[Fault]) -> Findings:
    """Once the simulated supporters have stopped: the pipeline still finishes what they began
    (a follow-up, a reminder), so a difference is looked at again until it has lasted a
    minute; what is lost or doubled for good stays so."""
    deadline = time.monotonic() + 60
    while True:
        await _until(lambda: _idle(stack), within=120, what="idle")
        findings = Findings(faults)
        seen = await _read_topics(stack.servers.kafka_bootstrap_servers)
        _check_cases(seen, expected, findings)
        _check_mail(stack, seen, findings)
        await _check_counts(stack, seen, findings)
        if not (+findings.lost or +findings.doubled) or time.monotonic() > deadline:
            return findings
        print("  the pipeline is still moving; looking again", flush=True)
        await asyncio.sleep(5.0)


async def _until(condition: Callable[[], Any], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"chaos: not {what} within {within:.0f}s")
        await asyncio.sleep(2.0)


async def _settled(stack: Stack, expected: int) -> bool:
    try:
        row = await asyncio.to_thread(stack.counted.totals)
    except Exception:
        return False
    return bool(
        row["cases_opened"] >= expected
        and row["peers_assigned"] + row["escalated"] + row["opted_out"] >= expected
    )


async def _idle(stack: Stack) -> bool:
    """No group behind on any partition and every outbox empty, at one moment."""
    return not await _behind(stack) and not await _waiting_in_outboxes(stack.servers.mongodb_url)


async def _behind(stack: Stack) -> list[str]:
    """Partitions behind, as each service's own consumer-lag gauges say."""
    behind = []
    async with httpx.AsyncClient(timeout=5.0) as client:
        for service in SERVICES:
            metrics = await client.get(f"http://{HOST}:{stack.ports.of_service(service)}/metrics")
            for family in text_string_to_metric_families(metrics.text):
                if family.name == "peer_support_consumer_lag_messages":
                    behind += [
                        f"{s.labels['group']} {s.labels['topic']}/{s.labels['partition']}"
                        for s in family.samples
                        if s.value > 0
                    ]
    return behind


async def _waiting_in_outboxes(mongodb_url: str) -> int:
    settings = ServiceSettings(mongodb_url=mongodb_url)
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url)
    try:
        return sum(
            [
                await client[settings.database_name(s)]["outbox"].count_documents({})
                for s in ("intake", "matching", "notify")
            ]
        )
    finally:
        await client.close()


async def _read_topics(bootstrap: str) -> list[dict[str, Any]]:
    topics = Topics()
    names = [topics.cases, topics.assignments, topics.notifications, topics.responses]
    consumer = AIOKafkaConsumer(
        *names, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    seen: list[dict[str, Any]] = []
    try:
        while batches := await consumer.getmany(timeout_ms=2000):
            seen += [json.loads(r.value or b"{}") for rs in batches.values() for r in rs]
    finally:
        await consumer.stop()
    return seen


def _of_type(seen: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [e for e in seen if e.get("event_type") == event_type]


def _check_cases(seen: list[dict[str, Any]], expected: int, findings: Findings) -> None:
    opened: dict[str, set[str]] = defaultdict(set)
    for event in _of_type(seen, "support.case_opened"):
        opened[event["case_id"]].add(event["event_id"])
    decided = {e["case_id"] for e in _of_type(seen, "support.peer_assigned")}
    decided |= {e["case_id"] for e in _of_type(seen, "support.case_escalated")}
    opted_out = {e["case_id"] for e in _of_type(seen, "support.case_opened") if e["opted_out"]}
    offers: dict[tuple[str, int], set[str]] = defaultdict(set)
    for event in _of_type(seen, "support.peer_assigned"):
        offers[(event["case_id"], event["attempt"])].add(event["assignment_id"])
    findings.lost["cases never opened"] = max(0, expected - len(opened))
    findings.doubled["cases opened twice"] = sum(len(ids) - 1 for ids in opened.values())
    findings.lost["cases never decided"] = len(set(opened) - decided - opted_out)
    findings.doubled["offers made twice"] = sum(len(ids) - 1 for ids in offers.values())
    findings.facts |= {
        "cases expected": expected,
        "cases opened": len(opened),
        "offers made": len(offers),
        "escalations": len(_of_type(seen, "support.case_escalated")),
    }


def _check_mail(stack: Stack, seen: list[dict[str, Any]], findings: Findings) -> None:
    mailed = Counter(
        str(m["Message-ID"]).strip("<>").split("@")[0] for m in stack.servers.received_mail()
    )
    unconfirmed = {
        e["assignment_id"]
        for e in _of_type(seen, "support.notification_failed")
        if e["step"] == "offer"
    }
    cancelled = {e["assignment_id"] for e in _of_type(seen, "support.assignment_cancelled")}
    assigned = {e["assignment_id"] for e in _of_type(seen, "support.peer_assigned")}
    findings.doubled["mails sent twice"] = sum(n - 1 for n in mailed.values())
    findings.lost["offers never mailed"] = len(assigned - set(mailed) - unconfirmed - cancelled)
    findings.facts |= {"mails sent": sum(mailed.values()), "offers unconfirmed": len(unconfirmed)}


async def _check_counts(stack: Stack, seen: list[dict[str, Any]], findings: Findings) -> None:
    live = await asyncio.to_thread(stack.counted.totals)
    truth = {
        "cases_opened": len({e["case_id"] for e in _of_type(seen, "support.case_opened")}),
        "peers_assigned": len({e["event_id"] for e in _of_type(seen, "support.peer_assigned")}),
        "peers_notified": len(
            {e["event_id"] for e in _of_type(seen, "support.peer_notified") if e["step"] == "offer"}
        ),
    }
    for measure, value in truth.items():
        findings.lost[f"{measure} not counted"] = max(0, value - live[measure])
        findings.doubled[f"{measure} counted twice"] = max(0, live[measure] - value)
    settings = ServiceSettings(mongodb_url=stack.servers.mongodb_url)
    client: AsyncMongoClient[Document] = AsyncMongoClient(stack.servers.mongodb_url, tz_aware=True)
    try:
        database = client[f"{settings.mongodb_database_prefix}chaos_rebuilt_{uuid.uuid4().hex[:6]}"]
        store = CellStore(database, timedelta(days=35), DIMENSIONS)
        await rebuild(stack.servers.kafka_bootstrap_servers, Topics().counted(), store)
        rebuilt = {cell["_id"]: _counts(cell) async for cell in database["cells"].find()}
        cells = client[settings.database_name("reporting")]["cells"]
        counted = {cell["_id"]: _counts(cell) async for cell in cells.find()}
        findings.lost["cells unlike their rebuild"] = sum(
            rebuilt.get(key) != counted.get(key) for key in rebuilt.keys() | counted.keys()
        )
        await client.drop_database(database.name)
    finally:
        await client.close()


def _counts(cell: Document) -> dict[str, int]:
    return {k: v for k, v in cell.items() if isinstance(v, int) and not isinstance(v, bool)}
