"""Operator commands for reporting: `python -m services.reporting.cli token --scope network`."""

import asyncio
from datetime import timedelta
from typing import Annotated, TypeVar

import typer
from pydantic import TypeAdapter

from services.reporting import rebuild as replay
from services.reporting.settings import SERVICE, ReportingSettings
from services.reporting.store import CellStore
from shared.events import HospitalId
from shared.kafka import client_options
from shared.mongo import create_client
from shared.token_cli import add_token_commands

_hospital: TypeAdapter[str] = TypeAdapter(HospitalId)
T = TypeVar("T")

cli = typer.Typer(help="Manage access to the analysts' API.", no_args_is_help=True)


@cli.callback()
def commands() -> None:
    """Issue, list and revoke API tokens; rebuild the aggregates from the topics."""


add_token_commands(cli, SERVICE, ReportingSettings, "API")


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


if __name__ == "__main__":
    cli()
