"""`make bench`: the pipeline's throughput and latency beside the raw ceilings of its servers.

All figures come from one run on the same servers, so the ratios hold on a noisy machine
where the absolute numbers do not.
"""

import asyncio
import csv
import io
import json
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import AsyncMongoClient, UpdateOne

from deploy.bench_desk import desk_line
from deploy.bench_disclosure import report as disclosure_report
from deploy.bench_matching import report as match_report
from deploy.bench_network import network_lines, network_rebuild
from deploy.feed import expected_cases, publish_incidents, wait_until_settled
from deploy.incidents import incidents
from deploy.stack import SEED_ROSTER, Stack
from services.reporting.aggregates import DIMENSIONS
from services.reporting.rebuild import Rebuilt, rebuild
from services.reporting.store import CellStore
from shared.kafka import ensure_topics
from shared.mongo import Document
from shared.settings import ServiceSettings, Topics

RAW_MESSAGES = 20_000
RAW_MESSAGE_BYTES = 1_000
RAW_UPSERTS = 10_000
UPSERT_BATCH = 1_000
RAW_SINGLE_UPSERTS = 1_000
RAW_TRANSACTIONS = 300
PACED_INCIDENTS = 60
PACED_RATE = 4.0


async def broker_round_trip(bootstrap_servers: str) -> float:
    """Messages per second produced and consumed back through one topic."""
    topic = "bench.raw"
    await ensure_topics(bootstrap_servers, [topic])
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest"
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    payload = b"x" * RAW_MESSAGE_BYTES
    try:
        started = time.perf_counter()
        sends = [await producer.send(topic, payload) for _ in range(RAW_MESSAGES)]
        await asyncio.gather(*sends)
        received = 0
        while received < RAW_MESSAGES:
            batches = await consumer.getmany(timeout_ms=1000)
            received += sum(len(records) for records in batches.values())
        return RAW_MESSAGES / (time.perf_counter() - started)
    finally:
        await producer.stop()
        await consumer.stop()


async def store_bulk_upserts(mongodb_url: str) -> float:
    """Counter upserts per second, in bulk writes of 1,000, like reporting's cell updates."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_url)
    collection = client["bench_raw"]["cells"]
    try:
        await collection.drop()
        started = time.perf_counter()
        for batch in range(0, RAW_UPSERTS, UPSERT_BATCH):
            await collection.bulk_write(
                [
                    UpdateOne({"_id": f"cell-{i % 2_000}"}, {"$inc": {"n": 1}}, upsert=True)
                    for i in range(batch, batch + UPSERT_BATCH)
                ],
                ordered=False,
            )
        return RAW_UPSERTS / (time.perf_counter() - started)
    finally:
        await client.close()


async def store_single_upserts(mongodb_url: str) -> float:
    """Upserts per second one at a time, awaited in turn: a handler's round trips."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_url)
    collection = client["bench_raw"]["single"]
    try:
        started = time.perf_counter()
        for i in range(RAW_SINGLE_UPSERTS):
            await collection.update_one({"_id": f"doc-{i % 200}"}, {"$inc": {"n": 1}}, upsert=True)
        return RAW_SINGLE_UPSERTS / (time.perf_counter() - started)
    finally:
        await client.close()


