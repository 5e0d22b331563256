"""Releasing each hospital's month when it is due, and correcting it when enough has come
since (`releases` decides which and when)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from services.reporting.releases import Release, next_version, release_due
from services.reporting.store import CellStore
from shared.metrics import NAMESPACE


class Releaser:
    def __init__(
        self,
        store: CellStore,
        delay: timedelta,
        min_cases: int,
        log: Any,
        registry: CollectorRegistry,
    ) -> None:
        self.store = store
        self.delay = delay
        self.min_cases = min_cases
        """A correction waits for this many cases: `MIN_CELL_SIZE`."""
        self.log = log
        self.overdue = Gauge(
            "release_overdue_seconds",
            "How long the oldest hospital's month due for release had waited, at the last scan",
            registry=registry,
            namespace=NAMESPACE,
        )

    async def release_due(self, now: datetime | None = None) -> list[Release]:
        """Publish every release and correction due at `now`; what was published."""
        now = now or datetime.now(UTC)
        candidates = await self.store.release_candidates(self.min_cases)
        due = [release_due(u, self.delay) for u in candidates if u.version is None]
        self.overdue.set(max([(now - at).total_seconds() for at in due if at <= now], default=0))
        published = []
        for unit in candidates:
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
