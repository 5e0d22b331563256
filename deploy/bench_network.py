"""A national network on the bench's servers: 70 hospitals x 2 years of cases, each counted
as reporting counts it, replayed from a topic into an empty store (the `rebuild:` line's
network twin), and the analysts' answers from that network's snapshot.

Each hospital opens `per_month` cases a month in random functions, departments and harms.
"""

import asyncio
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from itertools import product

from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from deploy.bench_disclosure import DEPARTMENTS, cells
from services.reporting.aggregates import DIMENSIONS
from services.reporting.disclosure import (
    PERIOD,
    PERIODS,
    ProtectedYear,
    Selection,
    Snapshot,
    by_year,
)
from services.reporting.rebuild import Rebuilt, rebuild
from services.reporting.store import CellStore
from shared.events import CaseProfile, Category, Function, Harm, SupportCaseCounted
from shared.kafka import ensure_topics
from shared.mongo import Document
from shared.settings import TopicLayout

HOSPITALS = 70
YEARS = (2025, 2026)
PER_MONTH = 10
TOPIC = "bench.network.case_counts"
ANSWERS = 300


def counted_cases(rng: random.Random) -> list[SupportCaseCounted]:
    """Every case the network opened in `YEARS`, as intake announces it to reporting."""
    cases = []
    for year, month, hospital in product(YEARS, range(1, 13), range(HOSPITALS)):
        for _ in range(PER_MONTH):
            occurred = datetime(year, month, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(600))
            hospital_id = f"H{hospital:02d}"
            cases.append(
                SupportCaseCounted(
                    event_id=uuid.UUID(int=rng.getrandbits(128)),
                    occurred_at=occurred,
                    producer="bench",
                    correlation_id=f"{hospital_id}:INC-{rng.getrandbits(40)}",
                    hospital_id=hospital_id,
                    case_id=uuid.UUID(int=rng.getrandbits(128)),
                    profile=CaseProfile(
                        hospital_id=hospital_id,
                        function=rng.choice(list(Function)),
                        department=rng.choice(DEPARTMENTS),
                        category=rng.choice(list(Category)),
                        harm=rng.choice(list(Harm)),
                        calamity=False,
                        incident_occurred_at=occurred,
                    ),
                )
            )
    return cases


async def network_rebuild(bootstrap_servers: str, mongodb_url: str) -> Rebuilt:
    """The network's counted cases put on a topic of their own, then replayed into an empty
    database as `reporting.cli rebuild` does."""
    await ensure_topics(bootstrap_servers, [TOPIC], TopicLayout(partitions=3))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        sends = [
            await producer.send(
                TOPIC, case.model_dump_json().encode(), key=case.correlation_id.encode()
            )
            for case in counted_cases(random.Random(HOSPITALS))
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url)
    try:
        await mongo.drop_database("bench_network")
        store = CellStore(mongo["bench_network"], timedelta(days=35), DIMENSIONS)
        return await rebuild(bootstrap_servers, [TOPIC], store)
    finally:
        await mongo.close()


def answer_seconds() -> list[float]:
    """What each of `ANSWERS` analysts' questions (a period, a grouping, a hospital or all,
    a range of months) takes to answer from the network's protected snapshot."""
    rng = random.Random(ANSWERS)
    rows = cells(PER_MONTH, random.Random(HOSPITALS), HOSPITALS, YEARS)
    snapshot = Snapshot(
        {
            year: ProtectedYear.of(of_year, DIMENSIONS, 11)
            for year, of_year in by_year(rows).items()
        },
        DIMENSIONS,
    )
    seconds = []
    for _ in range(ANSWERS):
        grouping = (PERIOD, *rng.sample(DIMENSIONS[1:], rng.randrange(0, 3)))
        year = rng.choice(YEARS)
        selection = Selection(
            rng.choice(PERIODS),
            grouping,
            first=f"{year}-01" if rng.random() < 0.5 else None,
            hospital_id=f"H{rng.randrange(HOSPITALS):02d}" if rng.random() < 0.5 else None,
        )
        started = time.perf_counter()
        snapshot.answer(selection)
        seconds.append(time.perf_counter() - started)
    return seconds


def network_lines(rebuilt: Rebuilt, upsert_rate: float) -> list[str]:
    answers = statistics.quantiles(answer_seconds(), n=100)
    return [
        f"rebuild: network of {HOSPITALS} hospitals x {len(YEARS)} years x {PER_MONTH} cases a "
        f"month: {rebuilt.events:,} events replayed in {rebuilt.seconds:.1f} s = "
        f"{rebuilt.events_per_second:,.0f} events/s = "
        f"{rebuilt.events_per_second / upsert_rate:.2f} x store bulk upserts",
        f"answers: network of {HOSPITALS} hospitals x {len(YEARS)} years, {ANSWERS} analysts' "
        f"questions from its snapshot (in process, without HTTP): p50 "
        f"{answers[49] * 1000:.1f} ms, p99 {answers[98] * 1000:.1f} ms",
    ]
