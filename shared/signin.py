"""Signing in to a service's pages with a bearer token: the browser keeps a session cookie
(HttpOnly, SameSite=Strict), never the token. Cross-site posts never get here (`Secured`)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from shared.access import Grant
from shared.gate import Refusals
from shared.settings import AccessSettings
from shared.tokens import ApiTokens, Sessions

GrantOf = Callable[[Request], Awaitable[Grant | None]]
"""The grant of a request's session, None when it has none."""


@dataclass(frozen=True)
class SignIn:
    """What a service's pages need to let people in with their tokens."""

    tokens: ApiTokens
    sessions: Sessions
    refusals: Refusals
    settings: AccessSettings

    def routes(self, cookie: str, sign_in_page: Callable[[str], str]) -> tuple[APIRouter, GrantOf]:
        """A router (for the pages) with `POST /session` and `POST /session/end` on it."""
        router = APIRouter(include_in_schema=False)
        grant_of = _session_routes(router, self, cookie=cookie, sign_in_page=sign_in_page)
        return router, grant_of


def _session_routes(
    router: APIRouter, door: SignIn, *, cookie: str, sign_in_page: Callable[[str], str]
) -> GrantOf:
    tokens, sessions, refusals, settings = door.tokens, door.sessions, door.refusals, door.settings

    @router.post("/session")
    async def sign_in(request: Request) -> Response:
        if refused := await refusals.too_many(request):
            return HTMLResponse(sign_in_page(str(refused.detail)), 429, refused.headers)
        form = parse_qs((await request.body()).decode(errors="replace"))
        token = (form.get("token") or [""])[0].strip()
        if not token or await tokens.grant_for(token) is None:
            await refusals.unknown_token(request, f"unknown token (sign-in at {request.url.path})")
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
