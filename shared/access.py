"""Who may read what: bearer tokens and their scopes. Pure, no I/O.

A token is a random secret shown once, when it is issued; the service keeps only its SHA-256
(the secret has 256 bits, so a fast hash is enough). Its scope is the whole network or one
hospital: a hospital's token reads that hospital's data only (an analyst's cells, a
coordinator's cases).
"""

import hashlib
import math
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

NETWORK = "network"


def new_token() -> str:
    """The `ps_` prefix makes a leaked token recognisable to secret scanners."""
    return "ps_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class OutOfScope(Exception):
    """The token's hospital is not the one asked for."""


@dataclass(frozen=True)
class Grant:
    scope: str
    holder: str = ""
    """Who holds the token, as audit lines name them: its label and id."""

    def reads(self, hospital_id: str) -> bool:
        return self.scope in (NETWORK, hospital_id)

    def hospital_filter(self, requested: str | None) -> str | None:
        """The hospital a query is limited to: what was asked for, within the scope."""
        if self.scope == NETWORK:
            return requested
        if requested not in (None, self.scope):
            raise OutOfScope(f"a token for {self.scope} cannot read {requested}")
        return self.scope


@dataclass
class Attempts:
    """Failed sign-ins and unknown bearer tokens per client address, in a sliding window:
    past `allowed` of them the address is refused until the window has moved on. Kept in the
    process (each instance counts its own), bounded to `clients` addresses."""

    allowed: int
    window: timedelta
    clients: int = 10_000
    failures: dict[str, deque[datetime]] = field(default_factory=dict)

    def blocked(self, client: str, now: datetime) -> bool:
        recent = self._recent(client, now)
        return len(recent) >= self.allowed

    def failed(self, client: str, now: datetime) -> None:
        if client not in self.failures and len(self.failures) >= self.clients:
            del self.failures[next(iter(self.failures))]  # the longest-known address
        self.failures.setdefault(client, deque()).append(now)

    def retry_after(self, client: str, now: datetime) -> int:
        """Seconds until the address may try again."""
        recent = self._recent(client, now)
        return max(1, math.ceil((recent[0] + self.window - now).total_seconds())) if recent else 0

    def _recent(self, client: str, now: datetime) -> deque[datetime]:
        recent = self.failures.get(client, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        return recent
