"""Operator commands for reporting: `python -m services.reporting.cli token --scope network`."""

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import TypeAdapter

from services.reporting.access import NETWORK
from services.reporting.app import SERVICE, ReportingSettings
from services.reporting.store import ApiTokens
from shared.events import HospitalId
from shared.mongo import create_client

_hospital: TypeAdapter[str] = TypeAdapter(HospitalId)

cli = typer.Typer(help="Manage access to the analysts' API.", no_args_is_help=True)


@cli.callback()
def commands() -> None:
    """Keeps `token` a named command, as more commands will join it."""


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
    issued = asyncio.run(_issue(ReportingSettings(), scope, label))
    typer.echo(f"API token for {scope} (send as 'Authorization: Bearer <token>'):")
    typer.echo(issued)


async def _issue(settings: ReportingSettings, scope: str, label: str) -> str:
    mongo = create_client(settings)
    try:
        tokens = ApiTokens(mongo[settings.database_name(SERVICE)])
        return await tokens.issue(scope, label, datetime.now(UTC))
    finally:
        await mongo.close()


if __name__ == "__main__":
    cli()
