"""Real servers for the wiring tests, and the four services running against them in process.

Servers come, in this order, from `KAFKA_BOOTSTRAP_SERVERS` / `MONGODB_URL`, from
testcontainers when a Docker engine answers, or from the project's local servers. Each test
session uses topics and databases of its own, so a shared server is never polluted.
"""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pymongo import AsyncMongoClient

from deploy.localservers import LocalServers, free_port
from services.intake.app import create_app as intake_app
from services.intake.directory import StaffMember
from services.intake.directory_store import StaffDirectory
from services.intake.settings import IntakeSettings
from services.matching.app import create_app as matching_app
from services.matching.settings import MatchingSettings
from services.notify.app import create_app as notify_app
from services.notify.settings import NotifySettings
from services.reporting.app import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from shared.access import NETWORK
from shared.mongo import Document
from shared.settings import dead_letter_topic
from shared.tokens import ApiTokens
from tests.factories import LINK_SECRET, PSEUDONYM_KEY
from tests.integration.pipeline import Pipeline
from tests.integration.rig import MailSink, Servers, isolated, running

pytestmark = pytest.mark.integration

EXCLUSION_KEY = "test-exclusion-key-of-intake-and-matching"
"""The pipeline's intake and matching tag and compare with it, as in production."""
MAIL_DOMAINS = {f"Q{n}": [f"q{n}.example"] for n in range(1, 6)}
"""The request page's tests' hospitals and their staff's mail domains."""
DIRECTORY = [
    StaffMember(
        hospital_id=f"Q{staff_id[2]}",
        staff_id=staff_id,
        email=f"{staff_id.lower()}@q{staff_id[2]}.example",
        function=function,
        department=department,
    )
    for staff_id, function, department in (
        ("E71001", "nurse", "ICU"),
        ("E71009", "nurse", "ICU"),
        ("E71020", "midwife", "Obstetrics"),
        ("E72001", "nurse", "ICU"),
        ("E72002", "physician", "ED"),
        ("E73001", "nurse", "ICU"),
        ("E74001", "nurse", "ICU"),
        ("E74002", "nurse", "ICU"),
        ("E74101", "nurse", "ICU"),
        ("E75001", "nurse", "ICU"),
        ("E75002", "nurse", "ICU"),
        ("E75010", "nurse", "ICU"),
    )
]
"""The request page's tests' hospitals' staff directory: the staff id's third digit is the
hospital."""
COORDINATORS = {
    hospital: [f"coordinator@{hospital.lower()}.example"]
    for hospital in (*(f"C{n}" for n in "123456789A"), "CH", "CHP")
}
"""The coordinator desk's tests' hospitals, each with a coordinator to tell."""
SAFETY_CONTACTS = {h: [f"psychologist@{h.lower()}.example"] for h in ("CH", "CHP")}
"""The back-up of the hospital whose test raises a safety concern."""


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def _containers() -> Iterator[Servers]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.kafka import KafkaContainer

    # A one-node replica set: transactions need one, as in docker-compose.yml.
    mongo = DockerContainer("mongo:8.0").with_command("--replSet rs0 --bind_ip_all")
    with KafkaContainer().with_kraft() as kafka, mongo.with_exposed_ports(27017) as mongo:
        wait_for_logs(mongo, "Waiting for connections")
        address = f"{mongo.get_container_host_ip()}:{mongo.get_exposed_port(27017)}"
        url = f"mongodb://{address}/?directConnection=true"
        asyncio.run(_initiate_replica_set(url))
        yield Servers(kafka.get_bootstrap_server(), url)


