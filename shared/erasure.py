"""What an erased case keeps of its erasure, in every service alike."""

from datetime import UTC, datetime


def erased_on(moment: datetime) -> datetime:
    """The day alone (midnight UTC): when a case was erased says nothing of when its support
    ended, nor of when anything in it happened."""
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
