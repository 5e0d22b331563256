"""Protecting a network's years of history is slow, so reporting protects a year again only
when a release or correction of one of its months came since."""

from collections import Counter
from datetime import UTC, datetime

from services.reporting.aggregates import DIMENSIONS, Row
from services.reporting.disclosure import PERIOD, Selection, ServedRow
from services.reporting.releases import Release
from services.reporting.snapshots import Snapshots
from services.reporting.store import CellStore

RELEASED = datetime(2026, 11, 20, 9, tzinfo=UTC)


class ReleasedCells(CellStore):
    """The released cells and releases, counting which years' cells were read."""

    def __init__(self) -> None:
        self.cells_released: list[Row] = []
        self.released: dict[tuple[str, str], Release] = {}
        self.read: Counter[str] = Counter()

    def release(self, month: str, hospital: str, cases: int, version: int = 0) -> None:
        cell = {"hospital_id": hospital, "function": "nurse", "department": "ICU"}
        self.cells_released = [
            r
            for r in self.cells_released
            if (r.month, r.dimensions["hospital_id"]) != (month, hospital)
        ]
        self.cells_released.append(Row(month, {**cell, "harm": "mild"}, {"cases_opened": cases}))
        self.released[(month, hospital)] = Release(month, hospital, version, RELEASED, cases)

    async def latest_releases(
        self, first_month: str | None = None, last_month: str | None = None
    ) -> list[Release]:
        return sorted(self.released.values(), key=lambda r: (r.month, r.hospital_id))

    async def released_rows(
        self, first_month: str | None = None, last_month: str | None = None
    ) -> list[Row]:
        assert first_month
        assert last_month
        assert first_month[:4] == last_month[:4], "a year at a time"
        self.read[first_month[:4]] += 1
        return [r for r in self.cells_released if first_month <= r.month <= last_month]


def cases(answer_rows: list[ServedRow]) -> dict[str, int | None]:
    return {row.dimensions[PERIOD]: row.counts["cases_opened"] for row in answer_rows}


async def test_a_correction_has_only_its_own_year_protected_again() -> None:
    store = ReleasedCells()
    for month in ("2025-03", "2026-03"):
        for hospital in ("H1", "H2"):
            store.release(month, hospital, 20)
    snapshots = Snapshots(store, DIMENSIONS, min_cell_size=5, max_age=0)
    by_year = Selection("year", (PERIOD,))
    assert cases((await snapshots.answer(by_year)).rows) == {"2025": 40, "2026": 40}
    assert store.read == {"2025": 1, "2026": 1}

    store.release("2026-03", "H1", 27, version=1)
    assert cases((await snapshots.answer(by_year)).rows) == {"2025": 40, "2026": 47}
    assert store.read == {"2025": 1, "2026": 2}, "2025 had no release since"

    await snapshots.answer(Selection("month", (PERIOD,), first="2026-01"))
    assert store.read == {"2025": 1, "2026": 2}, "nothing was released since"
