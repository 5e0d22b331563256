"""Operator commands for reporting: `python -m services.reporting.cli token --scope network`."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

import typer
from pydantic import TypeAdapter

from services.reporting import rebuild as replay
from services.reporting.access import NETWORK
from services.reporting.settings import SERVICE, ReportingSettings
from services.reporting.store import ApiTokens, CellStore
from shared.events import HospitalId
from shared.kafka import client_options
from shared.mongo import create_client

_hospital: TypeAdapter[str] = TypeAdapter(HospitalId)
T = TypeVar("T")

cli = typer.Typer(help="Manage access to the analysts' API.", no_args_is_help=True)


@cli.callback()
def commands() -> None:
    """Issue, list and revoke API tokens; rebuild the aggregates from the topics."""


@cli.command()
def token(
    scope: Annotated[str, typer.Option(help=f"'{NETWORK}' or one hospital id.")],
    label: Annotated[str, typer.Option(help="Who or what the token is for.")] = "",
) -> None:
    """Issue an API token; it is printed once, on the last line, and stored only hashed."""
    if scope != NETWORK:
        try:
            _hospital.validate_python(scope)
        except ValueError as error:
            typer.echo(f"scope must be '{NETWORK}' or a hospital id: {error}", err=True)
            raise typer.Exit(2) from error
    settings = ReportingSettings()
    issued = asyncio.run(_with_tokens(settings, lambda t: t.issue(scope, label, datetime.now(UTC))))
    typer.echo(
        f"API token for {scope}, valid for {settings.api_token_days} days "
        "(send as 'Authorization: Bearer <token>'):"
    )
    typer.echo(issued)


@cli.command()
def tokens() -> None:
    """Every token issued: its id (for `revoke`), scope, label, issue, expiry, revocation."""
    listed = asyncio.run(_with_tokens(ReportingSettings(), lambda t: t.listing()))
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
def revoke(
    token_id: Annotated[str, typer.Argument(help="The id `tokens` lists.")],
) -> None:
    """Revoke a token at once: its API calls and dashboard sessions are refused from now."""
    revoked = asyncio.run(
        _with_tokens(ReportingSettings(), lambda t: t.revoke(token_id, datetime.now(UTC)))
    )
    if not revoked:
        typer.echo(f"no valid token has the id {token_id!r} (see `tokens`)", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {token_id}")


@cli.command()
def rebuild(
    database: Annotated[str, typer.Option(help="An empty database to build the cells in.")],
) -> None:
    """Replay the retained topics into fresh aggregates in DATABASE; point reporting at it
    (or compare) afterwards. The live aggregates are not touched."""
    settings = ReportingSettings()
    rebuilt = asyncio.run(_rebuild(settings, database))
    typer.echo(
        f"{rebuilt.events} events replayed ({rebuilt.counted} counted, {rebuilt.malformed} "
        f"malformed) into {database} in {rebuilt.seconds:.1f} s: "
        f"{rebuilt.events_per_second:,.0f} events/s"
    )


async def _rebuild(settings: ReportingSettings, database: str) -> replay.Rebuilt:
    mongo = create_client(settings)
    try:
        if database == settings.database_name(SERVICE):
            raise typer.BadParameter("that is the live database; rebuild into an empty one")
        if await mongo[database]["cells"].find_one():
            raise typer.BadParameter(f"{database} already holds cells; choose an empty one")
        store = CellStore(
            mongo[database],
            timedelta(days=settings.counted_event_retention_days),
            settings.reporting_dimensions,
        )
        return await replay.rebuild(
            settings.kafka_bootstrap_servers,
            settings.topics.counted(),
            store,
            **client_options(settings),
        )
    finally:
        await mongo.close()


async def _with_tokens(settings: ReportingSettings, work: Callable[[ApiTokens], Awaitable[T]]) -> T:
    mongo = create_client(settings)
    try:
        valid_for = timedelta(days=settings.api_token_days)
        return await work(ApiTokens(mongo[settings.database_name(SERVICE)], valid_for))
    finally:
        await mongo.close()


if __name__ == "__main__":
    cli()
