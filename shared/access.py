"""Who may read what: bearer tokens and their scopes. Pure, no I/O.

A token is a random secret shown once, when it is issued; the service keeps only its SHA-256
(the secret has 256 bits, so a fast hash is enough). Its scope is the whole network or one
hospital: a hospital's token reads that hospital's data only (an analyst's cells, a
coordinator's cases).
"""

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from shared.events import HospitalId

NETWORK = "network"
_HOSPITAL: TypeAdapter[str] = TypeAdapter(HospitalId)


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


def grant_from_claims(claims: Mapping[str, Any], scope_claim: str) -> Grant | None:
    """What someone signed in at the hospital's identity provider may see, as its ID token
    says in `scope_claim`: the network or one hospital. None when it says neither."""
    scope = claims.get(scope_claim)
    if isinstance(scope, list) and len(scope) == 1:
        scope = scope[0]
    if not isinstance(scope, str):
        return None
    if scope != NETWORK:
        try:
            _HOSPITAL.validate_python(scope)
        except ValidationError:
            return None
    who = claims.get("name") or claims.get("email") or claims.get("sub") or "unnamed"
    return Grant(scope, f"{who} (hospital sign-in)")