async def _initiate_replica_set(url: str) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(url)
    try:
        config = {"_id": "rs0", "members": [{"_id": 0, "host": "localhost:27017"}]}
        await client.admin.command("replSetInitiate", config)
        while not (await client.admin.command("hello")).get("isWritablePrimary"):  # noqa: ASYNC110 - polling the server
            await asyncio.sleep(0.5)
    finally:
        await client.close()


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("MONGODB_URL"):
        yield Servers(os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["MONGODB_URL"])
    elif _docker_answers():
        with _containers() as containers:
            yield containers
    else:
        local = LocalServers(
            Path(tmp_path_factory.mktemp("servers")),
            free_port(),
            free_port(),
            smtp_port=None,
            tied=True,
        )
        local.start()
        try:
            yield Servers(local.kafka_bootstrap_servers, local.mongodb_url, local)
        finally:
            local.stop()


@pytest.fixture(scope="session")
async def pipeline(servers: Servers) -> AsyncIterator[Pipeline]:
    isolation = await isolated(servers, "test")
    mail = MailSink()
    common = {**isolation.settings(), "retry_backoff_max_seconds": 2.0}
    notify = notify_app(
        NotifySettings(
            **common,
            smtp_port=mail.controller.port,
            link_secret=LINK_SECRET,
            public_url="http://notify",
            coordinators=COORDINATORS,
            safety_contacts=SAFETY_CONTACTS,
            desk_url="http://desk",
        )
    )
    counting = ReportingSettings(
        **common, min_cell_size=5, batch_max_records=50, snapshot_seconds=0
    )
    reporting = reporting_app(counting)
    matching = matching_app(MatchingSettings(**common, exclusion_key=EXCLUSION_KEY))
    intake = intake_app(
        IntakeSettings(
            **common,
            pseudonym_key=PSEUDONYM_KEY.decode(),
            exclusion_key=EXCLUSION_KEY,
            smtp_port=mail.controller.port,
            mail_domains=MAIL_DOMAINS,
            trusted_identity_header="X-Staff-Id",
            trusted_proxies=["10.0.0.1"],
            request_url="http://intake",
        )
    )
    apps = [
        intake,
        matching,
        notify,
        reporting,
    ]
    topics = isolation.topics.all()
    mail.controller.start()
    async with (
        running(isolation, apps, [*topics, *map(dead_letter_topic, topics)]) as base,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=reporting), base_url="http://reporting"
        ) as analyst,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=notify), base_url="http://notify"
        ) as supporter,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=matching), base_url="http://desk"
        ) as desk,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=intake, client=("10.0.0.1", 443)),
            base_url="http://intake",
        ) as proxy,
    ):
        token = await ApiTokens(base.mongo[base.database("reporting")]).issue(
            NETWORK, "tests", datetime.now(UTC)
        )
        analyst.headers["Authorization"] = f"Bearer {token}"
        staff = StaffDirectory(base.mongo[base.database("intake")])
        await staff.load(DIRECTORY, datetime.now(UTC))
        yield Pipeline(
            isolation,
            base.producer,
            base.mongo,
            base.log,
            reporting=analyst,
            supporter=supporter,
            desk=desk,
            proxy=proxy,
            mail=mail,
            reporting_app=reporting,
            reporting_settings=counting,
            matching_app=matching,
            intake_app=intake,
        )
    mail.controller.stop()


@pytest.fixture(scope="session")
async def reporting_url(pipeline: Pipeline) -> AsyncIterator[str]:
    """The pipeline's reporting served over HTTP on a free port, as a browser reaches it."""
    async with served(pipeline.reporting_app) as url:
        yield url


@pytest.fixture(scope="session")
async def desk_url(pipeline: Pipeline) -> AsyncIterator[str]:
    """The pipeline's matching, with the coordinator desk, served over HTTP."""
    async with served(pipeline.matching_app) as url:
        yield url


@pytest.fixture(scope="session")
async def request_page_url(pipeline: Pipeline) -> AsyncIterator[str]:
    """The pipeline's intake, with the request page, served over HTTP."""
    async with served(pipeline.intake_app) as url:
        yield url


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """An app already running in the pipeline, served on a free port (its lifespan is the
    pipeline's)."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=free_port(),
        lifespan="off",
        log_level="warning",
        proxy_headers=False,  # as `shared.service.serve`: the app's `Proxied` decides
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{config.port}"
    server.should_exit = True
    await serving
