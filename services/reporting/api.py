"""The analysts' API: `GET /api/v1/aggregates` with a bearer token, as JSON or CSV."""

import csv
import io
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel

from services.reporting.aggregates import SERVED
from services.reporting.disclosure import PERIOD, Period, Selection
from services.reporting.settings import ReportingSettings
from services.reporting.snapshots import Snapshots
from shared.access import Grant, OutOfScope
from shared.gate import Refusals, bearer_grant
from shared.tokens import ApiTokens

PERIOD_LABEL = r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$"
LABELS = {"year": r"^\d{4}$", "quarter": r"^\d{4}-Q[1-4]$", "month": r"^\d{4}-(0[1-9]|1[0-2])$"}


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
        """Counts and times per row, grouped as asked, as released: each hospital's month
        once it has closed, then corrected by at least `min_cell_size` cases at a time. Rows
        that could identify someone are suppressed, and so are the rows that would give
        those away."""
        dimensions = _grouping(group_by, groupable)
        for label in (first, last):
            _check_label(label, period)
        try:
            hospital = grant.hospital_filter(hospital_id)
        except OutOfScope as error:
            raise refusals.refuse(request.url.path, 403, str(error)) from error
        selection = Selection(period, dimensions, first, last, hospital)
        answer = await snapshots.answer(selection)
        served = [row.as_json() for row in answer.rows]
        if format == "csv":
            return Response(as_csv(served, dimensions), media_type="text/csv; charset=utf-8")
        return {
            "period": period,
            "group_by": dimensions,
            "min_cell_size": settings.min_cell_size,
            "rows": served,
            "releases": [release.as_json() for release in answer.releases],
        }

    return router


class ReleaseShown(BaseModel):
    month: str
    hospital_id: str
    version: int
    """0 for the release, 1 and up for its corrections."""
    released_at: str


class Aggregates(BaseModel):
    period: Period
    group_by: list[str]
    """The dimensions (and `period`) each row is grouped by."""
    min_cell_size: int
    rows: list[dict[str, str | int | bool | None]]
    """Each row: its `group_by` values, every measure (`null` where suppressed or nothing
    was measured) and `suppressed`."""
    releases: list[ReleaseShown]
    """What the rows were read from: each hospital's month in the range, as of its release
    (version 0) or latest correction. A month not listed is not released yet."""


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
