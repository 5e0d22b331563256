"""Signing in to a service's pages: at the hospital's identity provider (OpenID Connect,
through Authlib) where one is set, else with a bearer token. Either way the browser keeps a
session cookie (HttpOnly, SameSite=Strict), never a token. Cross-site posts never get here
(`Secured`)."""

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, partial
from urllib.parse import parse_qs

from authlib.integrations.starlette_client import OAuth, OAuthError, StarletteOAuth2App
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.middleware.sessions import SessionMiddleware

from shared.access import Grant, grant_from_claims
from shared.gate import Refusals
from shared.i18n import _
from shared.settings import IdentityProviderSettings, PagesSettings
from shared.tokens import ApiTokens, Sessions

GrantOf = Callable[[Request], Awaitable[Grant | None]]
"""The grant of a request's session, None when it has none."""
SignInPage = Callable[..., str]
"""A service's sign-in page: `(problem="", hospital_sign_in=False)`."""

ONWARD = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta http-equiv="refresh" content="0; url=/"><title>Signed in</title></head>'
    '<body><main><p>Signed in. <a href="/">Continue</a></p></main></body></html>'
)
STATE_COOKIE = "sign_in_state"
STATE_SECONDS = 600
"""How long a sign-in started at the identity provider may take to come back."""


@dataclass(frozen=True)
class IdentityProvider:
    """The hospital's identity provider, as Authlib reaches it."""

    client: StarletteOAuth2App
    scope_claim: str
    state_secret: str
    """Signs the sign-in's state cookie: the same on every replica (derived from the client
    secret), so a sign-in started on one may end on another."""


def identity_provider(settings: IdentityProviderSettings) -> IdentityProvider | None:
    """None when no provider is set: people sign in with tokens."""
    if not (settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret):
        return None
    secret = settings.oidc_client_secret.get_secret_value()
    client = OAuth().register(
        "hospital",
        client_id=settings.oidc_client_id,
        client_secret=secret,
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"},
    )
    state_secret = hmac.new(secret.encode(), b"sign-in state", hashlib.sha256).hexdigest()
    return IdentityProvider(client, settings.oidc_scope_claim, state_secret)


@dataclass(frozen=True)
class Door:
    """What a service's pages get from signing in."""

    router: APIRouter
    grant_of: GrantOf
    page: Callable[..., str]
    """The sign-in page, offering the hospital's sign-in where there is one."""


@dataclass(frozen=True)
class SignIn:
    """What a service's pages need to let people in."""

    tokens: ApiTokens
    sessions: Sessions
    refusals: Refusals
    settings: PagesSettings

    @cached_property
    def provider(self) -> IdentityProvider | None:
        return identity_provider(self.settings)

    def install(self, app: FastAPI) -> None:
        """The sign-in at the provider keeps its state (nonce, PKCE verifier) in a signed
        cookie for its round trip; `Lax`, as the provider's redirect back is cross-site."""
        if self.provider is not None:
            app.add_middleware(
                SessionMiddleware,
                secret_key=self.provider.state_secret,
                session_cookie=STATE_COOKIE,
                max_age=STATE_SECONDS,
                same_site="lax",
                https_only=self.settings.secure_cookies,
            )

    def routes(self, cookie: str, sign_in_page: SignInPage) -> Door:
        """A router (for the pages) with `POST /session`, `POST /session/end` and, with a
        provider, `GET /session/hospital` and its callback on it."""
        router = APIRouter(include_in_schema=False)
        page = partial(sign_in_page, hospital_sign_in=self.provider is not None)
        sessions = Signed(self, cookie)
        _token_routes(router, self, sessions, page)
        if self.provider is not None:
            _provider_routes(router, self.provider, sessions, page)

        async def grant_of(request: Request) -> Grant | None:
            session = request.cookies.get(cookie)
            return await self.sessions.grant_for(session) if session else None

        return Door(router, grant_of, page)


@dataclass(frozen=True)
class Signed:
    """Opens and ends the browser's session, whichever way it signed in."""

    door: SignIn
    cookie: str

    async def open(
        self, request: Request, opening: Callable[..., Awaitable[str]], *, cross_site: bool = False
    ) -> Response:
        """`cross_site`: the browser arrives from the identity provider, and would not send a
        SameSite=Strict cookie along a redirect of that navigation: a page of ours moves on."""
        lasting = timedelta(hours=self.door.settings.session_hours)
        session = await opening(datetime.now(UTC), lasting)
        response: Response = HTMLResponse(ONWARD) if cross_site else RedirectResponse("/", 303)
        response.set_cookie(
            self.cookie,
            session,
            max_age=int(lasting.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=self.door.settings.secure_cookies or request.url.scheme == "https",
        )
        return response

    async def end(self, request: Request) -> Response:
        if session := request.cookies.get(self.cookie):
            await self.door.sessions.close(session)
        response = RedirectResponse("/", 303)
        response.delete_cookie(self.cookie)
        return response


def _token_routes(
    router: APIRouter, door: SignIn, signed: Signed, page: Callable[..., str]
) -> None:
    tokens, sessions, refusals = door.tokens, door.sessions, door.refusals

    @router.post("/session")
    async def sign_in(request: Request) -> Response:
        if refused := await refusals.too_many(request):
            return HTMLResponse(page(str(refused.detail)), 429, refused.headers)
        form = parse_qs((await request.body()).decode(errors="replace"))
        token = (form.get("token") or [""])[0].strip()
        if not token or await tokens.grant_for(token) is None:
            await refusals.unknown_token(request, f"unknown token (sign-in at {request.url.path})")
            return HTMLResponse(page(_("That token is not known.")), 401)
        return await signed.open(request, partial(sessions.open, token))

    @router.post("/session/end")
    async def sign_out(request: Request) -> Response:
        return await signed.end(request)


def _provider_routes(
    router: APIRouter, provider: IdentityProvider, signed: Signed, page: Callable[..., str]
) -> None:
    sessions, refusals = signed.door.sessions, signed.door.refusals

    @router.get("/session/hospital")
    async def sign_in_at_hospital(request: Request) -> Response:
        callback = request.url_for("signed_in_at_hospital")
        redirect: Response = await provider.client.authorize_redirect(request, str(callback))
        return redirect

    @router.get("/session/hospital/back", name="signed_in_at_hospital")
    async def signed_in_at_hospital(request: Request) -> Response:
        try:
            token = await provider.client.authorize_access_token(request)
        except OAuthError as error:
            refusals.count(401, f"hospital sign-in failed: {error.error}", request.url.path)
            return HTMLResponse(page(_("The hospital's sign-in did not complete; try again.")), 401)
        grant = grant_from_claims(token.get("userinfo") or {}, provider.scope_claim)
        if grant is None:
            refusals.count(403, "hospital sign-in without a scope", request.url.path)
            message = _("Your account is not given access here; ask the programme's operator.")
            return HTMLResponse(page(message), 403)
        return await signed.open(request, partial(sessions.open_for, grant), cross_site=True)
