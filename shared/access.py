"""Who may read what: bearer tokens and their scopes. Pure, no I/O.

A token is a random secret shown once, when it is issued; the service keeps only its SHA-256
(the secret has 256 bits, so a fast hash is enough). Its scope is the whole network or one
hospital: a hospital's token reads that hospital's data only (an analyst's cells, a
coordinator's cases).
"""

import hashlib
import secrets
from dataclasses import dataclass

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
