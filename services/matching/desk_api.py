"""The coordinator desk's JSON API under `/api/v1/`, with a coordinator's bearer token.

Reads answer at once; an action answers 202 once its transaction (state, audit line and
the events it causes) has committed: the offer mail and the rest follow from the events."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from services.matching.coordination import Coordination, Refused
from services.matching.desk import (
    CandidateView,
    CaseView,
    DebriefDecision,
    Need,
    RosterLine,
    WorkItem,
)
from services.matching.desk_cases import CaseList, CaseQuery, SupporterView
from services.matching.desk_store import AuditLine
from services.matching.desk_views import DeskViews
from shared.access import Grant
from shared.events import Code, HospitalId, ReferralKind, SupportOutcome
from shared.gate import Refusals

Reason = Annotated[str, Field(max_length=500)]
"""Why the coordinator acts: kept in the audit log, never published."""


class Worklist(BaseModel):
    size: int
    items: list[WorkItem]


class Withdrawal(BaseModel):
    reason: Reason = ""


class Assignment(Withdrawal):
    """`reason` is needed when a soft rule turned the supporter away."""

    supporter_id: Code


class Handover(Assignment):
    """Accepted support to another supporter, who is offered it; the one who had it is
    thanked. `reason` is needed."""


class Ending(Withdrawal):
    outcome: SupportOutcome
    referral: ReferralKind | None = None


class Note(BaseModel):
    """Kept with the case until it is erased: write what a colleague taking over needs, not
    what the colleague confided."""

    text: Annotated[str, Field(min_length=1, max_length=1000)]


class Standing(Withdrawal):
    active: bool


class Accepted(BaseModel):
    status: str = "accepted"


Granted = Callable[..., Awaitable[Grant]]


Hospital = Annotated[HospitalId | None, Query()]


def _answering(refusals: Refusals) -> Callable[[Request, Awaitable[Any]], Awaitable[Any]]:
    """What a desk action or read answers, or the refusal it raised, logged and counted."""

    async def answer(request: Request, action: Awaitable[Any]) -> Any:
        try:
            return await action
        except Refused as refused:
            raise refusals.refuse(request.url.path, refused.status, refused.reason) from refused

    return answer


def desk_api_router(
    views: DeskViews, coordination: Coordination, granted: Granted, refusals: Refusals
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["desk"])
    router.include_router(_reads(views, granted, refusals))
    router.include_router(_actions(coordination, granted, refusals))
    return router


def _reads(views: DeskViews, granted: Granted, refusals: Refusals) -> APIRouter:
    router = APIRouter()
    Coordinator = Annotated[Grant, Depends(granted)]
    acting = _answering(refusals)

    @router.get("/worklist", response_model=Worklist)
    async def worklist(
        request: Request,
        grant: Coordinator,
        hospital_id: Hospital = None,
        need: Annotated[Need | None, Query()] = None,
    ) -> Any:
        """Every case that needs a person, the severest and longest waiting first; with the
        supporter it is about and how to reach them, where there is one."""
        now = datetime.now(UTC)
        items = await acting(request, views.worklist(grant, hospital_id, now, need))
        return Worklist(size=len(items), items=items)

    @router.get("/cases", response_model=CaseList)
    async def cases(
        request: Request, grant: Coordinator, query: Annotated[CaseQuery, Query()]
    ) -> Any:
        """Every case within scope up to its erasure, by hospital, status, supporter or the
        month it opened; the newest first unless `order=oldest`; `limit` and `offset` page."""
        return await acting(request, views.cases(grant, query))

    @router.get("/cases/{case_id}", response_model=CaseView)
    async def case(request: Request, case_id: str, grant: Coordinator) -> Any:
        return await acting(request, views.case(case_id, grant))

    @router.get("/cases/{case_id}/candidates", response_model=list[CandidateView])
    async def candidates(request: Request, case_id: str, grant: Coordinator) -> Any:
        """The hospital's whole roster, ranked, each with why they fit or were turned away."""
        return await acting(request, views.candidates(case_id, grant, datetime.now(UTC)))

    @router.get("/supporters/{supporter_id}", response_model=SupporterView)
    async def supporter(request: Request, supporter_id: str, grant: Coordinator) -> Any:
        """How to reach a supporter, their load and standing, the cases they hold or held."""
        return await acting(request, views.supporter(supporter_id, grant, datetime.now(UTC)))

    @router.get("/roster", response_model=list[RosterLine])
    async def roster(request: Request, grant: Coordinator, hospital_id: Hospital = None) -> Any:
        return await acting(request, views.roster_lines(grant, hospital_id, datetime.now(UTC)))

    @router.get("/audit", response_model=list[AuditLine])
    async def audit(
        request: Request,
        grant: Coordinator,
        hospital_id: Hospital = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> Any:
        """Who did what and when, the newest first; append-only."""
        return await acting(request, views.audit(grant, hospital_id, limit))

    return router


def _actions(coordination: Coordination, granted: Granted, refusals: Refusals) -> APIRouter:
    router = APIRouter()
    router.include_router(_offering(coordination, granted, refusals))
    Coordinator = Annotated[Grant, Depends(granted)]
    acting = _answering(refusals)

    @router.post("/cases/{case_id}/concern", status_code=202, response_model=Accepted)
    async def concern(request: Request, case_id: str, grant: Coordinator) -> Any:
        """A concern for the colleague's safety: coordinators and `SAFETY_CONTACTS` mailed."""
        await acting(request, coordination.raise_concern(case_id, grant))
        return Accepted()

    @router.post("/cases/{case_id}/concern/settled", status_code=202, response_model=Accepted)
    async def settled(request: Request, case_id: str, body: Withdrawal, grant: Coordinator) -> Any:
        await acting(request, coordination.settle_concern(case_id, body.reason, grant))
        return Accepted()

    @router.post("/cases/{case_id}/claim", status_code=202, response_model=Accepted)
    async def claim(request: Request, case_id: str, grant: Coordinator) -> Any:
        """The case's worklist items are the caller's: the worklist names them as owner."""
        await acting(request, coordination.claim(case_id, grant))
        return Accepted()

    @router.post("/cases/{case_id}/notes", status_code=202, response_model=Accepted)
    async def note(request: Request, case_id: str, body: Note, grant: Coordinator) -> Any:
        await acting(request, coordination.note(case_id, body.text, grant))
        return Accepted()

    @router.post("/cases/{case_id}/end", status_code=202, response_model=Accepted)
    async def end(request: Request, case_id: str, body: Ending, grant: Coordinator) -> Any:
        ending = coordination.end(case_id, body.outcome, body.referral, body.reason, grant)
        await acting(request, ending)
        return Accepted()

    @router.post("/debriefs/{hospital_id}/{incident_id}", status_code=202, response_model=Accepted)
    async def debrief(
        request: Request,
        hospital_id: Code,
        incident_id: Code,
        body: DebriefDecision,
        grant: Coordinator,
    ) -> Any:
        """The day it is planned for, or held (with participants and facilitator); or
        `decided_not_to` with a `reason`."""
        await acting(request, coordination.record_debrief(hospital_id, incident_id, body, grant))
        return Accepted()

    @router.post("/roster/{supporter_id}/standing", status_code=202, response_model=Accepted)
    async def standing(
        request: Request, supporter_id: Code, body: Standing, grant: Coordinator
    ) -> Any:
        await acting(
            request, coordination.set_active(supporter_id, body.active, body.reason, grant)
        )
        return Accepted()

    return router


def _offering(coordination: Coordination, granted: Granted, refusals: Refusals) -> APIRouter:
    """Who has the case: an offer made, taken back, handed over; an ended case reopened."""
    router = APIRouter()
    Coordinator = Annotated[Grant, Depends(granted)]
    acting = _answering(refusals)

    @router.post("/cases/{case_id}/assignment", status_code=202, response_model=Accepted)
    async def assign(request: Request, case_id: str, body: Assignment, grant: Coordinator) -> Any:
        await acting(request, coordination.assign(case_id, body.supporter_id, body.reason, grant))
        return Accepted()

    @router.post("/cases/{case_id}/handover", status_code=202, response_model=Accepted)
    async def hand_over(request: Request, case_id: str, body: Handover, grant: Coordinator) -> Any:
        await acting(
            request, coordination.hand_over(case_id, body.supporter_id, body.reason, grant)
        )
        return Accepted()

    @router.post("/cases/{case_id}/withdrawal", status_code=202, response_model=Accepted)
    async def withdraw(request: Request, case_id: str, body: Withdrawal, grant: Coordinator) -> Any:
        await acting(request, coordination.withdraw(case_id, body.reason, grant))
        return Accepted()

    @router.post("/cases/{case_id}/reopening", status_code=202, response_model=Accepted)
    async def reopen(request: Request, case_id: str, body: Withdrawal, grant: Coordinator) -> Any:
        """An ended case back to the coordinator within `REOPEN_WITHIN`, with a reason."""
        await acting(request, coordination.reopen(case_id, body.reason, grant))
        return Accepted()

    return router
