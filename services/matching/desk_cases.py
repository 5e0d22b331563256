"""Every case a coordinator may look at, found by hospital, status, supporter or month: not
only those on the worklist (an accepted case, a supporter's caseload, the case a request
opened); and a supporter with their cases. Pure: the case book's records in, lines out."""

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from services.matching.desk import RosterLine
from services.matching.desk_words import said
from services.matching.store import CaseRecord, Status
from shared.events import Code, HospitalId
from shared.i18n import N_, _

Month = Annotated[str, StringConstraints(pattern=r"^20\d\d-(0[1-9]|1[0-2])$")]

STATUS_WORDS: dict[str, str] = {
    Status.NEW: N_("new"),
    Status.WAITING: N_("waiting: nobody fits yet"),
    Status.OFFERED: N_("offered, awaiting an answer"),
    Status.ACCEPTED: N_("in support"),
    Status.ESCALATED: N_("with the coordinator"),
    Status.OPTED_OUT: N_("not approached: the colleague opted out"),
    Status.CLOSED: N_("closed before support"),
    Status.ENDED: N_("support ended"),
}


def status_said(status: str) -> str:
    """A case's status as people say it, in the language being spoken."""
    words = STATUS_WORDS.get(status)
    return _(words) if words else said(status)


FILTERS_AS_WRITTEN = {
    "hospital_id": N_("the hospital as its id, such as ZH-A"),
    "status": N_("one of the statuses in the list"),
    "supporter_id": N_("the supporter as their id, such as ZH-A-ICU-1"),
    "month": N_("the month written as 2026-11"),
    "order": N_("newest or oldest first"),
    "limit": N_("a number from 1 to 200"),
    "offset": N_("a number from 0"),
}


def not_searched(error: ValidationError) -> str:
    """Why a search was not made, in a coordinator's words: which filter, written how."""
    fields = dict.fromkeys(str(problem["loc"][0]) for problem in error.errors() if problem["loc"])
    wanted = [
        _(FILTERS_AS_WRITTEN[field])
        if field in FILTERS_AS_WRITTEN
        else _("{field} is not a filter").format(field=field)
        for field in fields
    ]
    return _("Not searched: give {what}.").format(what="; ".join(wanted))


class CaseOrder(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"


class CaseQuery(BaseModel):
    """What a coordinator looks for; every filter is optional, the hospital within scope."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hospital_id: HospitalId | None = None
    status: Status | None = None
    supporter_id: Code | None = None
    month: Month | None = None
    """The month the case opened (UTC), e.g. `2026-11`."""
    order: CaseOrder = CaseOrder.NEWEST
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=100_000)

    def opened_between(self) -> tuple[datetime, datetime] | None:
        if self.month is None:
            return None
        year, month = map(int, self.month.split("-"))
        first = datetime(year, month, 1, tzinfo=UTC)
        after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        return first, after


class CaseLine(BaseModel):
    """A case as the list shows it: enough to tell cases apart, nothing that names anyone."""

    case_id: str
    hospital_id: str
    status: Status
    status_words: str
    function: str
    department: str
    incident_day: date
    opened_at: datetime | None
    supporter_id: str | None
    supporter_name: str | None


class CaseList(BaseModel):
    total: int
    """How many cases the filters find, on every page."""
    offset: int
    items: list[CaseLine]


def case_lines(
    total: int, query: CaseQuery, records: Sequence[CaseRecord], names: Mapping[str, str]
) -> CaseList:
    """`names`: the roster's display names by supporter id."""
    return CaseList(
        total=total,
        offset=query.offset,
        items=[
            CaseLine(
                case_id=record.case_id,
                hospital_id=record.case.hospital_id,
                status=record.status,
                status_words=status_said(record.status),
                function=record.case.colleague.function,
                department=record.case.colleague.department,
                incident_day=record.case.profile.incident_occurred_at.date(),
                opened_at=record.case.opened_at,
                supporter_id=record.supporter_id,
                supporter_name=names.get(record.supporter_id or ""),
            )
            for record in records
        ],
    )


class SupporterView(BaseModel):
    """One supporter as their coordinator looks after them: how to reach them, their load and
    standing, and the cases they hold or held, the newest first."""

    line: RosterLine
    email: str
    phone: str | None
    language: str
    cases: CaseList
