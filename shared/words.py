"""Words people read for the codes events carry, kept once for the desk and the mails to
coordinators: why a supporter was turned away, and a time in a hospital's zone. In the
language being spoken (`shared.i18n`)."""

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from shared.i18n import N_, _

RULE_WORDS = {
    "inactive": N_("not active on the roster"),
    "other_hospital": N_("works at another hospital"),
    "not_trained": N_("not trained yet"),
    "unavailable_today": N_("not available today"),
    "absent": N_("away"),
    "tried_before": N_("asked before for this case"),
    "pseudonym_key_unknown": N_("cannot be checked against those involved"),
    "involved_in_incident": N_("involved in the incident"),
    "investigates_incident": N_("investigates the incident"),
    "line_manager": N_("the colleague's line manager"),
    "same_team": N_("in the colleague's team"),
    "same_department": N_("in the colleague's department"),
    "no_shared_language": N_("shares no language with the colleague"),
    "incident_share_reached": N_("already supports enough of this incident"),
    "at_capacity": N_("has as many cases as they take"),
}
"""Why a supporter was turned away, by the rule's label as matching's events carry it."""


def at_local(moment: datetime, zone: str) -> str:
    """`2026-12-07 14:05 CET`: the hospital's time, its zone named."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def rule_said(rule: str) -> str:
    words = RULE_WORDS.get(rule)
    return _(words) if words else rule.replace("_", " ")


def turned_away(rejections: Mapping[str, int]) -> str:
    """`9: has as many cases as they take, 3: in the colleague's department`."""
    return ", ".join(f"{n}: {rule_said(rule)}" for rule, n in rejections.items())