async def store_transactions(mongodb_url: str) -> float:
    """Transactions per second of one upsert and one insert each, the shape of a handler's."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_url)
    database = client["bench_raw"]
    try:
        await database["log"].drop()
        started = time.perf_counter()
        for i in range(RAW_TRANSACTIONS):
            async with client.start_session() as session, await session.start_transaction():
                await database["state"].update_one(
                    {"_id": f"doc-{i % 50}"}, {"$inc": {"n": 1}}, upsert=True, session=session
                )
                await database["log"].insert_one({"_id": i}, session=session)
        return RAW_TRANSACTIONS / (time.perf_counter() - started)
    finally:
        await client.close()


async def notification_latencies(stack: Stack, sent_at: dict[str, float]) -> list[float]:
    """Seconds from an incident's publication to each `peer_notified` it led to."""
    incident_of = await incidents_of_cases(stack.servers.mongodb_url)
    consumer = AIOKafkaConsumer(
        Topics().notifications,
        bootstrap_servers=stack.servers.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    latencies: list[float] = []
    try:
        while batches := await consumer.getmany(timeout_ms=2000, max_records=5_000):
            for records in batches.values():
                for record in records:
                    incident = incident_of.get(json.loads(record.value)["case_id"])
                    if incident in sent_at:
                        latencies.append(record.timestamp / 1000 - sent_at[incident])
    finally:
        await consumer.stop()
    return latencies


async def incidents_of_cases(mongodb_url: str) -> dict[str, str]:
    """Each case's incident, from intake's records (until the incident settles): no event
    after intake names the incident, so the topics cannot say."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        found = client[ServiceSettings().database_name("intake")]["incidents"].find()
        return {case["case_id"]: doc["_id"] async for doc in found for case in doc["cases"]}
    finally:
        await client.close()


def roomy_roster(workdir: Path) -> Path:
    """The seed roster with room for every case, so that the bench measures the full path."""
    rows = list(csv.DictReader(io.StringIO(SEED_ROSTER.read_text())))
    for row in rows:
        row["max_open_cases"] = "50"
        row["active"] = "true"
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "bench-roster.csv"
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def run_bench(stack: Stack, incident_count: int) -> None:
    bootstrap = stack.servers.kafka_bootstrap_servers
    print("one matching decision (the policy, without servers) ...", flush=True)
    print("\n".join(match_report()), flush=True)
    print("\n".join(disclosure_report()), flush=True)
    print("measuring the raw broker and store ...", flush=True)
    broker_rate = asyncio.run(broker_round_trip(bootstrap))
    upsert_rate = asyncio.run(store_bulk_upserts(stack.servers.mongodb_url))
    single_rate = asyncio.run(store_single_upserts(stack.servers.mongodb_url))
    transaction_rate = asyncio.run(store_transactions(stack.servers.mongodb_url))

    events = incidents(incident_count, seed=99)
    cases = expected_cases(events)
    print(f"feeding {incident_count} incidents ({cases} cases) at once ...", flush=True)
    on_topics = asyncio.run(messages_on_topics(bootstrap))
    started = time.perf_counter()
    sent_at = asyncio.run(publish_incidents(bootstrap, events))
    totals = asyncio.run(wait_until_settled(stack.counted, cases, 1800, progress=False))
    elapsed = time.perf_counter() - started
    # Every message the burst put through the broker, however many a case takes.
    messages = asyncio.run(messages_on_topics(bootstrap)) - on_topics
    burst = asyncio.run(notification_latencies(stack, sent_at))

    paced = incidents(PACED_INCIDENTS, seed=100, first=incident_count + 1)
    print(f"feeding {PACED_INCIDENTS} more, {PACED_RATE:g} a second ...", flush=True)
    paced_sent_at = asyncio.run(publish_incidents(bootstrap, paced, per_second=PACED_RATE))
    all_cases = cases + expected_cases(paced)
    asyncio.run(wait_until_settled(stack.counted, all_cases, 600, progress=False))
    steady = asyncio.run(notification_latencies(stack, paced_sent_at))
    memory = ", ".join(f"{p.name} {resident_mb(p.pid):,.0f} MB" for p in stack.services)
    print("rebuilding the aggregates from the topics ...", flush=True)
    rebuilt = asyncio.run(rebuild_aggregates(stack))
    print("rebuilding a 70-hospital network's two years ...", flush=True)
    network = asyncio.run(network_rebuild(bootstrap, stack.servers.mongodb_url))
    print(
        f"""
ceilings, measured on the same servers in this run
  broker round trip     {broker_rate:10,.0f} messages/s  ({RAW_MESSAGES:,} x {RAW_MESSAGE_BYTES:,} B produced and consumed)
  store bulk upserts    {upsert_rate:10,.0f} upserts/s   ({RAW_UPSERTS:,} in bulks of {UPSERT_BATCH:,})
  store single upserts  {single_rate:10,.0f} upserts/s   ({RAW_SINGLE_UPSERTS:,} one after another)
  store transactions    {transaction_rate:10,.0f} per s       ({RAW_TRANSACTIONS:,} of an upsert and an insert each, one after another)

pipeline: {incident_count} incidents, {cases} cases, {totals["peers_notified"]} notified in {elapsed:.1f} s
  throughput            {incident_count / elapsed:10,.1f} incidents/s fully counted in reporting ({cases / elapsed:,.1f} cases/s)
  broker                {messages / elapsed:10,.0f} messages/s = {messages / elapsed / broker_rate:.4f} x broker round trip
  store (bulk)          {cases / elapsed / upsert_rate:10.4f} x store bulk upserts (cases/s per upsert/s)
  store (transactions)  {cases / elapsed / transaction_rate:10.2f} x store transactions (cases/s per single transaction/s; batches commit many cases at once)
  latency to notified   {_centiles(burst)} (all published at once: mostly waiting in line)

at a steady {PACED_RATE:g} incidents/s ({PACED_INCIDENTS} incidents)
  latency to notified   {_centiles(steady)}

resident memory after the run: {memory}

rebuild: {rebuilt.events:,} events replayed in {rebuilt.seconds:.1f} s = {rebuilt.events_per_second:,.0f} events/s = {rebuilt.events_per_second / upsert_rate:.2f} x store bulk upserts (batches pre-aggregated per cell)
"""  # noqa: E501
    )
    print("\n".join(network_lines(network, upsert_rate)), flush=True)
    print("the desk at a national network's size ...", flush=True)
    print(asyncio.run(desk_line(stack.servers.mongodb_url)), flush=True)


async def messages_on_topics(bootstrap_servers: str) -> int:
    """How many messages the product's topics hold: their end offsets, summed."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in Topics().all()
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def rebuild_aggregates(stack: Stack) -> Rebuilt:
    """Replay the counted topics into an empty database, as `reporting.cli rebuild` does."""
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(stack.servers.mongodb_url)
    try:
        store = CellStore(mongo["bench_rebuilt"], timedelta(days=35), DIMENSIONS)
        await mongo.drop_database("bench_rebuilt")
        return await rebuild(stack.servers.kafka_bootstrap_servers, Topics().counted(), store)
    finally:
        await mongo.close()


def resident_mb(pid: int) -> float:
    """A process's resident memory, as the kernel counts it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _centiles(latencies: list[float]) -> str:
    if len(latencies) < 2:
        return f"only {len(latencies)} notification(s)"
    centiles = statistics.quantiles(latencies, n=100)
    return f"p50 {centiles[49]:.2f} s, p99 {centiles[98]:.2f} s ({len(latencies)} notifications)"
