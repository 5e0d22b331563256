"""Answers from snapshots: protecting every table of a large network takes a while, so it is
done once for many requests, and off the event loop that also consumes the events."""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.reporting.aggregates import FIRST_CONTACT_TARGET_DAYS
from services.reporting.disclosure import Selection, ServedRow, Snapshot, folded, months_of
from services.reporting.store import CellStore

Years = tuple[str | None, str | None]


@dataclass
class Snapshots:
    """One protected snapshot per range of years asked about, at most `max_age` seconds old."""

    store: CellStore
    dimensions: Sequence[str]
    min_cell_size: int
    max_age: float
    target_days: int = FIRST_CONTACT_TARGET_DAYS
    """The first-contact target, in days."""
    taken: dict[Years, tuple[float, Snapshot]] = field(default_factory=dict, init=False)

    async def answer(self, selection: Selection) -> list[ServedRow]:
        """As served: protected, and hidden rows folded."""
        years = (
            selection.first[:4] if selection.first else None,
            selection.last[:4] if selection.last else None,
        )
        taken, snapshot = self.taken.get(years, (0.0, None))
        if snapshot is None or time.monotonic() - taken > self.max_age:
            rows = await self.store.rows(
                months_of(years[0])[0] if years[0] else None,
                months_of(years[1])[1] if years[1] else None,
            )
            snapshot = await asyncio.to_thread(
                Snapshot, rows, self.dimensions, self.min_cell_size, self.target_days
            )
            self.taken[years] = (time.monotonic(), snapshot)
        return folded(snapshot.answer(selection))
