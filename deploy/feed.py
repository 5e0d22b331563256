"""Playing a hospital incident system, and watching the aggregates catch up."""

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from pymongo import MongoClient

from deploy.incidents import kafka_key
from services.reporting.aggregates import COUNTS
from services.reporting.releases import month_end
from shared.mongo import Document
from shared.settings import ServiceSettings, Topics


async def publish_incidents(
    bootstrap_servers: str,
    events: Sequence[dict[str, Any]],
    topic: str | None = None,
    per_second: float | None = None,
) -> dict[str, float]:
    """Publish the events under their hospital key, all at once or at a steady rate;
    returns each key's wall-clock send time."""
    topic = topic or Topics().incidents_reported
    sent_at: dict[str, float] = {}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        pending = []
        for event in events:
            key = kafka_key(event)
            sent_at.setdefault(key.decode(), time.time())
            pending.append(await producer.send(topic, json.dumps(event).encode(), key=key))
            if per_second:
                await asyncio.sleep(1 / per_second)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent_at


async def publish_raw(bootstrap_servers: str, value: bytes, key: bytes, topic: str) -> None:
    """Send bytes as they are: what a broken incident system might send."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def expected_cases(events: Sequence[dict[str, Any]]) -> int:
    """Cases the events should open: one per participant, unless entered in error."""
    return sum(len(e["participants"]) for e in events if e.get("status") != "entered-in-error")


@dataclass(frozen=True)
class Analyst:
    """Reads the analysts' API as an analyst does: with a token."""

    reporting_url: str
    token: str

    def aggregates(self, group_by: Sequence[str], **filters: str) -> dict[str, Any]:
        response = httpx.get(
            f"{self.reporting_url}/api/v1/aggregates",
            params={"group_by": ",".join(group_by), **filters},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10.0,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def totals(self) -> dict[str, Any]:
        """All cells summed into one row, as analysts see it: suppressed when a year in it
        is."""
        rows = self.aggregates(group_by=[], period="year")["rows"]
        return rows[0] if rows else {}


@dataclass(frozen=True)
class Coordinator:
    """Reads the coordinator desk's API as a coordinator's tools do: with a token."""

    desk_url: str
    token: str

    def worklist(self) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.desk_url}/api/v1/worklist",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10.0,
        )
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@dataclass(frozen=True)
class Releases:
    released: int
    """Hospital-months released to analysts."""
    corrected: int
    """Of those, corrected since."""
    open_months: int
    """Hospital-months counted in a month not yet closed: not released."""
    unreleased: int
    """Hospital-months closed and not yet released: their delay has not passed."""
    waiting: list[int]
    """Per released hospital-month, the cases counted since its latest version."""

    def caught_up(self, min_cell_size: int) -> bool:
        """Nothing due: every closed month released, every correction due published."""
        return not self.unreleased and all(n < min_cell_size for n in self.waiting)


@dataclass(frozen=True)
class Counted:
    """What reporting counted, summed over its cells straight from its database: the
    operator's check that the pipeline is done, which suppression must not hide."""

    mongodb_url: str

    def totals(self) -> dict[str, int]:
        """Reporting's counts, and `offers_undelivered` from notify's own records: offers
        that will never be notified (unconfirmed after a stop while sending, refused by every
        channel, or cancelled before they were sent)."""
        settings = ServiceSettings(mongodb_url=self.mongodb_url)
        total: Counter[str] = Counter()
        client: MongoClient[Document] = MongoClient(self.mongodb_url)
        try:
            cells = client[settings.database_name("reporting")]["cells"]
            for cell in cells.find({}, dict.fromkeys(COUNTS, 1)):
                total.update({m: n for m, n in cell.items() if m in COUNTS})
            undelivered = client[settings.database_name("notify")]["messages"].count_documents(
                {"step": "offer", "state": {"$in": ["unconfirmed", "failed", "skipped"]}}
            )
        finally:
            client.close()
        return {m: total[m] for m in COUNTS} | {"offers_undelivered": undelivered}

    def releases(self, now: datetime) -> Releases:
        """What reporting released of each hospital's month so far."""
        settings = ServiceSettings(mongodb_url=self.mongodb_url)
        client: MongoClient[Document] = MongoClient(self.mongodb_url)
        try:
            units = list(client[settings.database_name("reporting")]["release_units"].find())
        finally:
            client.close()
        return Releases(
            released=sum(u["version"] is not None for u in units),
            corrected=sum((u["version"] or 0) > 0 for u in units),
            open_months=sum(month_end(u["month"]) > now for u in units),
            unreleased=sum(u["version"] is None and month_end(u["month"]) <= now for u in units),
            waiting=[len(u.get("waiting", [])) for u in units if u["version"] is not None],
        )


def is_settled(row: dict[str, int], cases: int) -> bool:
    """Every case decided (on a fresh stack: offered once, escalated or opted out), and every
    assignment notified or known never to be."""
    return (
        row.get("cases_opened") == cases
        and row["peers_assigned"] + row["escalated"] + row["opted_out"] == cases
        and row["peers_notified"] + row["offers_undelivered"] >= row["peers_assigned"]
    )


async def wait_until_settled(
    counted: Counted, cases: int, within: float, progress: bool = True
) -> dict[str, int]:
    """Poll reporting's counts until the pipeline has counted everything it was fed."""
    deadline = time.monotonic() + within
    row: dict[str, int] = {}
    while time.monotonic() < deadline:
        row = await asyncio.to_thread(counted.totals)
        if is_settled(row, cases):
            return row
        if progress:
            print(
                f"  counted so far: {row.get('cases_opened') or 0}/{cases} cases, "
                f"{row.get('peers_assigned') or 0} assigned, "
                f"{row.get('peers_notified') or 0} notified",
                flush=True,
            )
        await asyncio.sleep(1.0)
    raise TimeoutError(f"not all {cases} cases were counted within {within:.0f}s; last: {row}")
