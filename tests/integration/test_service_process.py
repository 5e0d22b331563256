"""Each service as operators run it: its own process, health over HTTP, JSON logs, SIGTERM."""

import asyncio
import json
import signal
import subprocess
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
from tests.factories import incident_json
from tests.integration.conftest import Servers

pytestmark = pytest.mark.integration


def wait_for(url: str, process: subprocess.Popen[bytes], within: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the service exited with {process.returncode}"
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {within:.0f}s")


@pytest.mark.parametrize("service", ["intake", "matching", "notify", "reporting"])
def test_a_service_reports_health_logs_json_and_stops_on_sigterm(
    service: str, servers: Servers, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    topics = {
        f"TOPIC_{name.upper()}": f"proc-{run}.{t}" for name, t in Topics().model_dump().items()
    }
    asyncio.run(ensure_topics(servers.kafka_bootstrap_servers, list(topics.values())))
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap_servers,
        "MONGODB_URL": servers.mongodb_url,
        "MONGODB_DATABASE_PREFIX": f"proc_{run}_",
        "HTTP_PORT": str(port),
        "PSEUDONYM_KEY": "test-key",
        **topics,
    }
    log_path = tmp_path / f"{service}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", f"services.{service}"], env=env, stdout=log, stderr=log
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/health/ready", process)
            assert httpx.get(f"{base}/health/live").status_code == 200
            metrics = httpx.get(f"{base}/metrics").text
            assert "dead_lettered_messages_total" in metrics
            if service == "intake":
                asyncio.run(_report_one_incident(servers, topics["TOPIC_INCIDENTS_REPORTED"]))
                _until_logged(log_path, "incident received")

            process.send_signal(signal.SIGTERM)
            # uvicorn finishes the shutdown, then re-raises the signal for the supervisor to see.
            assert process.wait(timeout=40) in (0, -signal.SIGTERM)
        finally:
            if process.poll() is None:
                process.kill()

    lines = log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is a JSON object
    events = [r["event"] for r in records]
    assert "Application startup complete." in events
    assert events[-2:] == [
        "Application shutdown complete.",
        f"Finished server process [{process.pid}]",
    ]
    if service == "intake":
        (received,) = [r for r in records if r["event"] == "incident received"]
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


def _until_logged(log_path: Path, event: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while f'"event": "{event}"' not in log_path.read_text():
        assert time.monotonic() < deadline, f"{event!r} was not logged within {within:.0f}s"
        time.sleep(0.2)
