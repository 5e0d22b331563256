"""Telling people why an event or a row was refused: pure, shared by services and tools."""

from pydantic import ValidationError

REASON_MAX_CHARS = 2000


class RejectedEvent(Exception):
    """The event is well-formed but the domain refuses it; the message says why."""


class RetryLater(Exception):
    """Not this message's fault and not final: try it again after a pause."""


def describe(error: BaseException) -> str:
    """A reason an operator can act on, without a traceback."""
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'value'}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False)
        )
        reason = f"{error.error_count()} contract violation(s): {problems}"
    elif isinstance(error, RejectedEvent):
        reason = str(error)
    else:
        reason = f"{type(error).__name__}: {error}"
    return reason[:REASON_MAX_CHARS]
