"""Which messages an assignment gets, and when: pure, no I/O.

Professionals rarely ask for help, so outreach does not stop at the first message: an offer
not answered half-way to its deadline gets a reminder, and after acceptance the supporter is
prompted to check in with the colleague again on a cadence (day 1, 3, 7 and 30 by default).
Each step is sent at most once, and only while it still makes sense: no reminder once the
offer is answered or cancelled, no follow-up unless it was accepted.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

OFFER = "offer"
REMINDER = "reminder"
FOLLOW_UP = "follow_up"


def follow_up(after: timedelta) -> str:
    """`follow_up_day_3`; a cadence shorter than whole days is named in seconds."""
    if after.seconds == after.microseconds == 0:
        return f"{FOLLOW_UP}_day_{after.days}"
    return f"{FOLLOW_UP}_day_{after.total_seconds():g}s"


def kind_of(step: str) -> str:
    return FOLLOW_UP if step.startswith(FOLLOW_UP) else step


@dataclass(frozen=True)
class Scheduled:
    step: str
    due_at: datetime


def reminder_due(offered_at: datetime, respond_by: datetime) -> datetime:
    """Half-way to the deadline matching set: time to answer before the case moves on."""
    return offered_at + (respond_by - offered_at) / 2


def offer_steps(offered_at: datetime, respond_by: datetime) -> list[Scheduled]:
    return [
        Scheduled(OFFER, offered_at),
        Scheduled(REMINDER, reminder_due(offered_at, respond_by)),
    ]


def follow_up_steps(accepted_at: datetime, cadence: Iterable[timedelta]) -> list[Scheduled]:
    return [Scheduled(follow_up(after), accepted_at + after) for after in cadence]


def still_due(step: str, *, cancelled: bool, answer: str | None) -> bool:
    """Whether a step still makes sense when its time comes."""
    if cancelled:
        return False
    kind = kind_of(step)
    if kind == REMINDER:
        return answer is None
    if kind == FOLLOW_UP:
        return answer == "accepted"
    return True


def needs_colleague_contact(step: str) -> bool:
    """The offer and the follow-ups say how to reach the colleague; a reminder need not."""
    return kind_of(step) != REMINDER
