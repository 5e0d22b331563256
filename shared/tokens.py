"""Bearer tokens and browser sessions in a service's own database: analysts' tokens in
reporting's, coordinators' in matching's. Only hashes are stored."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from shared.access import Grant, new_token, token_hash
from shared.mongo import Document

TOKEN_ID_LENGTH = 12


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    scope: str
    label: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class ApiTokens:
    """Hashes of issued tokens, their scopes and expiry; the tokens themselves are never
    stored. A token is named by the first characters of its hash in listings."""

    def __init__(
        self, database: AsyncDatabase[Document], valid_for: timedelta = timedelta(days=90)
    ) -> None:
        self.collection = database["api_tokens"]
        self.valid_for = valid_for

    async def issue(self, scope: str, label: str, at: datetime) -> str:
        token = new_token()
        await self.collection.insert_one(
            {
                "_id": token_hash(token),
                "scope": scope,
                "label": label,
                "issued_at": at,
                "expires_at": at + self.valid_for,
                "revoked_at": None,
            }
        )
        return token

    async def grant_for(self, token: str, now: datetime | None = None) -> Grant | None:
        return await self.grant_for_hash(token_hash(token), now)

    async def grant_for_hash(self, hashed: str, now: datetime | None = None) -> Grant | None:
        """The token's scope while it is neither expired nor revoked."""
        doc = await self.collection.find_one({"_id": hashed})
        if doc is None or doc.get("revoked_at") or _expiry(doc, self.valid_for) <= _now(now):
            return None
        holder = f"{doc.get('label') or 'unlabelled'} ({hashed[:TOKEN_ID_LENGTH]})"
        return Grant(doc["scope"], holder)

    async def listing(self) -> list[IssuedToken]:
        return [
            IssuedToken(
                token_id=doc["_id"][:TOKEN_ID_LENGTH],
                scope=doc["scope"],
                label=doc["label"],
                issued_at=doc["issued_at"],
                expires_at=_expiry(doc, self.valid_for),
                revoked_at=doc.get("revoked_at"),
            )
            async for doc in self.collection.find().sort("issued_at", 1)
        ]

    async def revoke(self, token_id: str, at: datetime) -> int:
        """Revoke the tokens whose id (from `listing`) is `token_id`; returns how many."""
        if len(token_id) < TOKEN_ID_LENGTH:
            return 0
        result = await self.collection.update_many(
            {"_id": {"$regex": f"^{re.escape(token_id)}"}, "revoked_at": None},
            {"$set": {"revoked_at": at}},
        )
        return result.modified_count


class Sessions:
    """Browser sessions: the cookie holds a random session id (stored hashed), never a token;
    a session ends when it expires or the token it was opened with does."""

    def __init__(self, database: AsyncDatabase[Document], tokens: ApiTokens) -> None:
        self.collection = database["sessions"]
        self.tokens = tokens

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("expires_at", expireAfterSeconds=0)

    async def open(self, token: str, at: datetime, lasting: timedelta) -> str:
        session = new_token()
        await self.collection.insert_one(
            {"_id": token_hash(session), "token": token_hash(token), "expires_at": at + lasting}
        )
        return session

    async def open_for(self, grant: Grant, at: datetime, lasting: timedelta) -> str:
        """A session of someone the hospital's identity provider vouched for: it ends when it
        expires, and their next sign-in is the provider's to allow."""
        session = new_token()
        await self.collection.insert_one(
            {
                "_id": token_hash(session),
                "scope": grant.scope,
                "holder": grant.holder,
                "expires_at": at + lasting,
            }
        )
        return session

    async def grant_for(self, session: str, now: datetime | None = None) -> Grant | None:
        doc = await self.collection.find_one({"_id": token_hash(session)})
        if doc is None or _aware(doc["expires_at"]) <= _now(now):
            return None
        if "token" not in doc:
            return Grant(doc["scope"], doc["holder"])
        return await self.tokens.grant_for_hash(doc["token"], now)

    async def close(self, session: str) -> None:
        await self.collection.delete_one({"_id": token_hash(session)})


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _aware(at: datetime) -> datetime:
    """The store may hand back naive UTC times."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _expiry(doc: Document, valid_for: timedelta) -> datetime:
    """Tokens issued before expiry was kept expire `valid_for` after their issue."""
    return _aware(doc.get("expires_at") or doc["issued_at"] + valid_for)
