"""The analysts' dashboard: a sign-in with an API token kept in an HttpOnly cookie, and the
charts for that token's scope."""

from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from services.reporting.api import Refusals
from services.reporting.dashboard import charts, page, sign_in_page
from services.reporting.disclosure import PERIOD, Selection, months_before
from services.reporting.settings import ReportingSettings
from services.reporting.snapshots import Snapshots
from services.reporting.store import ApiTokens, CellStore

SESSION_COOKIE = "peer_support_token"
SESSION_SECONDS = 8 * 3600
DASHBOARD_MONTHS = 12
"""The dashboard shows the twelve months up to the latest with anything counted."""


def dashboard_router(
    tokens: ApiTokens,
    store: CellStore,
    snapshots: Snapshots,
    refusals: Refusals,
    settings: ReportingSettings,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
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
                for row in await snapshots.answer(
                    Selection("month", grouping, since, None, hospital)
                )
            ]
            for grouping in ((PERIOD,), (PERIOD, "harm"))
        ]
        scope = f"hospital {hospital}" if hospital else "the whole network"
        drawn = charts(by_month, by_harm, settings.first_contact_target_days)
        return HTMLResponse(page(drawn, scope, settings.min_cell_size))

    @router.post("/session")
    async def sign_in(request: Request) -> Response:
        """Keep the token in an HttpOnly cookie, so the page's requests carry it."""
        form = parse_qs((await request.body()).decode(errors="replace"))
        token = (form.get("token") or [""])[0].strip()
        if not token or await tokens.grant_for(token) is None:
            refusals.count(401, "unknown API token (dashboard sign-in)", request.url.path)
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

    @router.post("/session/end")
    async def sign_out() -> Response:
        response = RedirectResponse("/", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    return router
