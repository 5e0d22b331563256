"""The analysts' dashboard: a sign-in with an API token kept in an HttpOnly cookie, and the
charts for that token's scope."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from services.reporting.access import Grant
from services.reporting.api import Refusals
from services.reporting.dashboard import charts, page, sign_in_page
from services.reporting.disclosure import PERIOD, Selection, months_before
from services.reporting.settings import ReportingSettings
from services.reporting.snapshots import Snapshots
from services.reporting.store import ApiTokens, CellStore, Sessions

SESSION_COOKIE = "peer_support_session"
DASHBOARD_MONTHS = 12
"""The dashboard shows the twelve months up to the latest with anything counted."""


def dashboard_router(
    tokens: ApiTokens,
    sessions: Sessions,
    store: CellStore,
    snapshots: Snapshots,
    refusals: Refusals,
    settings: ReportingSettings,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def dashboard(request: Request) -> HTMLResponse:
        """The charts, for the scope of the token the browser signed in with."""
        session = request.cookies.get(SESSION_COOKIE)
        grant = await sessions.grant_for(session) if session else None
        if grant is None:
            return HTMLResponse(sign_in_page())
        return HTMLResponse(await _dashboard(grant, store, snapshots, settings))

    @router.post("/session")
    async def sign_in(request: Request) -> Response:
        """A session for a known token, in an HttpOnly cookie; the token stays with the
        analyst. Cross-site posts never get here (`Secured`)."""
        if refused := refusals.too_many(request):
            return HTMLResponse(sign_in_page(str(refused.detail)), 429, refused.headers)
        form = parse_qs((await request.body()).decode(errors="replace"))
        token = (form.get("token") or [""])[0].strip()
        if not token or await tokens.grant_for(token) is None:
            refusals.unknown_token(request, "unknown API token (dashboard sign-in)")
            return HTMLResponse(sign_in_page("That token is not known."), 401)
        lasting = timedelta(hours=settings.session_hours)
        session = await sessions.open(token, datetime.now(UTC), lasting)
        response = RedirectResponse("/", 303)
        response.set_cookie(
            SESSION_COOKIE,
            session,
            max_age=int(lasting.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies or request.url.scheme == "https",
        )
        return response

    @router.post("/session/end")
    async def sign_out(request: Request) -> Response:
        if session := request.cookies.get(SESSION_COOKIE):
            await sessions.close(session)
        response = RedirectResponse("/", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    return router


async def _dashboard(
    grant: Grant, store: CellStore, snapshots: Snapshots, settings: ReportingSettings
) -> str:
    hospital = grant.hospital_filter(None)
    since = months_before(await store.last_month(hospital), DASHBOARD_MONTHS - 1)
    by_month, by_harm = [
        [
            row.as_json()
            for row in await snapshots.answer(Selection("month", grouping, since, None, hospital))
        ]
        for grouping in ((PERIOD,), (PERIOD, "harm"))
    ]
    scope = f"hospital {hospital}" if hospital else "the whole network"
    drawn = charts(by_month, by_harm, settings.first_contact_target_days)
    return page(drawn, scope, settings.min_cell_size)
