"""The door of every bearer-token API and sign-in page: who is refused, and why.

An address that keeps presenting unknown tokens is refused (429) for a while, so tokens
cannot be guessed, counted in the store (every replica sees the same count); every refusal is
logged and counted by status."""

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter
from pymongo.asynchronous.database import AsyncDatabase

from shared.access import Grant
from shared.allowances import Allowance, Allowances
from shared.metrics import NAMESPACE
from shared.mongo import Document
from shared.settings import AccessSettings
from shared.tokens import ApiTokens


class Refusals:
    """Refuses, logs and counts; keeps the tally of unknown tokens per address."""

    def __init__(
        self, registry: CollectorRegistry, log: Any, guesses: Allowances, allowed: int
    ) -> None:
        self.log = log
        self.guesses = guesses
        self.allowed = allowed
        self.ensure_indexes = guesses.ensure_indexes
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

    async def too_many(self, request: Request) -> HTTPException | None:
        """429 for an address past its allowance of unknown tokens, else None."""
        guessing, now = self._guessing(request), datetime.now(UTC)
        if not await self.guesses.exhausted(guessing, now):
            return None
        wait = await self.guesses.retry_after(guessing, now)
        return self.refuse(
            request.url.path,
            429,
            f"too many unknown tokens from this address; try again in {wait} s",
            {"Retry-After": str(wait)},
        )

    async def unknown_token(
        self, request: Request, reason: str = "unknown API token"
    ) -> HTTPException:
        await self.guesses.spend([self._guessing(request)], datetime.now(UTC))
        return self.refuse(request.url.path, 401, reason)

    async def grant_of(self, request: Request, tokens: ApiTokens, token: str | None) -> Grant:
        """The grant of a presented bearer token; refused (raised) when there is none."""
        if token is None:
            raise self.refuse(
                request.url.path, 401, "an API token is required: Authorization: Bearer <token>"
            )
        if refused := await self.too_many(request):
            raise refused
        grant = await tokens.grant_for(token)
        if grant is None:
            raise await self.unknown_token(request, "unknown, expired or revoked API token")
        return grant

    def _guessing(self, request: Request) -> Allowance:
        """The address's unknown tokens, keyed by its hash: the store keeps no address."""
        client = request.client.host if request.client else "unknown"
        return Allowance(hashlib.sha256(f"guessing {client}".encode()).hexdigest(), self.allowed)

    def count(self, status: int, reason: str, path: str) -> None:
        self.counter.labels(str(status)).inc()
        self.log.warning("api request refused", status=status, reason=reason, path=path)


def refusals_of(
    database: AsyncDatabase[Document],
    registry: CollectorRegistry,
    log: Any,
    settings: AccessSettings,
) -> Refusals:
    """A service's door: unknown tokens counted per address in its own database."""
    window = timedelta(seconds=settings.sign_in_window_seconds)
    guesses = Allowances(database, "sign_in_guesses", window)
    return Refusals(registry, log, guesses, settings.sign_in_failures_allowed)


def bearer_grant(tokens: ApiTokens, refusals: Refusals) -> Callable[..., Awaitable[Grant]]:
    """The dependency that turns `Authorization: Bearer <token>` into the token's grant."""
    bearer = HTTPBearer(auto_error=False)

    async def granted(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Grant:
        token = None if credentials is None else credentials.credentials
        return await refusals.grant_of(request, tokens, token)

    return granted
