"""Answers from snapshots of what was released: protecting every table of a large network
takes a while, so it is done once for many requests, and off the event loop that also
consumes the events."""

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.reporting.aggregates import FIRST_CONTACT_TARGET_DAYS
from services.reporting.disclosure import (
    ProtectedYear,
    Selection,
    ServedRow,
    Snapshot,
    by_year,
    folded,
    months_of,
)
from services.reporting.releases import Release
from services.reporting.store import CellStore


@dataclass(frozen=True)
class Answer:
    rows: list[ServedRow]
    """As served: protected, and hidden rows folded."""
    releases: list[Release]
    """The release or latest correction of each hospital's month the rows were read from."""


@dataclass(frozen=True)
class _Year:
    releases: tuple[Release, ...]
    """What the year's protection was worked out from."""
    protected: ProtectedYear


@dataclass
class Snapshots:
    """The released cells of each year with their protection, looked at again at most every
    `max_age` seconds: a year is protected again only when a release or correction of one
    of its months came since, so ten years of history cost what the current one does."""

    store: CellStore
    dimensions: Sequence[str]
    min_cell_size: int
    max_age: float
    target_days: int = FIRST_CONTACT_TARGET_DAYS
    """The first-contact target, in days."""
    years: dict[str, _Year] = field(default_factory=dict, init=False)
    releases: list[Release] = field(default_factory=list, init=False)
    checked_at: float = field(default=-math.inf, init=False)
    _checking: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    async def answer(self, selection: Selection) -> Answer:
        async with self._checking:
            if time.monotonic() - self.checked_at > self.max_age:
                await self._look_again()
        first = months_of(selection.first)[0] if selection.first else ""
        last = months_of(selection.last)[1] if selection.last else "9999-12"
        years = {
            year: known.protected
            for year, known in self.years.items()
            if first[:4] <= year <= last[:4]
        }
        snapshot = Snapshot(years, self.dimensions, self.target_days)
        return Answer(
            folded(snapshot.answer(selection)),
            [
                release
                for release in self.releases
                if first <= release.month <= last
                and selection.hospital_id in (None, release.hospital_id)
            ],
        )

    async def _look_again(self) -> None:
        releases = await self.store.latest_releases()
        released = {year: tuple(of_year) for year, of_year in by_year(releases).items()}
        for year, of_year in released.items():
            if year not in self.years or self.years[year].releases != of_year:
                rows = await self.store.released_rows(f"{year}-01", f"{year}-12")
                protected = await asyncio.to_thread(
                    ProtectedYear.of, rows, self.dimensions, self.min_cell_size
                )
                self.years[year] = _Year(of_year, protected)
        for gone in self.years.keys() - released.keys():
            del self.years[gone]
        self.releases, self.checked_at = releases, time.monotonic()
