"""The door of every bearer-token API and sign-in page: who is refused, and why.

An address that keeps presenting unknown tokens is refused (429) for a while, so tokens
cannot be guessed; every refusal is logged and counted by status."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter

from shared.access import Attempts, Grant
from shared.metrics import NAMESPACE
from shared.tokens import ApiTokens


class Refusals:
    """Refuses, logs and counts; keeps the tally of unknown tokens per address."""

    def __init__(self, registry: CollectorRegistry, log: Any, attempts: Attempts) -> None:
        self.log = log
        self.attempts = attempts
        self.counter = Counter(
            "api_requests_refused",
            "API and sign-in requests refused, by status",
            ["status"],
            registry=registry,
            namespace=NAMESPACE,
        )

        for status in ("401", "403", "429"):
            self.counter.labels(status)

    def refuse(
        self, path: str, status: int, reason: str, headers: dict[str, str] | None = None
    ) -> HTTPException:
        self.count(status, reason, path)
        if status == 401:
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return HTTPException(status, reason, headers=headers)

    def too_many(self, request: Request) -> HTTPException | None:
        """429 for an address past its allowance of unknown tokens, else None."""
        client, now = _client(request), datetime.now(UTC)
        if not self.attempts.blocked(client, now):
            return None
        wait = self.attempts.retry_after(client, now)
        return self.refuse(
            request.url.path,
            429,
            f"too many unknown tokens from this address; try again in {wait} s",
            {"Retry-After": str(wait)},
        )

    def unknown_token(self, request: Request, reason: str = "unknown API token") -> HTTPException:
        self.attempts.failed(_client(request), datetime.now(UTC))
        return self.refuse(request.url.path, 401, reason)

    def count(self, status: int, reason: str, path: str) -> None:
        self.counter.labels(str(status)).inc()
        self.log.warning("api request refused", status=status, reason=reason, path=path)


def bearer_grant(tokens: ApiTokens, refusals: Refusals) -> Callable[..., Awaitable[Grant]]:
    """The dependency that turns `Authorization: Bearer <token>` into the token's grant."""
    bearer = HTTPBearer(auto_error=False)

    async def granted(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Grant:
        if credentials is None:
            raise refusals.refuse(
                request.url.path, 401, "an API token is required: Authorization: Bearer <token>"
            )
        if refused := refusals.too_many(request):
            raise refused
        grant = await tokens.grant_for(credentials.credentials)
        if grant is None:
            raise refusals.unknown_token(request, "unknown, expired or revoked API token")
        return grant

    return granted


def _client(request: Request) -> str:
    """The caller's address (a TLS proxy's `X-Forwarded-For` where uvicorn trusts it)."""
    return request.client.host if request.client else "unknown"
