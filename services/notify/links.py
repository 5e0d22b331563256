"""Signed, expiring links in messages: a supporter answers with a click, nobody else can.

A link carries its assignment, signed with `LINK_SECRET` and stamped with the time it was
made; it stops working after `LINK_MAX_AGE_SECONDS`, and an offer can be answered once (the
assignment itself remembers the answer). Nothing else is in it: no name, no case details.
"""

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class LinkProblem(StrEnum):
    FORGED = "forged"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Link:
    assignment_id: uuid.UUID


class Links:
    def __init__(self, secret: str, public_url: str, max_age_seconds: int) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt="peer-support/respond")
        self.public_url = public_url.rstrip("/")
        self.max_age_seconds = max_age_seconds

    def respond_url(self, assignment_id: uuid.UUID) -> str:
        token = self.serializer.dumps({"a": str(assignment_id)})
        return f"{self.public_url}/respond?{urlencode({'t': token})}"

    def read(self, token: str) -> Link | LinkProblem:
        try:
            payload: Any = self.serializer.loads(token, max_age=self.max_age_seconds)
        except SignatureExpired:
            return LinkProblem.EXPIRED
        except BadSignature:
            return LinkProblem.FORGED
        try:
            return Link(uuid.UUID(payload["a"]))
        except (KeyError, TypeError, ValueError):
            return LinkProblem.FORGED
