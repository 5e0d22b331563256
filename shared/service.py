"""What every service process has besides its handlers: health, metrics, its outbox's relay,
the clocks it keeps and clean shutdown."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import structlog
import uvicorn
from fastapi import FastAPI, Request, Response
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.asgi.types import ASGIApp, Scope
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, make_asgi_app
from pydantic import SecretStr
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.batches import Batches
from shared.contracts import Publishes, document, specification
from shared.kafka import DeadLetters, client_options, create_broker
from shared.lag import LagWatch, subscriptions_of
from shared.logs import configure_logging
from shared.metrics import service_registry
from shared.mongo import Document, Outbox, UnitOfWork, create_client, is_reachable
from shared.settings import ServiceSettings
from shared.timing import woken_or_after
from shared.tracing import tracer_provider
from shared.web import BearerOnly, Proxied, Secured, Speaking, language_switch, may_scrape


@dataclass(frozen=True)
class Wiring:
    """What every service is built from: its log, metrics, broker and own database."""

    service: str
    log: Any
    registry: CollectorRegistry
    broker: KafkaBroker
    dead_letters: DeadLetters
    mongo: AsyncMongoClient[Document]
    database: AsyncDatabase[Document]
    outbox: Outbox
    unit_of_work: UnitOfWork
    batches: Batches


def wire(service: str, settings: ServiceSettings) -> Wiring:
    configure_logging(service, settings.log_level)
    registry = service_registry()
    broker, dead_letters = create_broker(settings, service, registry)
    mongo = create_client(settings)
    database = mongo[settings.database_name(service)]
    outbox = Outbox(database, broker, registry, relay_after=settings.outbox_relay_after_seconds)
    return Wiring(
        service=service,
        log=structlog.get_logger(service),
        registry=registry,
        broker=broker,
        dead_letters=dead_letters,
        mongo=mongo,
        database=database,
        outbox=outbox,
        unit_of_work=UnitOfWork(mongo, outbox, settings.topics),
        batches=Batches(
            dead_letters,
            structlog.get_logger(service),
            tracer_provider(service).get_tracer("peer-support.batches"),
        ),
    )


class Background:
    """Tasks that run for the service's life (the outbox relay, a clock), started once the
    broker is up and cancelled at shutdown before the broker stops."""

    def __init__(self, *work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.work = work
        self.tasks: list[asyncio.Task[None]] = []
        self.stopped = False

    async def start(self) -> None:
        """FastStream runs this after the broker has started, which may be after a SIGTERM
        that came during startup was handled: then nothing starts."""
        if self.stopped:
            return
        self.tasks = [
            asyncio.create_task(w(), name=getattr(w, "__qualname__", "")) for w in self.work
        ]

    async def stop(self) -> None:
        """Cancel each task until it has ended: a cancellation swallowed by a library (as
        Python 3.11's `asyncio.wait_for` does when its awaitable finishes at that moment)
        must not leave shutdown waiting for ever."""
        self.stopped = True
        for task in self.tasks:
            task.cancel()
        while pending := [task for task in self.tasks if not task.done()]:
            await asyncio.wait(pending, timeout=1.0)
            for task in pending:
                task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass
class Clock:
    """Runs `tick` every `every` seconds, or at once when `woken` is set. A failed tick is
    logged and the next one retries: every store operation is bounded in time, so a stuck
    message delays a tick but never stops the clock."""

    name: str
    tick: Callable[[], Awaitable[object]]
    every: float
    woken: asyncio.Event | None = None

    async def keep(self) -> None:
        woken = self.woken or asyncio.Event()
        while True:
            await woken_or_after(woken, self.every)
            try:
                await self.tick()
            except Exception:
                structlog.get_logger(__name__).exception(f"{self.name} failed; the next will retry")


class Health:
    """Whether the service can do its work, and why not: its servers, its topics, its
    partitions' progress (the consumer-lag watch)."""

    def __init__(self, wiring: Wiring, settings: ServiceSettings) -> None:
        self.broker = wiring.broker
        self.mongo = wiring.mongo
        subscriptions = subscriptions_of(wiring.broker)
        wiring.dead_letters.expect([topic for s in subscriptions for topic in s.topics])
        self.lag = LagWatch(
            settings.kafka_bootstrap_servers,
            subscriptions,
            wiring.registry,
            stall_after=settings.stall_after_seconds,
            options=client_options(settings),
        )
        self.watch = partial(self.lag.watch, settings.lag_check_seconds)

    async def problems(self) -> list[str]:
        problems = [*self.lag.problems]
        if not await self.broker.ping(timeout=2.0):
            problems.insert(0, "the Kafka broker does not answer")
        if not await is_reachable(self.mongo):
            problems.insert(0, "MongoDB does not answer")
        return problems

    async def readiness(self) -> tuple[dict[str, Any], int]:
        """The JSON body and status code of `/health/ready`."""
        if problems := await self.problems():
            return {"status": "not ready", "problems": problems}, 503
        return {"status": "ready"}, 200


def service_app(
    wiring: Wiring,
    settings: ServiceSettings,
    *,
    on_startup: Sequence[Callable[[], Awaitable[Any]]] = (),
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    routes: Sequence[tuple[str, ASGIApp]] = (),
    publishes: Publishes = (),
    drain: Sequence[Callable[[], Awaitable[Any]]] = (),
) -> AsgiFastStream:
    """The ASGI app uvicorn runs: the broker's subscribers, `/health/*`, `/metrics` and the
    service's `routes` (those two `Secured`), the outbox relay, the consumer-lag watch and the
    service's own `background` tasks.

    uvicorn turns SIGTERM into the lifespan shutdown, which waits for `drain` (work handlers
    started that goes on after them), stops the background tasks, then the subscribers after
    their in-flight messages (committing what was handled), waits for `drain` again (for what
    those last messages started), and then closes the database client.
    """
    health = Health(wiring, settings)
    tasks = Background(wiring.outbox.relay, health.watch, *background)

    @get(include_in_schema=False)
    async def live(scope: Scope) -> AsgiResponse:
        return _json({"status": "live"}, 200)

    @get(include_in_schema=False)
    async def ready(scope: Scope) -> AsgiResponse:
        return _json(*await health.readiness())

    spec = specification(wiring.service, wiring.broker, publishes)

    @get(include_in_schema=False)
    async def contract(scope: Scope) -> AsgiResponse:
        return _json(document(spec), 200)

    metrics: ASGIApp = BearerOnly(make_asgi_app(wiring.registry), _secret(settings.metrics_token))
    pages = [("/metrics", metrics), *routes]
    return AsgiFastStream(
        wiring.broker,
        specification=spec,
        asgi_routes=[
            ("/health/live", live),
            ("/health/ready", ready),
            ("/asyncapi.json", contract),
            *((path, _guarded(page, settings)) for path, page in pages),
        ],
        on_startup=on_startup,
        after_startup=[tasks.start],
        on_shutdown=[*drain, tasks.stop],
        after_shutdown=[*drain, wiring.mongo.close],
    )


def web_app(
    wiring: Wiring,
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    on_startup: Sequence[Callable[[], Awaitable[Any]]] = (),
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    publishes: Publishes = (),
    translated: bool = False,
) -> FastAPI:
    """The same as `service_app` for a service with an API of its own (reporting's
    aggregates, matching's coordinator desk): a FastAPI app, `Secured`, whose lifespan runs
    the broker and the background tasks; the routers are the service's to include.
    `translated`: its pages speak from the catalogues, in each reader's language, with a
    switch (`Speaking`)."""
    health = Health(wiring, settings)
    tasks = Background(wiring.outbox.relay, health.watch, *background)
    # Swagger UI and ReDoc load scripts from a public CDN: the contract is /openapi.json.
    api = FastAPI(
        title=title,
        version="1",
        description=description,
        lifespan=_lifespan(wiring, on_startup, tasks),
        docs_url=None,
        redoc_url=None,
    )
    if translated:
        api.add_middleware(Speaking, pages_in=settings.page_language)
        api.include_router(language_switch())
    api.add_middleware(Secured, hsts=settings.secure_cookies)
    api.add_middleware(Proxied, trusted=settings.trusted_proxies)  # outermost: added last
    _operator_routes(api, wiring, health, publishes, _secret(settings.metrics_token))
    return api


def _lifespan(
    wiring: Wiring, on_startup: Sequence[Callable[[], Awaitable[Any]]], tasks: Background
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for prepare in on_startup:
            await prepare()
        await wiring.broker.start()
        await tasks.start()
        try:
            yield
        finally:
            await tasks.stop()
            await wiring.broker.stop()
            await wiring.mongo.close()

    return lifespan


def _operator_routes(
    api: FastAPI, wiring: Wiring, health: Health, publishes: Publishes, token: str | None
) -> None:
    spec = api.state.specification = specification(wiring.service, wiring.broker, publishes)

    @api.get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @api.get("/health/ready", include_in_schema=False)
    async def ready(response: Response) -> dict[str, Any]:
        body, response.status_code = await health.readiness()
        return body

    @api.get("/asyncapi.json", include_in_schema=False)
    async def contract() -> dict[str, Any]:
        return document(spec)

    @api.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not may_scrape(request.scope, token):
            return Response("a bearer token is required", 401, {"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(wiring.registry), media_type=CONTENT_TYPE_LATEST)


def _guarded(page: ASGIApp, settings: ServiceSettings) -> ASGIApp:
    return Proxied(Secured(page, hsts=settings.secure_cookies), settings.trusted_proxies)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


def _json(body: dict[str, Any], status: int) -> AsgiResponse:
    headers = {"content-type": "application/json"}
    return AsgiResponse(json.dumps(body).encode(), status, headers=headers)


def serve(app: ASGIApp, host: str, port: int) -> None:
    """Run one service process; our logging setup stays in charge of uvicorn's loggers.
    Proxy headers are the app's own to believe (`Proxied`, `TRUSTED_PROXIES`), never uvicorn's
    default of whatever comes from loopback."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=30,
        proxy_headers=False,
    )
