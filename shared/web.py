"""What every page and answer of the product's HTTP services carries: security headers, and
a refusal of state-changing requests sent from another site (CSRF)."""

import hmac
from urllib.parse import urlsplit

from faststream.asgi.types import ASGIApp, Message, Receive, Scope, Send

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
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_cross_site(headers: dict[str, str]) -> bool:
    """Whether a request comes from a page of another origin. Browsers say so in
    `Sec-Fetch-Site`; without it, an `Origin` that is not this host (`null` included: a
    sandboxed frame or a file) gives it away. A client that sends neither, such as a script
    with a bearer token, is not a browser form."""
    if (site := headers.get("sec-fetch-site")) is not None:
        return site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc != headers.get("host", "")


class Secured:
    """ASGI middleware: the headers on every answer; a POST (or any state-changing method)
    from another site refused with 403 before the app sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["method"] not in SAFE_METHODS and is_cross_site(headers):
            await _refuse(with_headers)
            return
        await self.app(scope, receive, with_headers)


def bears(headers: dict[str, str], token: str | None) -> bool:
    """Whether the request carries `Authorization: Bearer <token>`; any does without a token."""
    if token is None:
        return True
    given = headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


class BearerOnly:
    """ASGI middleware: 401 unless the request bears the token (`/metrics` with
    `METRICS_TOKEN`); without a token, everyone may."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if scope["type"] == "http" and not bears(headers, self.token):
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


async def _refuse(send: Send) -> None:
    body = b"refused: this form may only be sent from its own page"
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})
