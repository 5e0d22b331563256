"""Words people read for the codes events carry, kept once for the desk and the mails to
coordinators: why a supporter was turned away, and a time in a hospital's zone."""

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

RULE_WORDS = {
    "inactive": "not active on the roster",
    "other_hospital": "works at another hospital",
    "not_trained": "not trained yet",
    "unavailable_today": "not available today",
    "absent": "away",
    "tried_before": "asked before for this case",
    "pseudonym_key_unknown": "cannot be checked against those involved",
    "involved_in_incident": "involved in the incident",
    "investigates_incident": "investigates the incident",
    "line_manager": "the colleague's line manager",
    "same_team": "in the colleague's team",
    "same_department": "in the colleague's department",
    "no_shared_language": "shares no language with the colleague",
    "incident_share_reached": "already supports enough of this incident",
    "at_capacity": "has as many cases as they take",
}
"""Why a supporter was turned away, by the rule's label as matching's events carry it."""


def at_local(moment: datetime, zone: str) -> str:
    """`2026-12-07 14:05 CET`: the hospital's time, its zone named."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def turned_away(rejections: Mapping[str, int]) -> str:
    """`9: has as many cases as they take, 3: in the colleague's department`."""
    return ", ".join(
        f"{n}: {RULE_WORDS.get(rule, rule.replace('_', ' '))}" for rule, n in rejections.items()
    )
