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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from deploy.localservers import free_port
from shared.events import ChannelName, PeerAssigned
from shared.settings import Topics
from tests.factories import LINK_SECRET
from tests.integration.rig import EventLog, Isolation, Rig, Servers, isolated, running, until
from tests.integration.test_notify import offer_and_contact, offered

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
async def isolation(servers: Servers) -> Isolation:
    return await isolated(servers, "crash")


async def feed(notify: Rig, channel: ChannelName) -> PeerAssigned:
    """Publish one offer and its contact, as matching and intake do."""
    return await offered(notify, *offer_and_contact(f"INC-{channel}", channel, "+31644444444"))


@asynccontextmanager
async def killed_while_sending(
    notify: Notify, isolation: Isolation, channel: ChannelName
) -> AsyncIterator[tuple[EventLog, PeerAssigned]]:
    """notify, fed an offer by this channel, dies as it sends it; the test restarts it."""
    await notify.start()
    async with running(isolation, [], [isolation.topics.notifications]) as watching:
        offer = await feed(watching, channel)
        await notify.wait_killed()
        yield watching.log, offer


def offer_events(log: EventLog, topics: Topics) -> list[dict[str, Any]]:
    """What notify announced about the offer step (the reminder follows on its own)."""
    return [e for e in log.events(topics.notifications) if e["step"] == "offer"]


async def test_a_mail_interrupted_in_flight_is_never_sent_twice(
    servers: Servers, isolation: Isolation, tmp_path: Path
) -> None:
    port = free_port()
    topics = isolation.topics
    notify = Notify(servers, {**isolation.environment(), "SMTP_PORT": str(port)}, tmp_path)
    sink = KillingMailServer(notify)
    mail_server = Controller(sink, hostname="127.0.0.1", port=port)
    mail_server.start()
    try:
        async with killed_while_sending(notify, isolation, "email") as (log, offer):
            assert len(sink.messages) == 1

            await notify.start()
            await until(lambda: offer_events(log, topics), what="the restarted notify reports")
            await asyncio.sleep(2)
            (reported,) = offer_events(log, topics)
            assert reported["event_type"] == "support.notification_failed"
            assert reported["reason"].startswith("unconfirmed")
            assert reported["assignment_id"] == str(offer.assignment_id)
            offer_id = f"<{offer.assignment_id}@peer-support>".encode()
            sent_again = [m for m in sink.messages if offer_id in m]
            assert sent_again == sink.messages[:1], "not sent again"
            # The reminder was only a record in the store when notify died: it still comes.
            await until(
                lambda: any(e["step"] == "reminder" for e in log.events(topics.notifications)),
                what="the reminder, sent by the restarted notify",
            )
            assert len(sink.messages) == 2
    finally:
        await notify.stop()
        mail_server.stop()


async def test_a_text_interrupted_in_flight_is_delivered_once(
    servers: Servers, isolation: Isolation, tmp_path: Path
) -> None:
    port = free_port()
    topics = isolation.topics
    settings = {**isolation.environment(), "SMS_WEBHOOK_URL": f"http://127.0.0.1:{port}/sms"}
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
    try:
        async with killed_while_sending(notify, isolation, "sms") as (log, offer):
            await notify.start()
            await until(lambda: offer_events(log, topics), what="the restarted notify sends")
            await asyncio.sleep(2)
            (sent,) = offer_events(log, topics)
            assert sent["event_type"] == "support.peer_notified"
            assert sent["channel"] == "sms"
            offer_requests = [key for key in provider.requests if key == str(offer.assignment_id)]
            assert len(offer_requests) == 2
            assert str(offer.assignment_id) in provider.delivered  # once: a set of keys
    finally:
        await notify.stop()
        server.should_exit = True
        await serving
