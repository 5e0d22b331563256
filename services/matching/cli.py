"""Commands for the roster and the desk: `python -m services.matching.cli load roster.csv`,
`... token --scope UMC-A` for a coordinator's token.

`load` publishes the differences between the file and matching's roster as roster events,
which every matching instance applies; it never writes matching's data itself.
"""

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from services.matching.roster import (
    RosterEntry,
    key_refusal,
    parse_roster,
    publications,
    roster_changes,
)
from services.matching.settings import SERVICE, MatchingSettings
from services.matching.store import Roster
from shared.events import SupporterProfile
from shared.kafka import broker_security
from shared.mongo import create_client
from shared.pseudonyms import PseudonymKeys
from shared.rows import rows_or_exit
from shared.settings import PseudonymSettings
from shared.token_cli import add_token_commands

cli = typer.Typer(
    help="Manage the roster of trained peer supporters and the coordinators' tokens.",
    no_args_is_help=True,
)
add_token_commands(cli, SERVICE, MatchingSettings, "coordinator")


def _parse_or_exit(path: Path) -> list[RosterEntry]:
    return rows_or_exit(path, parse_roster)


@cli.command()
def check(path: Path) -> None:
    """Validate a roster CSV and report every row error by line; loads nothing."""
    typer.echo(f"{len(_parse_or_exit(path))} supporters, no errors")


@cli.command()
def load(
    path: Path,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait until matching has applied every change.")
    ] = 0.0,
    again: Annotated[
        bool,
        typer.Option(
            help="Announce every active supporter in the file, changed or not: for a notify "
            "whose copy of the roster was lost."
        ),
    ] = False,
) -> None:
    """Publish a roster CSV's changes to matching and notify; nothing when any row has an
    error. After a pseudonym key rotation (the new `PSEUDONYM_KEY`, the old one in
    `PSEUDONYM_KEYS_RETIRED`), this re-keys the roster: every supporter is announced again
    with their pseudonym under each key."""
    entries = _parse_or_exit(path)
    try:
        key = PseudonymSettings().pseudonym_keys()
    except ValidationError as error:
        typer.echo(f"set PSEUDONYM_KEY to the key intake uses: {error}", err=True)
        raise typer.Exit(2) from error
    settings = MatchingSettings()
    if refusal := asyncio.run(_key_refusal(settings, key)):
        typer.echo(refusal, err=True)
        raise typer.Exit(2)
    published = asyncio.run(_load(settings, entries, key, again))
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(published.items())) or "no changes"
    typer.echo(f"{len(entries)} supporters in the file: {summary}")
    if wait and not asyncio.run(_applied(settings, entries, key, wait)):
        typer.echo(f"matching had not applied every change within {wait:.0f}s", err=True)
        raise typer.Exit(1)


async def _key_refusal(settings: MatchingSettings, keys: PseudonymKeys) -> str | None:
    """`key_refusal` against the key the roster was loaded with; when none refuses, the
    roster is from now on today's key's (a first load, or a rotation)."""
    mongo = create_client(settings)
    try:
        roster = Roster(mongo[settings.database_name(SERVICE)])
        if refusal := key_refusal(await roster.key_fingerprint(), keys):
            return refusal
        await roster.remember_key(keys.key_id)
        return None
    finally:
        await mongo.close()


async def _current(settings: MatchingSettings) -> dict[str, tuple[SupporterProfile, bool]]:
    mongo = create_client(settings)
    try:
        return await Roster(mongo[settings.database_name(SERVICE)]).profiles()
    finally:
        await mongo.close()


async def _applied(
    settings: MatchingSettings, entries: list[RosterEntry], key: PseudonymKeys, within: float
) -> bool:
    deadline = time.monotonic() + within
    while roster_changes(entries, await _current(settings), key, datetime.now(UTC)):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.5)
    return True


async def _load(
    settings: MatchingSettings, entries: list[RosterEntry], key: PseudonymKeys, again: bool
) -> Counter[str]:
    current = {} if again else await _current(settings)
    changes = roster_changes(entries, current, key, datetime.now(UTC))
    security = broker_security(settings)
    async with KafkaBroker(
        settings.kafka_bootstrap_servers, acks="all", security=security
    ) as broker:
        for topic, event in publications(changes, settings.topics):
            await broker.publish(
                event.model_dump(mode="json"),
                topic=topic,
                key=event.correlation_id.encode(),
                headers={"event_type": event.event_type},
            )
    return Counter(change.event_type.removeprefix("supporter.") for change in changes)


if __name__ == "__main__":
    cli()
