"""Which messages an assignment gets, and when: pure, no I/O.

Professionals rarely ask for help, so outreach does not stop at the first message: an offer
not answered half-way to its deadline gets a reminder, and after acceptance the supporter is
prompted to check in with the colleague again on a cadence (day 1, 3, 7 and 30 by default).
Each step is sent at most once, and only while it still makes sense: no reminder once the
offer is answered or cancelled, no follow-up unless it was accepted.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

OFFER = "offer"
REMINDER = "reminder"
FOLLOW_UP = "follow_up"
CLOSING = "closing"
"""After the last follow-up: has support ended, or is it going on?"""
LAPSE = "lapse"
"""Not a message: when due, support that nobody continued ends by itself as `lapsed`."""
HANDED_OVER = "handed_over"
"""To a supporter whose accepted support a coordinator handed to another: thanks, and that
they need do nothing more."""
IN_SUPPORT = (FOLLOW_UP, CLOSING, LAPSE)
"""The steps of support under way: due only while the offer is accepted and not ended."""


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


def support_steps(
    accepted_at: datetime, cadence: Sequence[timedelta], ends_after: timedelta
) -> list[Scheduled]:
    """The follow-ups; half-way from the last one to the lapse, the closing prompt; then,
    unless a contact is logged or the supporter says support goes on, the lapse."""
    last = accepted_at + max(cadence, default=timedelta(0))
    return [
        *follow_up_steps(accepted_at, cadence),
        Scheduled(CLOSING, last + ends_after / 2),
        Scheduled(LAPSE, last + ends_after),
    ]


def still_due(step: str, *, cancelled: bool, answer: str | None, ended: bool = False) -> bool:
    """Whether a step still makes sense when its time comes."""
    kind = kind_of(step)
    if kind == HANDED_OVER:
        return True
    if cancelled:
        return False
    if kind == REMINDER:
        return answer is None
    if kind in IN_SUPPORT:
        return answer == "accepted" and not ended
    return True


def needs_colleague_contact(step: str) -> bool:
    """The offer and the follow-ups say how to reach the colleague; a reminder, the closing
    prompt and the lapse need not."""
    return kind_of(step) in (OFFER, FOLLOW_UP)
