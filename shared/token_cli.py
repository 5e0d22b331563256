"""The operator's `token`, `tokens` and `revoke` commands, the same for analysts' tokens
(reporting) and coordinators' (matching)."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

import typer
from pydantic import TypeAdapter

from shared.access import NETWORK
from shared.events import HospitalId
from shared.mongo import create_client
from shared.settings import AccessSettings
from shared.tokens import ApiTokens

_hospital: TypeAdapter[str] = TypeAdapter(HospitalId)
T = TypeVar("T")


def add_token_commands(
    cli: typer.Typer, service: str, settings: Callable[[], AccessSettings], holder: str
) -> None:
    """`holder` names who the tokens are for, as the messages say it ("API", "coordinator")."""

    async def with_tokens(work: Callable[[ApiTokens], Awaitable[T]]) -> T:
        chosen = settings()
        mongo = create_client(chosen)
        try:
            valid_for = timedelta(days=chosen.api_token_days)
            return await work(ApiTokens(mongo[chosen.database_name(service)], valid_for))
        finally:
            await mongo.close()

    @cli.command()
    def token(
        scope: Annotated[str, typer.Option(help=f"'{NETWORK}' or one hospital id.")],
        label: Annotated[str, typer.Option(help="Who or what the token is for.")] = "",
    ) -> None:
        """Issue a token; it is printed once, on the last line, and stored only hashed."""
        if scope != NETWORK:
            try:
                _hospital.validate_python(scope)
            except ValueError as error:
                typer.echo(f"scope must be '{NETWORK}' or a hospital id: {error}", err=True)
                raise typer.Exit(2) from error
        issued = asyncio.run(with_tokens(lambda t: t.issue(scope, label, datetime.now(UTC))))
        typer.echo(
            f"{holder} token for {scope}, valid for {settings().api_token_days} days "
            "(send as 'Authorization: Bearer <token>'):"
        )
        typer.echo(issued)

    @cli.command()
    def tokens() -> None:
        """Every token issued: its id (for `revoke`), scope, label, issue, expiry, revocation."""
        listed = asyncio.run(with_tokens(lambda t: t.listing()))
        now = datetime.now(UTC)
        for issued in listed:
            state = (
                f"revoked {issued.revoked_at:%Y-%m-%d}"
                if issued.revoked_at
                else "expired"
                if issued.expires_at <= now
                else f"valid until {issued.expires_at:%Y-%m-%d}"
            )
            typer.echo(
                f"{issued.token_id}  {issued.scope:<12}  issued {issued.issued_at:%Y-%m-%d}  "
                f"{state}  {issued.label}"
            )

    @cli.command()
    def revoke(token_id: Annotated[str, typer.Argument(help="The id `tokens` lists.")]) -> None:
        """Revoke a token at once: its requests and browser sessions are refused from now."""
        revoked = asyncio.run(with_tokens(lambda t: t.revoke(token_id, datetime.now(UTC))))
        if not revoked:
            typer.echo(f"no valid token has the id {token_id!r} (see `tokens`)", err=True)
            raise typer.Exit(1)
        typer.echo(f"revoked {token_id}")
