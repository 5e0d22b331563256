"""Signing in to a service's pages with a bearer token: the browser keeps a session cookie
(HttpOnly, SameSite=Strict), never the token. Cross-site posts never get here (`Secured`)."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from shared.access import Grant
from shared.gate import Refusals
from shared.settings import AccessSettings
from shared.tokens import ApiTokens, Sessions


def session_routes(
    router: APIRouter,
    tokens: ApiTokens,
    sessions: Sessions,
    refusals: Refusals,
    settings: AccessSettings,
    *,
    cookie: str,
    sign_in_page: Callable[[str], str],
) -> Callable[[Request], Awaitable[Grant | None]]:
    """Adds `POST /session` (sign in) and `POST /session/end` (sign out); returns what tells
    the grant of a request's session, None when it has none."""

    @router.post("/session")
    async def sign_in(request: Request) -> Response:
        if refused := refusals.too_many(request):
            return HTMLResponse(sign_in_page(str(refused.detail)), 429, refused.headers)
        form = parse_qs((await request.body()).decode(errors="replace"))
        token = (form.get("token") or [""])[0].strip()
        if not token or await tokens.grant_for(token) is None:
            refusals.unknown_token(request, f"unknown token (sign-in at {request.url.path})")
            return HTMLResponse(sign_in_page("That token is not known."), 401)
        lasting = timedelta(hours=settings.session_hours)
        session = await sessions.open(token, datetime.now(UTC), lasting)
        response = RedirectResponse("/", 303)
        response.set_cookie(
            cookie,
            session,
            max_age=int(lasting.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies or request.url.scheme == "https",
        )
        return response

    @router.post("/session/end")
    async def sign_out(request: Request) -> Response:
        if session := request.cookies.get(cookie):
            await sessions.close(session)
        response = RedirectResponse("/", 303)
        response.delete_cookie(cookie)
        return response

    async def grant_of(request: Request) -> Grant | None:
        session = request.cookies.get(cookie)
        return await sessions.grant_for(session) if session else None

    return grant_of
