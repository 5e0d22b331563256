"""Telling people why an event or a row was refused: pure, shared by services and tools."""

from pydantic import ValidationError

REASON_MAX_CHARS = 2000
PROBLEMS_LISTED = 10
"""A report of thousands of violations names the first few and counts the rest."""


class RejectedEvent(Exception):
    """The event is well-formed but the domain refuses it; the message says why."""


class RetryLater(Exception):
    """Not this message's fault and not final: try it again after a pause."""


def describe(error: BaseException) -> str:
    """A reason an operator can act on, without a traceback."""
    if isinstance(error, ValidationError):
        count = error.error_count()
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])[:200] or 'value'}: {e['msg'][:200]}"
            for e in error.errors(include_url=False, include_input=False)[:PROBLEMS_LISTED]
        )
        more = f"; and {count - PROBLEMS_LISTED} more" if count > PROBLEMS_LISTED else ""
        reason = f"{count} contract violation(s): {problems}{more}"
    elif isinstance(error, RejectedEvent):
        reason = str(error)
    else:
        reason = f"{type(error).__name__}: {str(error)[:REASON_MAX_CHARS]}"
    return reason[:REASON_MAX_CHARS]
