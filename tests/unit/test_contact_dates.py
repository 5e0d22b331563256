"""A contact is dated between the day the supporter accepted and today, in the hospital's
calendar: not in the future, not before support began."""

from datetime import UTC, date, datetime

import pytest

from services.notify.messages import contact_date_refusal

AMSTERDAM = "Europe/Amsterdam"
ACCEPTED = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)
"""23:30 in Amsterdam: still the 1st there."""
NOW = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)
"""00:30 on the 7th in Amsterdam."""


@pytest.mark.parametrize(
    ("contact_date", "refusal"),
    [
        (date(2026, 12, 1), None),
        (date(2026, 12, 7), None),
        (date(2026, 12, 8), "future"),
        (date(2026, 11, 30), "before_acceptance"),
        (date(2027, 1, 15), "future"),
    ],
)
def test_a_contact_is_dated_within_the_support(contact_date: date, refusal: str | None) -> None:
    assert contact_date_refusal(contact_date, ACCEPTED, NOW, AMSTERDAM) == refusal


def test_the_hospitals_calendar_decides_not_utcs() -> None:
    assert contact_date_refusal(date(2026, 12, 7), ACCEPTED, NOW, "UTC") == "future"
