"""notify killed between sending a message and recording it: the step is never sent twice.

The SMTP server (or SMS provider) of the test kills the notify process the moment the
message reaches it, before answering, exactly the window in which notify cannot know
whether the message went out. A mail is then never sent again (it is reported unconfirmed);
a text is sent again with the same idempotency key, which the provider delivers once.
"""

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from deploy.localservers import free_port
from shared.events import ChannelName, PeerAssigned
from shared.kafka import ensure_topics
from shared.settings import Topics
from tests.factories import LINK_SECRET
from tests.integration.conftest import EventLog, Servers
from tests.integration.test_notify import offer_and_contact

pytestmark = pytest.mark.integration


class Notify:
    """notify as its own process, as it runs in production, that the test can restart."""

    def __init__(self, servers: Servers, env: dict[str, str], log_dir: Path) -> None:
        self.env = {
            "PATH": "/usr/bin:/bin",
            "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap_servers,
            "MONGODB_URL": servers.mongodb_url,
            "LINK_SECRET": LINK_SECRET,
            "PUBLIC_URL": "http://notify",
            "SENDING_LEASE_SECONDS": "2",
            "SCAN_SECONDS": "0.3",
            **env,
        }
        self.log_dir = log_dir
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        log = (self.log_dir / f"notify-{self.starts}.log").open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.notify",
            env={**self.env, "HTTP_PORT": str(free_port())},
            stdout=log,
            stderr=log,
        )

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)

    async def wait_killed(self) -> None:
        assert self.process is not None
        assert await asyncio.wait_for(self.process.wait(), 30) == -signal.SIGKILL

    async def stop(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


class KillingMailServer:
    """Keeps each message, and kills notify on the first one before saying it arrived."""

    def __init__(self, notify: Notify) -> None:
        self.notify = notify
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        if len(self.messages) == 1:
            self.notify.kill()
        return "250 Message accepted for delivery"


class KillingSmsProvider:
    def __init__(self, notify: Notify) -> None:
        self.notify = notify
        self.requests: list[str] = []
        self.delivered: set[str] = set()

    async def receive(self, request: Request) -> JSONResponse:
        key = request.headers["Idempotency-Key"]
        self.requests.append(key)
        self.delivered.add(key)  # delivered once per key, whatever happens to the caller
        if len(self.requests) == 1:
            self.notify.kill()
            await asyncio.sleep(5)  # the caller is gone before it hears back
        return JSONResponse({"status": "queued"})


@pytest.fixture
async def topics(servers: Servers) -> Topics:
    run = uuid.uuid4().hex[:8]
    topics = Topics.model_validate(
        {name: f"crash-{run}.{default}" for name, default in Topics().model_dump().items()}
    )
    await ensure_topics(servers.kafka_bootstrap_servers, topics.all())
    return topics


def environment(topics: Topics, run: str) -> dict[str, str]:
    return {
        "MONGODB_DATABASE_PREFIX": f"crash_{run}_",
        "KAFKA_GROUP_PREFIX": f"crash-{run}.",
        **{f"TOPIC_{name.upper()}": topic for name, topic in topics.model_dump().items()},
    }


async def feed_and_follow(
    servers: Servers, topics: Topics, channel: ChannelName, log: EventLog
) -> tuple[PeerAssigned, asyncio.Task[None], AIOKafkaConsumer]:
    """Publish one offer and its contact; follow what notify announces."""
    offer, contact = offer_and_contact(f"INC-{channel}", channel, phone="+31644444444")
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap_servers)
    await producer.start()
    try:
        for topic, event in ((topics.assignments, offer), (topics.contacts, contact)):
            key = event.correlation_id.encode()
            await producer.send_and_wait(topic, event.model_dump_json().encode(), key=key)
    finally:
        await producer.stop()
    follower = AIOKafkaConsumer(
        topics.notifications,
        bootstrap_servers=servers.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
    )
    await follower.start()

    async def follow() -> None:
        async for record in follower:
            log.records.append(record)

    return offer, asyncio.create_task(follow()), follower


def offer_events(log: EventLog, topics: Topics) -> list[dict[str, Any]]:
    """What notify announced about the offer step (the reminder follows on its own)."""
    return [e for e in log.events(topics.notifications) if e["step"] == "offer"]


async def until(condition: Any, what: str, within: float = 60.0) -> None:
    for _ in range(int(within * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {within:.0f}s: {what}")


async def test_a_mail_interrupted_in_flight_is_never_sent_twice(
    servers: Servers, topics: Topics, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    port = free_port()
    notify = Notify(servers, {**environment(topics, run), "SMTP_PORT": str(port)}, tmp_path)
    sink = KillingMailServer(notify)
    mail_server = Controller(sink, hostname="127.0.0.1", port=port)
    mail_server.start()
    log = EventLog()
    try:
        await notify.start()
        offer, following, follower = await feed_and_follow(servers, topics, "email", log)
        await notify.wait_killed()
        assert len(sink.messages) == 1

        await notify.start()
        await until(lambda: offer_events(log, topics), "the restarted notify reports the step")
        await asyncio.sleep(2)
        (reported,) = offer_events(log, topics)
        assert reported["event_type"] == "support.notification_failed"
        assert reported["reason"].startswith("unconfirmed")
        assert reported["assignment_id"] == str(offer.assignment_id)
        offer_id = f"<{offer.assignment_id}@peer-support>".encode()
        assert [m for m in sink.messages if offer_id in m] == sink.messages[:1], "not sent again"
        # The reminder was only a record in the store when notify died: it still comes.
        await until(
            lambda: any(e["step"] == "reminder" for e in log.events(topics.notifications)),
            "the reminder, sent by the restarted notify",
        )
        assert len(sink.messages) == 2
        following.cancel()
        await follower.stop()
    finally:
        await notify.stop()
        mail_server.stop()


async def test_a_text_interrupted_in_flight_is_delivered_once(
    servers: Servers, topics: Topics, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    port = free_port()
    settings = {**environment(topics, run), "SMS_WEBHOOK_URL": f"http://127.0.0.1:{port}/sms"}
    notify = Notify(servers, settings, tmp_path)
    provider = KillingSmsProvider(notify)
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/sms", provider.receive, methods=["POST"])]),
            host="127.0.0.1",
            port=port,
            log_config=None,
        )
    )
    serving = asyncio.create_task(server.serve())
    log = EventLog()
    try:
        await notify.start()
        offer, following, follower = await feed_and_follow(servers, topics, "sms", log)
        await notify.wait_killed()

        await notify.start()
        await until(lambda: offer_events(log, topics), "the restarted notify sends")
        await asyncio.sleep(2)
        (sent,) = offer_events(log, topics)
        assert sent["event_type"] == "support.peer_notified"
        assert sent["channel"] == "sms"
        offer_requests = [key for key in provider.requests if key == str(offer.assignment_id)]
        assert len(offer_requests) == 2
        assert str(offer.assignment_id) in provider.delivered  # once: a set of keys
        following.cancel()
        await follower.stop()
    finally:
        await notify.stop()
        server.should_exit = True
        await serving
