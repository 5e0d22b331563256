"""Answers from snapshots of what was released: protecting every table of a large network
takes a while, so it is done once for many requests, and off the event loop that also
consumes the events."""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.reporting.aggregates import FIRST_CONTACT_TARGET_DAYS
from services.reporting.disclosure import Selection, ServedRow, Snapshot, folded, months_of
from services.reporting.releases import Release
from services.reporting.store import CellStore

Years = tuple[str | None, str | None]


@dataclass(frozen=True)
class Answer:
    rows: list[ServedRow]
    """As served: protected, and hidden rows folded."""
    releases: list[Release]
    """The release or latest correction of each hospital's month the rows were read from."""


@dataclass(frozen=True)
class _Taken:
    at: float
    snapshot: Snapshot
    releases: list[Release]


@dataclass
class Snapshots:
    """One protected snapshot per range of years asked about, at most `max_age` seconds old."""

    store: CellStore
    dimensions: Sequence[str]
    min_cell_size: int
    max_age: float
    target_days: int = FIRST_CONTACT_TARGET_DAYS
    """The first-contact target, in days."""
    taken: dict[Years, _Taken] = field(default_factory=dict, init=False)

    async def answer(self, selection: Selection) -> Answer:
        years = (
            selection.first[:4] if selection.first else None,
            selection.last[:4] if selection.last else None,
        )
        taken = self.taken.get(years)
        if taken is None or time.monotonic() - taken.at > self.max_age:
            months = (
                months_of(years[0])[0] if years[0] else None,
                months_of(years[1])[1] if years[1] else None,
            )
            releases = await self.store.latest_releases(*months)
            rows = await self.store.released_rows(*months)
            snapshot = await asyncio.to_thread(
                Snapshot, rows, self.dimensions, self.min_cell_size, self.target_days
            )
            taken = self.taken[years] = _Taken(time.monotonic(), snapshot, releases)
        first = months_of(selection.first)[0] if selection.first else ""
        last = months_of(selection.last)[1] if selection.last else "9999-12"
        return Answer(
            folded(taken.snapshot.answer(selection)),
            [
                release
                for release in taken.releases
                if first <= release.month <= last
                and selection.hospital_id in (None, release.hospital_id)
            ],
        )
