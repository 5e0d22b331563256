"""`/scim/v2`: hospitals' identity systems provision the staff directory. A provisioning
token is for one hospital and reaches that hospital's users only; it is refused, counted and
throttled at the same door as every other token (`shared.gate`)."""

import json
from datetime import timedelta
from typing import Any, cast

from fastapi import HTTPException, Request
from fastapi.security.utils import get_authorization_scheme_param
from scim2_models import Error, ScimProvider
from scim2_server.applications.asgi import ASGIApplication
from starlette.types import Receive, Scope, Send

from services.intake.directory_store import StaffDirectory
from services.intake.scim import provider
from services.intake.scim_store import ProvisionedUsers
from shared.access import NETWORK
from shared.gate import Refusals, refusals_of
from shared.service import Wiring
from shared.settings import AccessSettings
from shared.tokens import ApiTokens

SERVICE_PROVIDER_CONFIG = "/ServiceProviderConfig"


class ProvisioningEndpoint:
    """Authenticates, then serves the request with the token's hospital's SCIM application."""

    def __init__(
        self,
        users: ProvisionedUsers,
        tokens: ApiTokens,
        refusals: Refusals,
        provider: ScimProvider,
    ) -> None:
        self.users = users
        self.tokens = tokens
        self.refusals = refusals
        self.provider = provider
        self.public = ASGIApplication(users.of(NETWORK), provider)
        self.hospitals: dict[str, ASGIApplication] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"].endswith(SERVICE_PROVIDER_CONFIG):
            await _serve(self.public, scope, receive, send)
            return
        try:
            hospital = await self._hospital(Request(scope))
        except HTTPException as refused:
            await _error(send, refused)
            return
        await _serve(self._application(hospital), scope, receive, send)

    async def _hospital(self, request: Request) -> str:
        scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
        presented = token if scheme.lower() == "bearer" and token else None
        grant = await self.refusals.grant_of(request, self.tokens, presented)
        if grant.scope == NETWORK:
            raise self.refusals.refuse(
                request.url.path, 403, "a provisioning token is for one hospital, not the network"
            )
        return grant.scope

    async def ensure_indexes(self) -> None:
        await self.users.ensure_indexes()
        await self.refusals.ensure_indexes()

    def _application(self, hospital: str) -> ASGIApplication:
        if hospital not in self.hospitals:
            self.hospitals[hospital] = ASGIApplication(self.users.of(hospital), self.provider)
        return self.hospitals[hospital]


def provisioning_endpoint(
    wiring: Wiring, settings: AccessSettings, directory: StaffDirectory
) -> ProvisioningEndpoint:
    """Provisioning tokens, and the guesses of them, are kept in intake's own database."""
    return ProvisioningEndpoint(
        ProvisionedUsers(wiring.database, directory),
        ApiTokens(wiring.database, timedelta(days=settings.api_token_days)),
        refusals_of(wiring.database, wiring.registry, wiring.log, settings),
        provider(),
    )


async def _serve(application: ASGIApplication, scope: Scope, receive: Receive, send: Send) -> None:
    """scim2-server types ASGI's messages as dicts, Starlette as mappings: the same objects."""
    await application(cast(Any, scope), cast(Any, receive), cast(Any, send))


async def _error(send: Send, refused: HTTPException) -> None:
    """A refusal in SCIM's own error format (RFC 7644 §3.12)."""
    body = Error(status=refused.status_code, detail=str(refused.detail)).model_dump(mode="json")
    headers = [(b"content-type", b"application/scim+json")]
    headers += [(k.lower().encode(), v.encode()) for k, v in (refused.headers or {}).items()]
    await send({"type": "http.response.start", "status": refused.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
