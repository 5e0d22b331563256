"""What every service process has besides its handlers: health, metrics and clean shutdown."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
import uvicorn
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.asgi.types import ASGIApp, Scope
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, make_asgi_app
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.kafka import DeadLetters, create_broker
from shared.logs import configure_logging
from shared.mongo import Document, create_client, is_reachable
from shared.settings import ServiceSettings


@dataclass(frozen=True)
class Wiring:
    """What every service is built from: its log, metrics, broker and own database."""

    log: Any
    registry: CollectorRegistry
    broker: KafkaBroker
    dead_letters: DeadLetters
    mongo: AsyncMongoClient[Document]
    database: AsyncDatabase[Document]


def wire(service: str, settings: ServiceSettings) -> Wiring:
    configure_logging(service, settings.log_level)
    registry = CollectorRegistry()
    broker, dead_letters = create_broker(settings, service, registry)
    mongo = create_client(settings)
    return Wiring(
        log=structlog.get_logger(service),
        registry=registry,
        broker=broker,
        dead_letters=dead_letters,
        mongo=mongo,
        database=mongo[settings.database_name(service)],
    )


async def is_ready(broker: KafkaBroker, mongo: AsyncMongoClient[Document]) -> bool:
    """Ready means both servers answer: a service that cannot reach them does no work."""
    return await broker.ping(timeout=2.0) and await is_reachable(mongo)


def service_app(
    broker: KafkaBroker,
    mongo: AsyncMongoClient[Document],
    registry: CollectorRegistry,
    *,
    on_startup: Sequence[Callable[[], Awaitable[Any]]] = (),
    after_startup: Sequence[Callable[[], Awaitable[Any]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[Any]]] = (),
    routes: Sequence[tuple[str, ASGIApp]] = (),
) -> AsgiFastStream:
    """The ASGI app uvicorn runs: the broker's subscribers plus `/health/*` and `/metrics`.

    uvicorn turns SIGTERM into the lifespan shutdown, which stops the subscribers after their
    in-flight messages (committing what was handled) and then closes the database client.
    """

    @get(include_in_schema=False)
    async def live(scope: Scope) -> AsgiResponse:
        return AsgiResponse(b"live", 200)

    @get(include_in_schema=False)
    async def ready(scope: Scope) -> AsgiResponse:
        if await is_ready(broker, mongo):
            return AsgiResponse(b"ready", 200)
        return AsgiResponse(b"not ready", 503)

    metrics: ASGIApp = make_asgi_app(registry)
    return AsgiFastStream(
        broker,
        asgi_routes=[
            ("/health/live", live),
            ("/health/ready", ready),
            ("/metrics", metrics),
            *routes,
        ],
        on_startup=on_startup,
        after_startup=after_startup,
        on_shutdown=on_shutdown,
        after_shutdown=[mongo.close],
    )


def serve(app: ASGIApp, host: str, port: int) -> None:
    """Run one service process; our logging setup stays in charge of uvicorn's loggers."""
    uvicorn.run(app, host=host, port=port, log_config=None, timeout_graceful_shutdown=30)
