"""The analysts' API: `GET /api/v1/aggregates` with a bearer token, as JSON or CSV."""

import csv
import io
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter

from services.reporting.access import Grant, OutOfScope
from services.reporting.aggregates import SERVED
from services.reporting.disclosure import PERIOD, Period, Selection
from services.reporting.settings import ReportingSettings
from services.reporting.snapshots import Snapshots
from services.reporting.store import ApiTokens

PERIOD_LABEL = r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$"
LABELS = {"year": r"^\d{4}$", "quarter": r"^\d{4}-Q[1-4]$", "month": r"^\d{4}-(0[1-9]|1[0-2])$"}


class Refusals:
    """Every refused request is logged and counted, by status."""

    def __init__(self, registry: CollectorRegistry, log: Any) -> None:
        self.log = log
        self.counter = Counter(
            "api_requests_refused",
            "Analyst API requests refused, by status",
            ["status"],
            registry=registry,
        )

    def refuse(self, path: str, status: int, reason: str) -> HTTPException:
        self.count(status, reason, path)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return HTTPException(status, reason, headers=headers)

    def count(self, status: int, reason: str, path: str) -> None:
        self.counter.labels(str(status)).inc()
        self.log.warning("api request refused", status=status, reason=reason, path=path)


def aggregates_router(
    tokens: ApiTokens, snapshots: Snapshots, refusals: Refusals, settings: ReportingSettings
) -> APIRouter:
    router = APIRouter(tags=["aggregates"])
    bearer = HTTPBearer(auto_error=False)
    groupable = (PERIOD, *settings.reporting_dimensions)

    async def granted(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Grant:
        path = request.url.path
        if credentials is None:
            raise refusals.refuse(
                path, 401, "an API token is required: Authorization: Bearer <token>"
            )
        grant = await tokens.grant_for(credentials.credentials)
        if grant is None:
            raise refusals.refuse(path, 401, "unknown API token")
        return grant

    @router.get("/api/v1/aggregates", response_model=None)
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


def as_csv(rows: list[dict[str, Any]], dimensions: Sequence[str]) -> str:
    """One line per row; a suppressed row has its counts empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, [*dimensions, *SERVED, "suppressed"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
