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


class Purpose(StrEnum):
    """What a link is for; a link made for one purpose is forged for any other."""

    RESPOND = "respond"
    LOG_CONTACT = "log-contact"
    END_SUPPORT = "end-support"
    CONCERN = "concern"
    """A concern for the colleague's safety, raised by the supporter who holds the case."""


@dataclass(frozen=True)
class Link:
    assignment_id: uuid.UUID
    nonce: str = ""
    """Tells apart the links of one assignment, for those that may be used once only."""


class Links:
    def __init__(self, secret: str, public_url: str, max_age_seconds: int) -> None:
        self.serializers = {
            purpose: URLSafeTimedSerializer(secret, salt=f"peer-support/{purpose}")
            for purpose in Purpose
        }
        self.public_url = public_url.rstrip("/")
        self.max_age_seconds = max_age_seconds

    def url(self, purpose: Purpose, assignment_id: uuid.UUID, nonce: str = "") -> str:
        token = self.serializers[purpose].dumps({"a": str(assignment_id), "n": nonce})
        return f"{self.public_url}/{purpose}?{urlencode({'t': token})}"

    def respond_url(self, assignment_id: uuid.UUID) -> str:
        return self.url(Purpose.RESPOND, assignment_id)

    def read(self, token: str, purpose: Purpose = Purpose.RESPOND) -> Link | LinkProblem:
        try:
            payload: Any = self.serializers[purpose].loads(token, max_age=self.max_age_seconds)
        except SignatureExpired:
            return LinkProblem.EXPIRED
        except BadSignature:
            return LinkProblem.FORGED
        try:
            return Link(uuid.UUID(payload["a"]), str(payload.get("n", "")))
        except (KeyError, TypeError, ValueError, AttributeError):
            return LinkProblem.FORGED
