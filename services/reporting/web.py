"""The analysts' dashboard: a sign-in with an API token (`session_routes`), and the charts
for that token's scope."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.reporting.dashboard import charts, page, sign_in_page
from services.reporting.disclosure import PERIOD, Selection, months_before
from services.reporting.settings import ReportingSettings
from services.reporting.snapshots import Snapshots
from services.reporting.store import CellStore
from shared.access import Grant
from shared.signin import SignIn

SESSION_COOKIE = "peer_support_session"
DASHBOARD_MONTHS = 12
"""The dashboard shows the twelve months up to the latest released."""


def dashboard_router(
    sign_in: SignIn, store: CellStore, snapshots: Snapshots, settings: ReportingSettings
) -> APIRouter:
    door = sign_in.routes(SESSION_COOKIE, sign_in_page)
    router, grant_of = door.router, door.grant_of

    @router.get("/")
    async def dashboard(request: Request) -> HTMLResponse:
        """The charts, for the scope of the token the browser signed in with."""
        grant = await grant_of(request)
        if grant is None:
            return HTMLResponse(door.page())
        return HTMLResponse(await _dashboard(grant, store, snapshots, settings))

    return router


async def _dashboard(
    grant: Grant, store: CellStore, snapshots: Snapshots, settings: ReportingSettings
) -> str:
    hospital = grant.hospital_filter(None)
    since = months_before(await store.last_month(hospital), DASHBOARD_MONTHS - 1)
    by_month, by_harm = [
        await snapshots.answer(Selection("month", grouping, since, None, hospital))
        for grouping in ((PERIOD,), (PERIOD, "harm"))
    ]
    scope = f"hospital {hospital}" if hospital else "the whole network"
    drawn = charts(
        [row.as_json() for row in by_month.rows],
        [row.as_json() for row in by_harm.rows],
        settings.first_contact_target_days,
    )
    return page(drawn, scope, settings.min_cell_size, by_month.releases)
