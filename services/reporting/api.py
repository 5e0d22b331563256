"""The analysts' API: `GET /api/v1/aggregates` with a bearer token, as JSON or CSV."""

import csv
import io
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

from services.reporting.access import Attempts, Grant, OutOfScope
from services.reporting.aggregates import SERVED
from services.reporting.disclosure import PERIOD, Period, Selection
from services.reporting.settings import ReportingSettings
from services.reporting.snapshots import Snapshots
from services.reporting.store import ApiTokens
from shared.metrics import NAMESPACE

PERIOD_LABEL = r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$"
LABELS = {"year": r"^\d{4}$", "quarter": r"^\d{4}-Q[1-4]$", "month": r"^\d{4}-(0[1-9]|1[0-2])$"}


class Refusals:
    """Every refused request is logged and counted, by status; an address that keeps
    presenting unknown tokens is refused (429) for a while, so tokens cannot be guessed."""

    def __init__(self, registry: CollectorRegistry, log: Any, attempts: Attempts) -> None:
        self.log = log
        self.attempts = attempts
        self.counter = Counter(
            "api_requests_refused",
            "Analyst API requests refused, by status",
            ["status"],
            registry=registry,
            namespace=NAMESPACE,
        )

        for status in ("401", "403", "429"):
            self.counter.labels(status)

    def refuse(
        self, path: str, status: int, reason: str, headers: dict[str, str] | None = None
    ) -> HTTPException:
        self.count(status, reason, path)
        if status == 401:
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return HTTPException(status, reason, headers=headers)

    def too_many(self, request: Request) -> HTTPException | None:
        """429 for an address past its allowance of unknown tokens, else None."""
        client, now = _client(request), datetime.now(UTC)
        if not self.attempts.blocked(client, now):
            return None
        wait = self.attempts.retry_after(client, now)
        return self.refuse(
            request.url.path,
            429,
            f"too many unknown tokens from this address; try again in {wait} s",
            {"Retry-After": str(wait)},
        )

    def unknown_token(self, request: Request, reason: str = "unknown API token") -> HTTPException:
        self.attempts.failed(_client(request), datetime.now(UTC))
        return self.refuse(request.url.path, 401, reason)

    def count(self, status: int, reason: str, path: str) -> None:
        self.counter.labels(str(status)).inc()
        self.log.warning("api request refused", status=status, reason=reason, path=path)


def aggregates_router(
    tokens: ApiTokens, snapshots: Snapshots, refusals: Refusals, settings: ReportingSettings
) -> APIRouter:
    router = APIRouter(tags=["aggregates"])
    groupable = (PERIOD, *settings.reporting_dimensions)
    granted = bearer_grant(tokens, refusals)

    @router.get("/api/v1/aggregates", response_model=Aggregates, responses=RESPONSES)
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
    ) -> Any:
        """Counts and times per row, grouped as asked; rows that could identify someone are
        suppressed, and so are the rows that would give those away."""
        dimensions = _grouping(group_by, groupable)
        for label in (first, last):
            _check_label(label, period)
        try:
            hospital = grant.hospital_filter(hospital_id)
        except OutOfScope as error:
            raise refusals.refuse(request.url.path, 403, str(error)) from error
        selection = Selection(period, dimensions, first, last, hospital)
        served = [row.as_json() for row in await snapshots.answer(selection)]
        if format == "csv":
            return Response(as_csv(served, dimensions), media_type="text/csv; charset=utf-8")
        return {
            "period": period,
            "group_by": dimensions,
            "min_cell_size": settings.min_cell_size,
            "rows": served,
        }

    return router


class Aggregates(BaseModel):
    period: Period
    group_by: list[str]
    """The dimensions (and `period`) each row is grouped by."""
    min_cell_size: int
    rows: list[dict[str, str | int | bool | None]]
    """Each row: its `group_by` values, every measure (`null` where suppressed or nothing
    was measured) and `suppressed`."""


class Refused(BaseModel):
    detail: str | list[Any]
    """Why: a sentence, or for a malformed query FastAPI's list of what is wrong."""


def _refused(description: str) -> dict[str, Any]:
    return {"model": Refused, "description": description}


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The rows as JSON, or with `format=csv` as CSV (suppressed counts empty)",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    },
    401: _refused("No token, or one unknown, expired or revoked"),
    403: _refused("A hospital's token asking for another hospital"),
    422: _refused("A wrong period label, dimension or parameter"),
    429: _refused("Too many unknown tokens from this address; see Retry-After"),
}


def bearer_grant(tokens: ApiTokens, refusals: Refusals) -> Callable[..., Awaitable[Grant]]:
    """The dependency that turns `Authorization: Bearer <token>` into the token's grant."""
    bearer = HTTPBearer(auto_error=False)

    async def granted(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Grant:
        if credentials is None:
            raise refusals.refuse(
                request.url.path, 401, "an API token is required: Authorization: Bearer <token>"
            )
        if refused := refusals.too_many(request):
            raise refused
        grant = await tokens.grant_for(credentials.credentials)
        if grant is None:
            raise refusals.unknown_token(request, "unknown, expired or revoked API token")
        return grant

    return granted


def _client(request: Request) -> str:
    """The caller's address (a TLS proxy's `X-Forwarded-For` where uvicorn trusts it)."""
    return request.client.host if request.client else "unknown"


def _grouping(group_by: str, groupable: Sequence[str]) -> tuple[str, ...]:
    dimensions = tuple(d.strip() for d in group_by.split(",") if d.strip())
    if unknown := sorted(set(dimensions) - set(groupable)):
        raise HTTPException(422, f"unknown dimension(s) {unknown}; choose from {groupable}")
    return dimensions


def _check_label(label: str | None, period: Period) -> None:
    if label and not re.fullmatch(LABELS[period], label):
        raise HTTPException(
            422,
            f"{label!r} is not a {period}; write it like 2026-03, 2026-Q1 or 2026 for month, "
            "quarter or year",
        )


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def as_csv(rows: list[dict[str, Any]], dimensions: Sequence[str]) -> str:
    """One line per row; a suppressed row has its counts empty. A text that a spreadsheet
    would run as a formula (a department named `=HYPERLINK(...)`) is quoted with `'`."""
    out = io.StringIO()
    writer = csv.DictWriter(out, [*dimensions, *SERVED, "suppressed"], lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({k: _inert(v) for k, v in row.items()} for row in rows)
    return out.getvalue()


def _inert(value: object) -> object:
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
