"""Coordinator commands for the roster: `python -m services.matching.cli load roster.csv`."""

import asyncio
from pathlib import Path

import typer
from pydantic import ValidationError

from services.matching.app import SERVICE, MatchingSettings
from services.matching.roster import RosterEntry, parse_roster
from services.matching.store import Roster
from shared.mongo import create_client
from shared.settings import PseudonymSettings

cli = typer.Typer(help="Manage the roster of trained peer supporters.", no_args_is_help=True)


def _parse_or_exit(path: Path) -> list[RosterEntry]:
    entries, errors = parse_roster(path.read_text(encoding="utf-8-sig"))
    for error in errors:
        typer.echo(f"{path}:{error.line}: {error.reason}", err=True)
    if errors:
        typer.echo(f"{len(errors)} row error(s): nothing loaded", err=True)
        raise typer.Exit(1)
    return entries


@cli.command()
def check(path: Path) -> None:
    """Validate a roster CSV and report every row error by line; loads nothing."""
    typer.echo(f"{len(_parse_or_exit(path))} supporters, no errors")


@cli.command()
def load(path: Path) -> None:
    """Load a roster CSV into matching; nothing is loaded when any row has an error."""
    entries = _parse_or_exit(path)
    try:
        key = PseudonymSettings().pseudonym_key.get_secret_value().encode()
    except ValidationError as error:
        typer.echo("set PSEUDONYM_KEY to the key intake uses (16 characters or more)", err=True)
        raise typer.Exit(2) from error
    changed = asyncio.run(_load(MatchingSettings(), entries, key))
    typer.echo(f"{len(entries)} supporters in the roster ({changed} added or changed)")


async def _load(settings: MatchingSettings, entries: list[RosterEntry], key: bytes) -> int:
    mongo = create_client(settings)
    try:
        roster = Roster(mongo[settings.database_name(SERVICE)])
        await roster.ensure_indexes()
        return await roster.load(entries, key)
    finally:
        await mongo.close()


if __name__ == "__main__":
    cli()
