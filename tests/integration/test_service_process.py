"""Each service as operators run it: its own process, health over HTTP, JSON logs, SIGTERM."""

import asyncio
import contextlib
import json
import signal
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from deploy.localservers import free_port
from shared.kafka import ensure_topics
from shared.settings import Topics
from tests.factories import LINK_SECRET, PSEUDONYM_KEY, incident_json
from tests.integration.rig import Servers

pytestmark = pytest.mark.integration


async def wait_for(url: str, process: asyncio.subprocess.Process, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            assert process.returncode is None, f"the service exited with {process.returncode}"
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {within:.0f}s")


@pytest.mark.parametrize("service", ["intake", "matching", "notify", "reporting"])
async def test_a_service_reports_health_logs_json_and_stops_on_sigterm(
    service: str, servers: Servers, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    topics = {
        f"TOPIC_{name.upper()}": f"proc-{run}.{t}" for name, t in Topics().model_dump().items()
    }
    await ensure_topics(servers.kafka_bootstrap_servers, list(topics.values()))
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap_servers,
        "MONGODB_URL": servers.mongodb_url,
        "MONGODB_DATABASE_PREFIX": f"proc_{run}_",
        "KAFKA_GROUP_PREFIX": f"proc-{run}.",
        "HTTP_PORT": str(port),
        "PSEUDONYM_KEY": PSEUDONYM_KEY.decode(),
        "LINK_SECRET": LINK_SECRET,
        **topics,
    }
    log_path = tmp_path / f"{service}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"services.{service}", env=env, stdout=log, stderr=log
        )
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_for(f"{base}/health/ready", process)
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"{base}/health/live")).status_code == 200
                metrics = (await client.get(f"{base}/metrics")).text
                contract = (await client.get(f"{base}/asyncapi.json")).json()
            assert contract["info"]["title"] == f"peer-support {service}"
            # Every series an alert watches is there from the start, at zero.
            dead_lettered = [
                line for line in metrics.splitlines()
                if line.startswith("peer_support_dead_lettered_messages_total{")
            ]  # fmt: skip
            assert dead_lettered, metrics
            assert all(line.endswith(" 0.0") for line in dead_lettered)
            assert "peer_support_process_resident_memory_bytes " in metrics
            assert not any(line.startswith(("outbox_", "consumer_lag")) for line in metrics.split())
            if service == "intake":
                await _report_one_incident(servers, topics["TOPIC_INCIDENTS_REPORTED"])
                await _until_logged(log_path, "incident taken in")

            process.send_signal(signal.SIGTERM)
            # uvicorn finishes the shutdown, then re-raises the signal for the supervisor to see.
            assert await asyncio.wait_for(process.wait(), 40) in (0, -signal.SIGTERM)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    records = [json.loads(line) for line in log_path.read_text().splitlines()]  # all JSON
    events = [r["event"] for r in records]
    assert "Application startup complete." in events
    assert "Application shutdown complete." in events
    assert f"Finished server process [{process.pid}]" in events
    if service == "intake":
        (received,) = [r for r in records if r["event"] == "incident taken in"]
        assert received["correlation_id"] == "ZH-A:INC-PROC-1"
        assert received["service"] == "intake"


async def _report_one_incident(servers: Servers, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap_servers)
    await producer.start()
    try:
        event = incident_json("INC-PROC-1")
        await producer.send_and_wait(topic, json.dumps(event).encode(), key=b"ZH-A:INC-PROC-1")
    finally:
        await producer.stop()


async def _until_logged(log_path: Path, event: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while f'"event": "{event}"' not in await asyncio.to_thread(log_path.read_text):
        assert time.monotonic() < deadline, f"{event!r} was not logged within {within:.0f}s"
        await asyncio.sleep(0.2)
