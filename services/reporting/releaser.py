"""Releasing each hospital's month when it is due, and correcting it when enough has come
since (`releases` decides which and when)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.reporting.releases import Release, next_version
from services.reporting.store import CellStore


@dataclass(frozen=True)
class Releaser:
    store: CellStore
    delay: timedelta
    min_cases: int
    """A correction waits for this many cases: `MIN_CELL_SIZE`."""
    log: Any

    async def release_due(self, now: datetime | None = None) -> list[Release]:
        """Publish every release and correction due at `now`; what was published."""
        now = now or datetime.now(UTC)
        published = []
        for unit in await self.store.release_candidates(self.min_cases):
            version = next_version(unit, now, self.delay, self.min_cases)
            if version is not None and (release := await self.store.publish(unit, version, now)):
                published.append(release)
                self.log.info(
                    f"{release.kind} published",
                    month=release.month,
                    hospital_id=release.hospital_id,
                    cases=release.cases,
                )
        return published
