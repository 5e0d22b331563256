"""reporting: case events in, anonymised aggregates out, served to analysts over HTTP.

The counting is `count_batch`'s, the API `aggregates_router`'s, the dashboard
`dashboard_router`'s; answers come from `Snapshots`."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.reporting.access import Attempts
from services.reporting.api import Refusals, aggregates_router
from services.reporting.counting import count_batch
from services.reporting.settings import SERVICE, ReportingSettings
from services.reporting.snapshots import Snapshots
from services.reporting.store import ApiTokens, CellStore, Sessions
from services.reporting.web import dashboard_router
from shared.contracts import document, specification
from shared.kafka import subscription
from shared.service import Background, Health, Wiring, wire
from shared.web import Secured, bears


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    wiring = wire(SERVICE, settings)
    broker = wiring.broker
    retention = timedelta(days=settings.counted_event_retention_days)
    store = CellStore(wiring.database, retention, settings.reporting_dimensions)
    tokens = ApiTokens(wiring.database, timedelta(days=settings.api_token_days))
    sessions = Sessions(wiring.database, tokens)
    attempts = Attempts(
        settings.sign_in_failures_allowed, timedelta(seconds=settings.sign_in_window_seconds)
    )
    refusals = Refusals(wiring.registry, wiring.log, attempts)
    snapshots = Snapshots(
        store,
        settings.reporting_dimensions,
        settings.min_cell_size,
        settings.snapshot_seconds,
        settings.first_contact_target_days,
    )

    @broker.subscriber(
        *settings.topics.counted(),
        batch=True,
        max_records=settings.batch_max_records,
        **subscription(settings, SERVICE, "case_events", concurrent=False),
    )
    async def on_case_events(message: KafkaMessage) -> None:
        raw = message.raw_message
        records = raw if isinstance(raw, tuple) else (raw,)
        await count_batch(records, store, wiring.dead_letters, wiring.log)

    health = Health(wiring, settings)
    api = FastAPI(
        title="peer-support reporting",
        version="1",
        description="Anonymised aggregates of the peer-support programme. "
        f"Cells with fewer than {settings.min_cell_size} cases are suppressed.",
        lifespan=_lifespan(wiring, health, [store.ensure_indexes, sessions.ensure_indexes]),
        # Swagger UI and ReDoc load scripts from a public CDN: the contract is /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    api.add_middleware(Secured)
    api.include_router(aggregates_router(tokens, snapshots, refusals, settings))
    api.include_router(dashboard_router(tokens, sessions, store, snapshots, refusals, settings))
    _health_routes(api, wiring, health, settings)
    api.state.specification = specification(SERVICE, broker, publishes=())

    @api.get("/asyncapi.json", include_in_schema=False)
    async def contract() -> dict[str, Any]:
        return document(api.state.specification)

    return api


def _lifespan(
    wiring: Wiring, health: Health, preparations: list[Callable[[], Awaitable[None]]]
) -> Any:
    tasks = Background(health.watch)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for prepare in preparations:
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


def _health_routes(
    api: FastAPI, wiring: Wiring, health: Health, settings: ReportingSettings
) -> None:
    @api.get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @api.get("/health/ready", include_in_schema=False)
    async def ready(response: Response) -> dict[str, Any]:
        body, response.status_code = await health.readiness()
        return body

    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None

    @api.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not bears(dict(request.headers), token):
            return Response("a bearer token is required", 401, {"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(wiring.registry), media_type=CONTENT_TYPE_LATEST)
