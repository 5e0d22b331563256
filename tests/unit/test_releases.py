"""A hospital's month reaches analysts once, after it closed, and then only by corrections of
at least k cases."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from prometheus_client import CollectorRegistry

from services.reporting.dashboard import released
from services.reporting.releaser import Releaser
from services.reporting.releases import Release, ReleaseUnit, next_version, release_due

WEEK = timedelta(days=7)
K = 5
COUNTED = datetime(2026, 11, 20, 9, tzinfo=UTC)


def unit(version: int | None = None, waiting: int = 0, counted: datetime = COUNTED) -> ReleaseUnit:
    return ReleaseUnit("2026-11", "ZH-A", counted, version, waiting)


def test_a_month_is_released_a_week_after_it_closed_not_before() -> None:
    assert release_due(unit(), WEEK) == datetime(2026, 12, 8, tzinfo=UTC)
    assert next_version(unit(waiting=40), datetime(2026, 12, 7, 23, tzinfo=UTC), WEEK, K) is None
    assert next_version(unit(waiting=1), datetime(2026, 12, 8, tzinfo=UTC), WEEK, K) == 0


def test_a_month_counted_long_after_it_closed_waits_a_week_from_its_first_event() -> None:
    """A hospital joining with its history is not released a few events at a time."""
    joined = datetime(2027, 3, 2, 14, tzinfo=UTC)
    assert release_due(unit(counted=joined), WEEK) == joined + WEEK
    assert next_version(unit(counted=joined), joined + timedelta(days=6), WEEK, K) is None


def test_a_released_month_is_corrected_only_by_k_cases_at_a_time() -> None:
    much_later = datetime(2027, 6, 1, tzinfo=UTC)
    assert next_version(unit(version=0, waiting=K - 1), much_later, WEEK, K) is None
    assert next_version(unit(version=0, waiting=K), much_later, WEEK, K) == 1
    assert next_version(unit(version=3, waiting=12), much_later, WEEK, K) == 4


def test_the_dashboard_says_which_release_it_shows() -> None:
    at = datetime(2026, 12, 8, 0, 1, tzinfo=UTC)
    shown = [
        Release("2026-10", "ZH-A", 2, at + timedelta(days=20), 6),
        Release("2026-11", "ZH-A", 0, at, 31),
    ]
    line = released(shown)
    assert "2026-10 to 2026-11" in line
    assert "1 of 2 hospital-months corrected" in line
    assert "latest correction 2 2026-12-28 00:01 UTC (2026-10, ZH-A)" in line
    assert "nothing released yet" in released([])


@dataclass
class FakeReleaseStore:
    """The releases part of reporting's store: its units, and whether publishing works."""

    units: list[ReleaseUnit]
    publishes: bool = True

    async def release_candidates(self, min_cases: int) -> list[ReleaseUnit]:
        return self.units

    async def publish(self, unit: ReleaseUnit, version: int, now: datetime) -> Release | None:
        return Release(unit.month, unit.hospital_id, version, now, 1) if self.publishes else None


async def test_operators_see_how_long_a_release_due_has_waited() -> None:
    registry = CollectorRegistry()
    store = FakeReleaseStore([unit(), unit(version=0, waiting=K - 1)], publishes=False)
    releaser = Releaser(store, WEEK, K, structlog.get_logger(), registry)  # type: ignore[arg-type]
    two_hours_late = datetime(2026, 12, 8, 2, tzinfo=UTC)
    assert await releaser.release_due(two_hours_late) == []
    assert registry.get_sample_value("peer_support_release_overdue_seconds") == 7200
    store.publishes = True
    (published,) = await releaser.release_due(two_hours_late)
    assert (published.month, published.version) == ("2026-11", 0)
    assert await releaser.release_due(datetime(2026, 12, 7, tzinfo=UTC)) == []
    assert registry.get_sample_value("peer_support_release_overdue_seconds") == 0
