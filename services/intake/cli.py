"""Commands for intake's staff directory: `python -m services.intake.cli directory check
staff.csv` and `... directory load staff.csv`, for hospitals that provision it by file;
`... token --scope ZH-A` for a hospital's identity system that provisions it by SCIM.

A load replaces each listed hospital's directory: whoever the file no longer lists is kept
as inactive (a leaver), so no confirmation reaches their old address."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import typer

from services.intake.directory import StaffMember, parse_directory
from services.intake.directory_store import StaffDirectory
from services.intake.settings import SERVICE, IntakeSettings
from shared.mongo import create_client
from shared.rows import rows_or_exit
from shared.settings import ServiceSettings
from shared.token_cli import add_token_commands

cli = typer.Typer(help="Manage intake's copy of the hospitals' staff directories.")
directory = typer.Typer(help="The staff directory: who someone is, how to reach them at work.")
cli.add_typer(directory, name="directory")
add_token_commands(cli, SERVICE, IntakeSettings, "provisioning")


@directory.command()
def check(path: Path) -> None:
    """Validate a directory CSV and report every row error by line; loads nothing."""
    members = rows_or_exit(path, parse_directory)
    typer.echo(f"{len(members)} staff, no errors")


@directory.command()
def load(path: Path) -> None:
    """Load a directory CSV into intake; nothing when any row has an error."""
    members = rows_or_exit(path, parse_directory)
    listed, left = asyncio.run(_load(ServiceSettings(), members))
    typer.echo(f"{listed} staff listed, {left} no longer listed and made inactive")


async def _load(settings: ServiceSettings, members: list[StaffMember]) -> tuple[int, int]:
    mongo = create_client(settings)
    try:
        staff = StaffDirectory(mongo[settings.database_name(SERVICE)])
        await staff.ensure_indexes()
        return await staff.load(members, datetime.now(UTC))
    finally:
        await mongo.close()


if __name__ == "__main__":
    cli()
