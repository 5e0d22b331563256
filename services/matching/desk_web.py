"""The desk in the browser: sign in (`shared.signin`), then the worklist, the cases found by
filters, a case with its candidates, a large incident's debriefing, the roster and the
audit log. Forms post to the same actions as the API; a refused action shows its reason."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from services.matching.coordination import Coordination, Refused, debrief_in_scope
from services.matching.desk import DebriefDecision, Need
from services.matching.desk_cases import STATUS_WORDS, CaseList, CaseQuery, not_searched
from services.matching.desk_pages import render, sign_in_page
from services.matching.desk_views import DeskViews
from shared.access import NETWORK, Grant
from shared.events import MAX_PARTICIPANTS, ReferralKind, SupportOutcome
from shared.gate import Refusals
from shared.i18n import N_, _
from shared.signin import Door, SignIn

SESSION_COOKIE = "peer_support_desk_session"
DONE = {
    "assign": N_("Assigned: the offer is on its way to the supporter, who is reminded if needed."),
    "hand_over": N_(
        "Handed over: the new supporter is offered the case; the previous one is "
        "thanked and free again."
    ),
    "withdraw": N_("The open offer was withdrawn: the case is yours to assign."),
    "end": N_("The case was ended; the supporter's capacity is free again."),
    "concern": N_(
        "The concern was raised: the coordinators and the hospital's back-up are being mailed now."
    ),
    "settle_concern": N_("The concern was settled; what was done is in the audit log."),
    "claim": N_("The case is yours: the worklist names you beside its items."),
    "note": N_("The note was added to the case."),
    "reopen": N_("The case was reopened: it is on your worklist to offer again."),
}
"""What an action did, said on the page it leads back to."""
Page = tuple[str, str, dict[str, Any]]
"""A template's name, the page's title and the values it shows."""
Form = dict[str, str]
T = TypeVar("T")


class Redirect(Exception):
    """An action succeeded: the browser goes to the page it changed (post, redirect, get)."""

    def __init__(self, to: str) -> None:
        self.to = to


@dataclass
class DeskPages:
    views: DeskViews
    coordination: Coordination
    refusals: Refusals
    door: Door

    async def answer(
        self,
        request: Request,
        make: Callable[[Grant, str], Awaitable[Page]],
        kept: Callable[[Grant, str, Refused], Awaitable[Page]] | None = None,
    ) -> Response:
        """`kept`: the page a refused action returns to, its form as typed and the reason
        said; without it (or for something not found) a page that says why."""
        grant = await self.door.grant_of(request)
        if grant is None:
            return HTMLResponse(self.door.page())
        scope = (
            _("the whole network")
            if grant.scope == NETWORK
            else _("hospital {id}").format(id=grant.scope)
        )
        holder = f"{grant.holder}, {scope}"
        try:
            name, title, values = await make(grant, holder)
        except Redirect as redirect:
            return RedirectResponse(redirect.to, 303)
        except Refused as refused:
            self.refusals.count(refused.status, refused.reason, request.url.path)
            if kept is None or refused.status == 404:
                page = render("base", _("refused"), problem=refused.reason, scope=holder)
                return HTMLResponse(page, refused.status)
            name, title, values = await kept(grant, holder, refused)
            return HTMLResponse(render(name, title, **values), refused.status)
        return HTMLResponse(render(name, title, **values))

    async def worklist(self, grant: Grant, scope: str, asked: Mapping[str, str]) -> Page:
        """Filtered by need and, for the network, by hospital; what was asked stays."""
        need = asked.get("need") or None
        chosen = Need(need) if need in set(Need) else None
        hospital = asked.get("hospital_id") or None
        items = await self.views.worklist(grant, hospital, datetime.now(UTC), chosen)
        values = {"scope": scope, "items": items, "needs": list(Need), "asked": asked}
        return "worklist", _("worklist"), values

    async def cases(self, grant: Grant, scope: str, asked: Mapping[str, str]) -> Page:
        """The filters as typed stay in the form, a refusal included."""
        filters = {k: v for k, v in asked.items() if k in CaseQuery.model_fields and v}
        supporters = await self.views.roster_lines(grant, None, datetime.now(UTC))
        values: dict[str, Any] = {
            "scope": scope,
            "asked": filters,
            "statuses": STATUS_WORDS,
            "supporters": supporters,
        }
        try:
            query = CaseQuery.model_validate(filters)
        except ValidationError as error:
            return "cases", _("cases"), {**values, "problem": not_searched(error)}
        found = await self.views.cases(grant, query)
        return (
            "cases",
            _("cases"),
            {**values, "found": found, "pages": _pages(found, query, filters)},
        )

    async def case(
        self,
        grant: Grant,
        scope: str,
        case_id: str,
        done: str = "",
        refused: tuple[Refused, str, Form] | None = None,
    ) -> Page:
        """`refused`: an action turned down on this page, with its form as typed."""
        view = await self.views.case(case_id, grant)
        candidates = None
        if view.status in ("new", "waiting", "escalated", "accepted"):
            candidates = await self.views.candidates(case_id, grant, datetime.now(UTC))
        values = {
            "scope": scope,
            "case": view,
            "candidates": candidates,
            "done": _(DONE[done]) if done in DONE else "",
            "zone": self.views.policy.timezone,
            "problem": refused[0].reason if refused else "",
            "typed": _typed(*refused[1:]) if refused else {},
        }
        return "case", _("case {id}").format(id=case_id[:8]), values

    async def act(self, grant: Grant, case_id: str, action: str, form: Form) -> Page:
        reason = form.get("reason", "")
        if action == "assign":
            await self.coordination.assign(case_id, form.get("supporter_id", ""), reason, grant)
        elif action == "hand_over":
            await self.coordination.hand_over(case_id, form.get("supporter_id", ""), reason, grant)
        elif action == "withdraw":
            await self.coordination.withdraw(case_id, reason, grant)
        elif action == "concern":
            await self.coordination.raise_concern(case_id, grant)
        elif action == "settle_concern":
            await self.coordination.settle_concern(case_id, reason, grant)
        elif action == "claim":
            await self.coordination.claim(case_id, grant)
        elif action == "note":
            await self.coordination.note(case_id, form.get("text", "")[:1000], grant)
        elif action == "reopen":
            await self.coordination.reopen(case_id, reason, grant)
        elif action == "end":
            outcome, referral = _ending(form)
            await self.coordination.end(case_id, outcome, referral, reason, grant)
        else:
            raise Refused(404, _("no action {action}").format(action=action))
        raise Redirect(f"/cases/{case_id}?done={action}")

    async def incident(
        self,
        grant: Grant,
        scope: str,
        hospital_id: str,
        incident_id: str,
        refused: tuple[Refused, Form] | None = None,
    ) -> Page:
        """`refused`: a record turned down on this page, with its form as typed."""
        debrief = await debrief_in_scope(self.views.records, hospital_id, incident_id, grant)
        supporters = await self.views.roster_lines(grant, debrief.hospital_id, datetime.now(UTC))
        values = {
            "scope": scope,
            "debrief": debrief,
            "cases": await self.views.incident_cases(debrief),
            "supporters": supporters,
            "zone": self.views.policy.timezone,
            "problem": refused[0].reason if refused else "",
            "typed": refused[1] if refused else {},
        }
        return "incident", _("incident {id}").format(id=incident_id), values

    async def debrief(self, grant: Grant, hospital_id: str, incident_id: str, form: Form) -> Page:
        try:
            decision = DebriefDecision(
                planned_on=_day(form.get("planned_on")),
                held_on=_day(form.get("held_on")),
                participants=_number(form.get("participants")),
                facilitator_id=form.get("facilitator_id") or None,
                decided_not_to=form.get("decided_not_to") == "true",
                reason=form.get("reason", "")[:500],
            )
        except ValidationError as error:
            raise Refused(
                422,
                _("Not recorded: give the participants from 1 to {most}").format(
                    most=MAX_PARTICIPANTS
                ),
            ) from error
        await self.coordination.record_debrief(hospital_id, incident_id, decision, grant)
        raise Redirect(f"/incidents/{hospital_id}/{incident_id}")

    async def supporter(self, grant: Grant, scope: str, supporter_id: str) -> Page:
        view = await self.views.supporter(supporter_id, grant, datetime.now(UTC))
        return "supporter", view.line.display_name, {"scope": scope, "supporter": view}

    async def roster(self, grant: Grant, scope: str) -> Page:
        lines = await self.views.roster_lines(grant, None, datetime.now(UTC))
        return "roster", _("roster"), {"scope": scope, "lines": lines}

    async def standing(self, grant: Grant, supporter_id: str, form: Form) -> Page:
        active = form.get("active") == "true"
        await self.coordination.set_active(supporter_id, active, form.get("reason", ""), grant)
        raise Redirect("/roster")

    async def audit(self, grant: Grant, scope: str) -> Page:
        lines = await self.views.audit(grant, None, 200)
        return "audit", _("audit log"), {"scope": scope, "lines": lines}


def desk_pages_router(views: DeskViews, coordination: Coordination, sign_in: SignIn) -> APIRouter:
    door = sign_in.routes(SESSION_COOKIE, sign_in_page)
    router, pages = door.router, DeskPages(views, coordination, sign_in.refusals, door)

    @router.get("/")
    async def worklist(request: Request) -> Response:
        asked = dict(request.query_params)
        return await pages.answer(request, lambda g, s: pages.worklist(g, s, asked))

    @router.get("/cases")
    async def cases(request: Request) -> Response:
        asked = dict(request.query_params)
        return await pages.answer(request, lambda g, s: pages.cases(g, s, asked))

    @router.get("/cases/{case_id}")
    async def case(request: Request, case_id: str, done: str = "") -> Response:
        return await pages.answer(request, lambda g, s: pages.case(g, s, case_id, done))

    @router.post("/cases/{case_id}/{action}")
    async def act(request: Request, case_id: str, action: str) -> Response:
        form = await _form(request)
        return await pages.answer(
            request,
            lambda g, s: pages.act(g, case_id, action, form),
            lambda g, s, refused: pages.case(g, s, case_id, refused=(refused, action, form)),
        )

    @router.get("/incidents/{hospital_id}/{incident_id}")
    async def incident(request: Request, hospital_id: str, incident_id: str) -> Response:
        return await pages.answer(
            request, lambda g, s: pages.incident(g, s, hospital_id, incident_id)
        )

    @router.post("/incidents/{hospital_id}/{incident_id}/debrief")
    async def debrief(request: Request, hospital_id: str, incident_id: str) -> Response:
        form = await _form(request)
        return await pages.answer(
            request,
            lambda g, s: pages.debrief(g, hospital_id, incident_id, form),
            lambda g, s, refused: pages.incident(g, s, hospital_id, incident_id, (refused, form)),
        )

    @router.get("/supporters/{supporter_id}")
    async def supporter(request: Request, supporter_id: str) -> Response:
        return await pages.answer(request, lambda g, s: pages.supporter(g, s, supporter_id))

    @router.get("/roster")
    async def roster(request: Request) -> Response:
        return await pages.answer(request, pages.roster)

    @router.post("/roster/{supporter_id}/standing")
    async def standing(request: Request, supporter_id: str) -> Response:
        form = await _form(request)
        return await pages.answer(request, lambda g, s: pages.standing(g, supporter_id, form))

    @router.get("/audit")
    async def audit(request: Request) -> Response:
        return await pages.answer(request, pages.audit)

    return router


def _pages(found: CaseList, query: CaseQuery, filters: Mapping[str, str]) -> dict[str, str]:
    """Links to the previous and next page of the same search."""
    links = {}
    if query.offset > 0:
        links["previous"] = {**filters, "offset": str(max(query.offset - query.limit, 0))}
    if query.offset + len(found.items) < found.total:
        links["next"] = {**filters, "offset": str(query.offset + query.limit)}
    return {name: "/cases?" + urlencode(params) for name, params in links.items()}


def _typed(action: str, form: Form) -> dict[str, str]:
    """What was typed in a refused form, for the page to show it again in that form: the
    reason (beside the supporter it was for), the outcome and referral chosen, a note."""
    if supporter_id := form.get("supporter_id"):
        return {supporter_id: form.get("reason", "")}
    kept = {key: form[key] for key in ("outcome", "referral", "reason", "text") if key in form}
    return {f"{action}_{key}": value for key, value in kept.items()}


async def _form(request: Request) -> Form:
    form = parse_qs((await request.body()).decode(errors="replace"))
    return {key: values[0].strip() for key, values in form.items()}


def _ending(form: Form) -> tuple[SupportOutcome, ReferralKind | None]:
    try:
        outcome = SupportOutcome(form.get("outcome", ""))
        referral = ReferralKind(form["referral"]) if form.get("referral") else None
    except ValueError as error:
        raise Refused(422, _("choose how support ended, from the list")) from error
    return outcome, referral


def _day(value: str | None) -> date | None:
    return _parsed(value, date.fromisoformat, N_("{value} is not a date"))


def _number(value: str | None) -> int | None:
    return _parsed(value, int, N_("{value} is not a number"))


def _parsed(value: str | None, parse: Callable[[str], T], what: str) -> T | None:
    try:
        return parse(value) if value else None
    except ValueError as error:
        raise Refused(422, _(what).format(value=value)) from error
