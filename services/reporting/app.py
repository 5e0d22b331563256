"""reporting: case events in, anonymised aggregates out, served to analysts over HTTP."""

import csv
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from pydantic import Field, ValidationError

from services.reporting.access import Grant, OutOfScope
from services.reporting.aggregates import DIMENSIONS, MEASURES, roll_up, suppress
from services.reporting.store import ApiTokens, CellStore
from shared.errors import describe
from shared.events import CaseEvent, case_event
from shared.kafka import subscription
from shared.service import is_ready, wire
from shared.settings import ServiceSettings

SERVICE = "reporting"
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"


class ReportingSettings(ServiceSettings):
    http_port: int = 8080
    min_cell_size: int = Field(default=11, ge=5)
    """Cells with fewer cases are suppressed; never below 5."""
    batch_max_records: int = Field(default=500, ge=1)
    counted_event_retention_days: int = Field(default=35, ge=1)
    """Keep at least as long as the topics keep events, or a late redelivery counts twice."""


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    wiring = wire(SERVICE, settings)
    log, registry, broker, mongo = wiring.log, wiring.registry, wiring.broker, wiring.mongo
    store = CellStore(
        wiring.database,
        timedelta(days=settings.counted_event_retention_days),
    )
    tokens = ApiTokens(wiring.database)
    bearer = HTTPBearer(auto_error=False)
    refused = Counter(
        "api_requests_refused", "Analyst API requests refused, by status", ["status"],
        registry=registry,
    )  # fmt: skip
    topics = settings.topics

    @broker.subscriber(
        *topics.counted(),
        batch=True,
        max_records=settings.batch_max_records,
        **subscription(settings, SERVICE, "case_events", concurrent=False),
    )
    async def on_case_events(message: KafkaMessage) -> None:
        records = (
            message.raw_message
            if isinstance(message.raw_message, tuple)
            else (message.raw_message,)
        )
        events: list[CaseEvent] = []
        malformed = []
        for record in records:
            try:
                events.append(case_event.validate_json(record.value))
            except ValidationError as error:
                malformed.append((record, describe(error)))

        counted = await store.count_events(events)
        for record, reason in malformed:
            await wiring.dead_letters.send(record, reason)
        log.info("case events counted", received=len(records), counted=counted)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.ensure_indexes()
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()
            await mongo.close()

    api = FastAPI(
        title="peer-support reporting",
        version="1",
        description="Anonymised aggregates of the peer-support programme. "
        f"Cells with fewer than {settings.min_cell_size} cases are suppressed.",
        lifespan=lifespan,
    )

    def refuse(request: Request, status: int, reason: str) -> HTTPException:
        refused.labels(str(status)).inc()
        log.warning("api request refused", status=status, reason=reason, path=request.url.path)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return HTTPException(status, reason, headers=headers)

    async def granted(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Grant:
        if credentials is None:
            raise refuse(request, 401, "an API token is required: Authorization: Bearer <token>")
        grant = await tokens.grant_for(credentials.credentials)
        if grant is None:
            raise refuse(request, 401, "unknown API token")
        return grant

    @api.get("/api/v1/aggregates", tags=["aggregates"], response_model=None)
    async def aggregates(
        request: Request,
        grant: Annotated[Grant, Depends(granted)],
        month_from: Annotated[str | None, Query(pattern=MONTH)] = None,
        month_to: Annotated[str | None, Query(pattern=MONTH)] = None,
        hospital_id: Annotated[
            str | None, Query(description="a hospital's token reads its own hospital only")
        ] = None,
        group_by: Annotated[
            str, Query(description=f"comma-separated subset of {', '.join(DIMENSIONS)}")
        ] = ",".join(DIMENSIONS),
        format: Annotated[Literal["json", "csv"], Query()] = "json",
    ) -> dict[str, Any] | Response:
        """Counts per cell, grouped by the dimensions asked for; small cells suppressed."""
        dimensions = [d.strip() for d in group_by.split(",") if d.strip()]
        if unknown := sorted(set(dimensions) - set(DIMENSIONS)):
            raise HTTPException(422, f"unknown dimension(s) {unknown}; choose from {DIMENSIONS}")
        try:
            hospital = grant.hospital_filter(hospital_id)
        except OutOfScope as error:
            raise refuse(request, 403, str(error)) from error
        rows = roll_up(await store.rows(month_from, month_to, hospital), dimensions)
        served = [row.as_json() for row in suppress(rows, settings.min_cell_size)]
        if format == "csv":
            return Response(as_csv(served, dimensions), media_type="text/csv; charset=utf-8")
        return {"group_by": dimensions, "min_cell_size": settings.min_cell_size, "rows": served}

    @api.get("/health/live", include_in_schema=False)
    async def live() -> dict[str, Literal["live"]]:
        return {"status": "live"}

    @api.get("/health/ready", include_in_schema=False)
    async def ready(response: Response) -> dict[str, str]:
        if await is_ready(broker, mongo):
            return {"status": "ready"}
        response.status_code = 503
        return {"status": "not ready"}

    @api.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return api


def as_csv(rows: list[dict[str, Any]], dimensions: list[str]) -> str:
    """One line per row; a suppressed row has its counts empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, [*dimensions, *MEASURES, "suppressed"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
