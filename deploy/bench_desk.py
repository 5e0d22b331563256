"""The desk at a national network's size, on the bench's store: 50,000 cases of 70 hospitals
and 10,000 supporters, written through matching's own store, then the worklist and the case
list asked for as coordinators ask (`desk:` line). The baseline is a case looked up by id on
the same collection in the same run."""

import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from deploy.bench_matching import DEPARTMENTS, case
from services.matching.desk import Targets
from services.matching.desk_cases import CaseQuery
from services.matching.desk_store import DeskRecords
from services.matching.desk_views import DeskViews
from services.matching.policy import Policy
from services.matching.store import CaseBook, Roster, Status, case_document
from shared.access import NETWORK, Grant
from shared.events import Function, SupporterProfile
from shared.mongo import Document

CASES = 50_000
SUPPORTERS = 10_000
HOSPITALS = 70
ASKED = 20
"""Each question asked this many times."""
DATABASE = "bench_desk"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
STATUSES = (
    (Status.ENDED, 0.88),
    (Status.ACCEPTED, 0.06),
    (Status.OFFERED, 0.02),
    (Status.WAITING, 0.02),
    (Status.ESCALATED, 0.01),
    (Status.CLOSED, 0.01),
)


def hospital_of(n: int) -> str:
    return f"H{n % HOSPITALS:02d}"


def supporter(n: int, rng: random.Random) -> SupporterProfile:
    return SupporterProfile(
        supporter_id=f"{hospital_of(n)}-S{n:05d}",
        display_name=f"Supporter {n}",
        email=f"s{n}@bench.example",
        hospital_id=hospital_of(n),
        pseudonym=f"{rng.getrandbits(128):032x}",
        function=rng.choice(list(Function)),
        department=rng.choice(DEPARTMENTS),
        max_open_cases=rng.randint(2, 6),
    )


def case_doc(n: int, rng: random.Random) -> Document:
    """A case of hospital `n`, opened in the two years before `NOW`, in a status as often as
    a programme sees it; those offered or later held by one of its hospital's supporters."""
    hospital = hospital_of(n)
    made = case(rng)
    opened = NOW - timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
    made = replace(
        made,
        case_id=uuid.UUID(int=rng.getrandbits(128)),
        profile=made.profile.model_copy(update={"hospital_id": hospital}),
        opened_at=opened,
    )
    status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
    doc = case_document(made, status, rng.randint(0, 2), uuid.uuid4(), opened)
    if status in (Status.OFFERED, Status.ACCEPTED, Status.ENDED):
        holder = rng.randrange(SUPPORTERS // HOSPITALS) * HOSPITALS + n % HOSPITALS
        doc |= {"supporter_id": f"{hospital}-S{holder:05d}", "accepted_at": opened}
    if status is Status.ENDED:
        doc |= {"ended_at": opened + timedelta(days=30), "outcome": "completed"}
    return doc


async def network_desk(database: Any) -> None:
    rng = random.Random(35)
    roster, book = Roster(database), CaseBook(database)
    await roster.ensure_indexes()
    await book.ensure_indexes()
    profiles = [supporter(n, rng) for n in range(SUPPORTERS)]
    for start in range(0, SUPPORTERS, 200):
        await asyncio.gather(*(roster.apply(p) for p in profiles[start : start + 200]))
    docs = [case_doc(n, rng) for n in range(CASES)]
    for start in range(0, CASES, 1_000):
        await book.collection.insert_many(docs[start : start + 1_000])


async def timed(ask: Callable[[int], Awaitable[Any]]) -> list[float]:
    """Milliseconds per question, one after another."""
    print(".", end="", flush=True)
    times = []
    for i in range(ASKED):
        started = time.perf_counter()
        await ask(i)
        times.append((time.perf_counter() - started) * 1000)
    return times


def centiles(times: list[float]) -> str:
    cuts = statistics.quantiles(times, n=100)
    return f"p50 {cuts[49]:.1f} ms p99 {cuts[98]:.1f} ms"


async def desk_line(mongodb_url: str) -> str:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    await client.drop_database(DATABASE)
    database = client[DATABASE]
    try:
        await network_desk(database)
        views = DeskViews(
            CaseBook(database),
            Roster(database),
            DeskRecords(database, timedelta(days=365)),
            Policy(),
            Targets(),
            timedelta(days=730),
        )
        coordinator = [Grant(hospital_of(n)) for n in range(HOSPITALS)]
        network = Grant(NETWORK)
        ids = [doc["_id"] async for doc in database["cases"].find({}, {"_id": 1}).limit(ASKED)]
        lookup = await timed(lambda i: database["cases"].find_one({"_id": ids[i % len(ids)]}))
        worklist = await timed(lambda i: views.worklist(coordinator[i % HOSPITALS], None, NOW))
        network_worklist = await timed(lambda i: views.worklist(network, None, NOW))
        queries = [
            CaseQuery(),
            CaseQuery(status=Status.ACCEPTED),
            CaseQuery(month="2026-03"),
            CaseQuery(order="oldest", offset=100),
        ]
        listed = await timed(
            lambda i: views.cases(coordinator[i % HOSPITALS], queries[i % len(queries)])
        )
        by_supporter = await timed(
            lambda i: views.cases(
                coordinator[i % HOSPITALS],
                CaseQuery(supporter_id=f"{hospital_of(i)}-S{i % HOSPITALS:05d}"),
            )
        )
        network_list = await timed(lambda i: views.cases(network, queries[i % len(queries)]))
    finally:
        await client.drop_database(DATABASE)
        await client.close()
    ratio = statistics.median(listed) / statistics.median(lookup)
    return (
        f"desk: {CASES:,} cases, {SUPPORTERS:,} supporters, {HOSPITALS} hospitals\n"
        f"  worklist (a hospital)    {centiles(worklist)}\n"
        f"  worklist (the network)   {centiles(network_worklist)}\n"
        f"  case list (a hospital)   {centiles(listed)} = {ratio:.1f} x a case by id"
        f" ({centiles(lookup)})\n"
        f"  case list (a supporter)  {centiles(by_supporter)}\n"
        f"  case list (the network)  {centiles(network_list)}"
    )


if __name__ == "__main__":
    import sys

    print(asyncio.run(desk_line(sys.argv[1])))
