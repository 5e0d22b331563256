"""reporting: case events in, anonymised aggregates out, served to analysts over HTTP."""

import asyncio
import csv
import io
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import NoDecode

from services.reporting.access import Grant, OutOfScope
from services.reporting.aggregates import DIMENSIONS, SERVED
from services.reporting.dashboard import charts, page, sign_in_page
from services.reporting.disclosure import (
    PERIOD,
    Period,
    Selection,
    ServedRow,
    Snapshot,
    months_before,
    months_of,
)
from services.reporting.store import ApiTokens, CellStore
from shared.errors import describe
from shared.events import CaseEvent, case_event
from shared.kafka import subscription
from shared.service import Background, Health, wire
from shared.settings import ServiceSettings

SERVICE = "reporting"
SESSION_COOKIE = "peer_support_token"
SESSION_SECONDS = 8 * 3600
DASHBOARD_MONTHS = 12
"""The dashboard shows the twelve months up to the latest with anything counted."""
PERIOD_LABEL = r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$"
LABELS = {"year": r"^\d{4}$", "quarter": r"^\d{4}-Q[1-4]$", "month": r"^\d{4}-(0[1-9]|1[0-2])$"}


class ReportingSettings(ServiceSettings):
    http_port: int = 8080
    min_cell_size: int = Field(default=11, ge=5)
    """Cells with fewer cases are suppressed; never below 5."""
    batch_max_records: int = Field(default=500, ge=1)
    counted_event_retention_days: int = Field(default=35, ge=1)
    """Keep at least as long as the topics keep events, or a late redelivery counts twice."""
    snapshot_seconds: float = Field(default=30.0, ge=0)
    """Analysts' answers come from a snapshot of the cells at most this old."""
    reporting_dimensions: Annotated[list[str], NoDecode] = Field(default=list(DIMENSIONS))
    """What cells are split by besides the month, comma-separated; fewer dimensions give
    larger cells, so fewer are hidden. Changing it needs a rebuild of the aggregates."""

    @field_validator("reporting_dimensions", mode="before")
    @classmethod
    def _dimension_list(cls, value: object) -> object:
        if isinstance(value, str):
            value = [d.strip() for d in value.split(",") if d.strip()]
        if isinstance(value, list) and (unknown := set(value) - set(DIMENSIONS)):
            raise ValueError(f"unknown dimension(s) {sorted(unknown)}; choose from {DIMENSIONS}")
        if isinstance(value, list) and "hospital_id" not in value:
            raise ValueError("hospital_id is needed: a hospital's token reads its own cells")
        return value


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or ReportingSettings()
    wiring = wire(SERVICE, settings)
    log, registry, broker, mongo = wiring.log, wiring.registry, wiring.broker, wiring.mongo
    store = CellStore(
        wiring.database,
        timedelta(days=settings.counted_event_retention_days),
        settings.reporting_dimensions,
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

    health = Health(wiring, settings)
    tasks = Background(health.watch)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.ensure_indexes()
        await broker.start()
        await tasks.start()
        try:
            yield
        finally:
            await tasks.stop()
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

    groupable = (PERIOD, *settings.reporting_dimensions)

    snapshots: dict[tuple[str | None, str | None], tuple[float, Snapshot]] = {}

    async def select(selection: Selection) -> list[ServedRow]:
        """Answer from a snapshot of the years asked about, at most `snapshot_seconds` old:
        protecting every table of a large network takes a while, so it is done once for
        many requests, and off the event loop that also consumes the events."""
        years = (
            selection.first[:4] if selection.first else None,
            selection.last[:4] if selection.last else None,
        )
        taken, snapshot = snapshots.get(years, (0.0, None))
        if snapshot is None or time.monotonic() - taken > settings.snapshot_seconds:
            rows = await store.rows(
                months_of(years[0])[0] if years[0] else None,
                months_of(years[1])[1] if years[1] else None,
            )
            snapshot = await asyncio.to_thread(
                Snapshot, rows, settings.reporting_dimensions, settings.min_cell_size
            )
            snapshots[years] = (time.monotonic(), snapshot)
        return snapshot.answer(selection)

    @api.get("/", include_in_schema=False)
    async def dashboard(request: Request) -> HTMLResponse:
        """The charts, for the scope of the token the browser signed in with."""
        token = request.cookies.get(SESSION_COOKIE)
        grant = await tokens.grant_for(token) if token else None
        if grant is None:
            return HTMLResponse(sign_in_page())
        hospital = grant.hospital_filter(None)
        since = months_before(await store.last_month(hospital), DASHBOARD_MONTHS - 1)
        by_month, by_harm = [
            [
                row.as_json()
                for row in await select(Selection("month", grouping, since, None, hospital))
            ]
            for grouping in ((PERIOD,), (PERIOD, "harm"))
        ]
        scope = f"hospital {hospital}" if hospital else "the whole network"
        return HTMLResponse(page(charts(by_month, by_harm), scope, settings.min_cell_size))

    @api.post("/session", include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        """Keep the token in an HttpOnly cookie, so the page's requests carry it."""
        form = parse_qs((await request.body()).decode(errors="replace"))
        token = (form.get("token") or [""])[0].strip()
        if not token or await tokens.grant_for(token) is None:
            refused.labels("401").inc()
            log.warning("dashboard sign-in refused", status=401, reason="unknown API token")
            return HTMLResponse(sign_in_page("That token is not known."), 401)
        response = RedirectResponse("/", 303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    @api.post("/session/end", include_in_schema=False)
    async def sign_out() -> Response:
        response = RedirectResponse("/", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @api.get("/api/v1/aggregates", tags=["aggregates"], response_model=None)
    async def aggregates(
        request: Request,
        grant: Annotated[Grant, Depends(granted)],
        period: Annotated[Period, Query(description="the time grain of rows and ranges")] = "month",
        first: Annotated[
            str | None,
            Query(alias="from", pattern=PERIOD_LABEL, description="2026-03, 2026-Q1 or 2026"),
        ] = None,
        last: Annotated[str | None, Query(alias="to", pattern=PERIOD_LABEL)] = None,
        hospital_id: Annotated[
            str | None, Query(description="a hospital's token reads its own hospital only")
        ] = None,
        group_by: Annotated[
            str, Query(description=f"comma-separated subset of {', '.join(groupable)}")
        ] = ",".join(groupable),
        format: Annotated[Literal["json", "csv"], Query()] = "json",
    ) -> dict[str, Any] | Response:
        """Counts and times per row, grouped as asked; rows that could identify someone are
        suppressed, and so are the rows that would give those away."""
        dimensions = tuple(d.strip() for d in group_by.split(",") if d.strip())
        if unknown := sorted(set(dimensions) - set(groupable)):
            raise HTTPException(422, f"unknown dimension(s) {unknown}; choose from {groupable}")
        for label in (first, last):
            if label and not re.fullmatch(LABELS[period], label):
                raise HTTPException(422, f"{label!r} is not a {period}; write it like 2026-03, "
                                         "2026-Q1 or 2026 for month, quarter or year")  # fmt: skip
        try:
            hospital = grant.hospital_filter(hospital_id)
        except OutOfScope as error:
            raise refuse(request, 403, str(error)) from error
        served = [
            row.as_json()
            for row in await select(Selection(period, dimensions, first, last, hospital))
        ]
        if format == "csv":
            return Response(as_csv(served, dimensions), media_type="text/csv; charset=utf-8")
        return {
            "period": period,
            "group_by": dimensions,
            "min_cell_size": settings.min_cell_size,
            "rows": served,
        }

    @api.get("/health/live", include_in_schema=False)
    async def live() -> dict[str, Literal["live"]]:
        return {"status": "live"}

    @api.get("/health/ready", include_in_schema=False)
    async def ready(response: Response) -> dict[str, Any]:
        body, response.status_code = await health.readiness()
        return body

    @api.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return api


def as_csv(rows: list[dict[str, Any]], dimensions: Sequence[str]) -> str:
    """One line per row; a suppressed row has its counts empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, [*dimensions, *SERVED, "suppressed"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
