"""What every page and answer of the product's HTTP services carries: security headers, a
refusal of state-changing requests sent from another site (CSRF) and of oversized bodies, who
the caller is when a proxy stands in front, and the language the person reads."""

import hmac
import ipaddress
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from faststream.asgi.types import ASGIApp, Message, Receive, Scope, Send
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from shared.i18n import LANGUAGES, SOURCE, Language, preferred, speaking

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # Pages are reached through signed links: their address never leaves the origin.
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
HSTS = ("strict-transport-security", "max-age=31536000; includeSubDomains")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CROSS_SITE = "refused: this form may only be sent from its own page"
MAX_BODY_BYTES = 64 * 1024
"""Every form and JSON body the services take is a few hundred bytes: more is no request."""


class Proxied:
    """ASGI middleware, outermost: keeps the socket's peer (`peer`), then believes
    `X-Forwarded-For` and `X-Forwarded-Proto` only from `trusted` (addresses or networks;
    uvicorn's own middleware reads them). `serve` turns off uvicorn's default belief in
    loopback: a header anyone on the host can send proves nothing."""

    def __init__(self, app: ASGIApp, trusted: Sequence[str]) -> None:
        reading: Any = ProxyHeadersMiddleware(app, list(trusted)) if trusted else app  # type: ignore[arg-type]
        self.app: ASGIApp = reading

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["peer"] = peer(scope)
        await self.app(scope, receive, send)


def peer(scope: Scope) -> str:
    """The address the connection came from, whatever a proxy said of its client."""
    if "peer" in scope:
        return str(scope["peer"])
    client = scope.get("client")
    return str(client[0]) if client else ""


def among(address: str, networks: Sequence[str]) -> bool:
    """Whether the address is one of these addresses or in one of these networks (CIDR)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)


def is_cross_site(headers: dict[str, str], scheme: str) -> bool:
    """Whether a request comes from a page of another origin. Browsers say so in
    `Sec-Fetch-Site`; without it, an `Origin` that is not this origin, scheme included (`null`
    too: a sandboxed frame or a file), gives it away. A client that sends neither, such as a
    script with a bearer token, is not a browser form."""
    if (site := headers.get("sec-fetch-site")) is not None:
        return site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return False
    own = f"{scheme}://{headers.get('host', '')}"
    return origin == "null" or urlsplit(origin)._replace(path="").geturl() != own


class BodyTooLarge(Exception):
    """A body past the limit as it streams in, whatever its `Content-Length` said."""


class Secured:
    """ASGI middleware: the headers on every answer (HSTS where the service is reached over
    TLS only); a POST (or any state-changing method) from another site refused with 403, and
    a body over `max_body` bytes with 413, before the app acts on it."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False, max_body: int = MAX_BODY_BYTES):
        self.app = app
        headers = [*SECURITY_HEADERS.items(), *([HSTS] if hsts else [])]
        self.headers = [(k.encode(), v.encode()) for k, v in headers]
        self.max_body = max_body
        self.too_large = f"refused: a request carries {max_body} bytes at most"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["method"] not in SAFE_METHODS and is_cross_site(headers, scope["scheme"]):
            await _refuse(with_headers, 403, CROSS_SITE)
            return
        if int(headers.get("content-length") or 0) > self.max_body:
            await _refuse(with_headers, 413, self.too_large)
            return
        received = 0

        async def capped() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, capped, with_headers)
        except BodyTooLarge:
            if not started:
                await _refuse(with_headers, 413, self.too_large)


def bears(headers: dict[str, str], token: str | None) -> bool:
    """Whether the request carries `Authorization: Bearer <token>`."""
    given = headers.get("authorization", "")
    return token is not None and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def may_scrape(scope: Scope, token: str | None) -> bool:
    """`/metrics`: with `METRICS_TOKEN`, its bearer; without, only a caller on this host (a
    sidecar, or `make up`'s Prometheus): what the services count is nobody else's to read."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
    if token is None:
        return among(peer(scope), ["127.0.0.0/8", "::1"])
    return bears(headers, token)


class BearerOnly:
    """ASGI middleware: 401 unless `may_scrape` (`/metrics`)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not may_scrape(scope, self.token):
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"www-authenticate", b"Bearer"), (b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": b"a bearer token is required"})
            return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, reason: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": reason.encode()})


LANGUAGE_COOKIE = "peer_support_language"


class Speaking:
    """ASGI middleware: each request answered in the language its person chose (the language
    switch's cookie) or their browser asks for; otherwise pages in the hospital's language and
    the API, read by machines, in English."""

    def __init__(self, app: ASGIApp, *, pages_in: Language) -> None:
        self.app = app
        self.pages_in = pages_in

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        chosen = cookie_parser(headers.get("cookie", "")).get(LANGUAGE_COOKIE)
        fallback = SOURCE if scope["path"].startswith("/api/") else self.pages_in
        with speaking(preferred(chosen, headers.get("accept-language"), fallback)):
            await self.app(scope, receive, send)


def language_switch() -> APIRouter:
    """`GET /language/{nl|en}`: the choice kept in a cookie for a year, then back to the page
    the switch was on (the same origin's `Referer`, which `referrer-policy` keeps)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/language/{language}")
    async def switch(request: Request, language: str) -> Response:
        came_from = urlsplit(request.headers.get("referer", ""))
        back = "/"
        if came_from.netloc == request.url.netloc and came_from.path.startswith("/"):
            back = came_from.path + (f"?{came_from.query}" if came_from.query else "")
        answer = RedirectResponse(back, 303)
        if language in LANGUAGES:
            answer.set_cookie(
                LANGUAGE_COOKIE, language, max_age=365 * 24 * 3600, samesite="lax", httponly=True
            )
        return answer

    return router
