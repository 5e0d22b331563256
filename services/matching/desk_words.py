"""The desk in a coordinator's words: each timeline entry as a sentence, each rule, status,
outcome and referral as people say them, times in the hospital's zone with the zone named,
scores rounded. Pure. (English; Dutch follows with the pages' catalogues.)"""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from shared.words import RULE_WORDS, at_local, turned_away

WORDS = {
    # how support ended
    "completed": "completed",
    "referred": "referred to professional help",
    "declined_by_colleague": "the colleague declined support",
    "unreachable": "the colleague could not be reached",
    "lapsed": "lapsed without an ending",
    # referrals
    "psychologist": "a psychologist",
    "occupational_physician": "the occupational physician",
    "eap": "the employee assistance programme",
    "spiritual_care": "spiritual care",
    "general_practitioner": "their general practitioner",
    "other": "other help",
    # why an offer was taken back or a case passed on or closed
    "no_response": "no answer in time",
    "case_closed": "the case was closed",
    "supporter_excluded": "the supporter turned out to be involved",
    "withdrawn_by_coordinator": "withdrawn by a coordinator",
    "handed_over": "handed over to another supporter by a coordinator",
    "no_peer_available": "nobody on the roster fits",
    "reopened": "support was reopened",
    "safety_concern": "a concern for the colleague's safety",
    "attempts_exhausted": "offers were declined or unanswered too often",
    "incident_withdrawn": "the incident report was withdrawn",
    "participant_removed": "the colleague is no longer listed in the incident",
    # messages and channels
    "offer": "the offer",
    "reminder": "the reminder",
    "email": "e-mail",
    "sms": "text message",
    "in_person": "in person",
    "phone": "by phone",
    "video": "by video",
}


LANGUAGES = {
    "nl": "Dutch",
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "pl": "Polish",
    "tr": "Turkish",
    "ar": "Arabic",
}


def said(value: object) -> str:
    """A code as people say it; an unknown one with its underscores as spaces."""
    text = str(value)
    if text.startswith("follow_up_day_"):
        return f"the follow-up of day {text.removeprefix('follow_up_day_')}"
    return WORDS.get(text, RULE_WORDS.get(text, text.replace("_", " ")))


Words = Callable[[Mapping[str, Any], str, str], str]
"""An entry's detail, the supporter's name and the zone, as a sentence."""


def _opened(detail: Mapping[str, Any], _: str, __: str) -> str:
    origin = {
        "request": "at the colleague's own request",
        "referral": "at a concerned colleague's request",
    }.get(str(detail.get("origin")), "after an incident")
    sentence = f"Case opened {origin}"
    if detail.get("opted_out"):
        sentence += "; the colleague chose not to be approached, so nobody is"
    wishes = {
        "wish_department": "a supporter from {} department",
        "wish_function": "a supporter who is a {}",
        "wish_language": "support in {}",
        "wish_supporter_id": "supporter {} by name",
    }
    asked = [
        wish.format(
            "their own" if v == "own" else "another" if v == "other" else LANGUAGES.get(v, said(v))
        )
        for key, wish in wishes.items()
        if (v := detail.get(key))
    ]
    return sentence + (f"; they would like {' and '.join(asked)}" if asked else "") + "."


def _offered(detail: Mapping[str, Any], name: str, zone: str) -> str:
    score = detail.get("score")
    scored = f", score {float(score):.2f}" if isinstance(score, int | float) else ""
    due = detail.get("respond_by")
    answer = f"; answer by {at_local(_moment(due), zone)}" if due else ""
    passed = f" ({detail['passed_over']})" if detail.get("passed_over") else ""
    return f"Offered to {name} (offer {detail.get('attempt', 1)}{scored}){answer}{passed}."


def _moment(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _escalated(detail: Mapping[str, Any], _: str, __: str) -> str:
    why = said(detail.get("reason", ""))
    away = turned_away(detail.get("rejections") or {})
    return f"Passed to the coordinator: {why}" + (f" (turned away: {away})" if away else "") + "."


TIERS = {1: "peer support", 2: "the trained support team", 3: "professional care"}


def _contact(detail: Mapping[str, Any], name: str, _: str) -> str:
    tier = TIERS.get(detail.get("tier") or 0)
    return (
        f"{name} logged a contact on {detail.get('date')}: {detail.get('minutes')} minutes "
        f"{said(detail.get('mode'))}" + (f", {tier}." if tier else ".")
    )


def _ended(detail: Mapping[str, Any], _: str, __: str) -> str:
    referral, outcome = detail.get("referral"), detail.get("outcome")
    if referral:
        ending = f"referred to {said(referral)}"
        if outcome != "referred":
            ending = f"{said(outcome)}, and referred to {said(referral)}"
    else:
        ending = said(outcome)
    return f"Support ended: {ending}."


TIMELINE_WORDS: dict[str, Words] = {
    "support.case_opened": _opened,
    "support.case_updated": lambda d, _, __: (
        f"The incident was regraded: harm {said(d.get('harm'))}"
        + (", a calamity." if d.get("calamity") else ".")
    ),
    "support.case_closed": lambda d, _, __: f"Closed before support: {said(d.get('reason'))}.",
    "support.peer_assigned": _offered,
    "support.response_deadline_moved": lambda d, _, zone: (
        f"The answer is now due by {at_local(_moment(d['respond_by']), zone)}."
    ),
    "support.assignment_cancelled": lambda d, name, _: (
        f"Support by {name} was handed over at a coordinator's request; they were thanked."
        if d.get("reason") == "handed_over"
        else f"The offer to {name} was taken back: {said(d.get('reason'))}."
    ),
    "support.case_escalated": _escalated,
    "support.peer_notified": lambda d, name, _: (
        f"{said(d.get('step')).capitalize()} reached {name} by {said(d.get('channel'))}."
    ),
    "support.notification_failed": lambda d, name, _: (
        f"{said(d.get('step')).capitalize()} to {name} by {said(d.get('channel'))} "
        f"did not get through: {said(d.get('reason'))}."
    ),
    "support.assignment_accepted": lambda _, name, __: f"{name} accepted.",
    "support.assignment_declined": lambda _, name, __: f"{name} declined.",
    "support.contact_logged": _contact,
    "support.ended": _ended,
    "support.safety_concern_raised": lambda d, _, __: (
        f"A concern for the colleague's safety was raised by the {said(d.get('raised_by'))}; "
        "the coordinators and the hospital's back-up were alerted."
    ),
    "support.reopened": lambda d, _, __: (
        f"Reopened by a coordinator (support had ended: {said(d.get('outcome'))}); "
        "theirs to offer again."
    ),
}


def in_words(kind: str, detail: Mapping[str, Any], name: str, zone: str) -> str:
    """`name`: the supporter's, as the roster has it (the events carry only their id)."""
    words = TIMELINE_WORDS.get(kind)
    return words(detail, name, zone) if words else said(kind.removeprefix("support."))
