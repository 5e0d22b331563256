"""The desk in a coordinator's words: each timeline entry as a sentence, each rule, status,
outcome and referral as people say them, times in the hospital's zone with the zone named,
scores rounded. Pure; in the language being spoken (`shared.i18n`)."""

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from shared.i18n import N_, _
from shared.words import at_local, rule_said, turned_away

WORDS = {
    # how support ended
    "completed": N_("completed"),
    "referred": N_("referred to professional help"),
    "declined_by_colleague": N_("the colleague declined support"),
    "unreachable": N_("the colleague could not be reached"),
    "lapsed": N_("lapsed without an ending"),
    "closed_by_coordinator": N_("closed by a coordinator"),
    # referrals
    "psychologist": N_("a psychologist"),
    "occupational_physician": N_("the occupational physician"),
    "eap": N_("the employee assistance programme"),
    "spiritual_care": N_("spiritual care"),
    "general_practitioner": N_("their general practitioner"),
    "other": N_("other help"),
    # why an offer was taken back or a case passed on or closed
    "no_response": N_("no answer in time"),
    "case_closed": N_("the case was closed"),
    "supporter_excluded": N_("the supporter turned out to be involved"),
    "withdrawn_by_coordinator": N_("withdrawn by a coordinator"),
    "handed_over": N_("handed over to another supporter by a coordinator"),
    "no_peer_available": N_("nobody on the roster fits"),
    "reopened": N_("support was reopened"),
    "safety_concern": N_("a concern for the colleague's safety"),
    "attempts_exhausted": N_("offers were declined or unanswered too often"),
    "incident_withdrawn": N_("the incident report was withdrawn"),
    "participant_removed": N_("the colleague is no longer listed in the incident"),
    # messages and channels
    "offer": N_("the offer"),
    "reminder": N_("the reminder"),
    "email": N_("e-mail"),
    "sms": N_("text message"),
    "in_person": N_("in person"),
    "phone": N_("by phone"),
    "video": N_("by video"),
    # who raised a concern
    "supporter": N_("supporter"),
    "coordinator": N_("coordinator"),
    # functions, categories and harm as incidents carry them
    "physician": N_("physician"),
    "resident": N_("resident"),
    "nurse": N_("nurse"),
    "midwife": N_("midwife"),
    "pharmacist": N_("pharmacist"),
    "allied_health": N_("allied health professional"),
    "support_staff": N_("support staff"),
    "paramedic": N_("paramedic"),
    "manager": N_("manager"),
    "medication": N_("medication"),
    "surgery": N_("surgery"),
    "diagnosis": N_("diagnosis"),
    "fall": N_("a fall"),
    "treatment": N_("treatment"),
    "device": N_("a medical device"),
    "communication": N_("communication"),
    "none": N_("none"),
    "mild": N_("mild"),
    "moderate": N_("moderate"),
    "severe": N_("severe"),
    "death": N_("death"),
    "unknown": N_("unknown"),
}


LANGUAGES = {
    "nl": N_("Dutch"),
    "en": N_("English"),
    "de": N_("German"),
    "fr": N_("French"),
    "es": N_("Spanish"),
    "pl": N_("Polish"),
    "tr": N_("Turkish"),
    "ar": N_("Arabic"),
}


def said(value: object) -> str:
    """A code as people say it; an unknown one with its underscores as spaces."""
    text = str(value)
    if text.startswith("follow_up_day_"):
        return _("the follow-up of day {day}").format(day=text.removeprefix("follow_up_day_"))
    return _(WORDS[text]) if text in WORDS else rule_said(text)


Words = Callable[[Mapping[str, Any], str, str], str]
"""An entry's detail, the supporter's name and the zone, as a sentence."""


def _opened(detail: Mapping[str, Any], _name: str, _zone: str) -> str:
    origin = {
        "request": N_("Case opened at the colleague's own request"),
        "referral": N_("Case opened at a concerned colleague's request"),
    }.get(str(detail.get("origin")), N_("Case opened after an incident"))
    sentence = _(origin)
    if detail.get("opted_out"):
        sentence += _("; the colleague chose not to be approached, so nobody is")
    asked = [_wish(key, value) for key in WISHES if (value := detail.get(key))]
    if asked:
        sentence += _("; they would like {wishes}").format(wishes=_(" and ").join(asked))
    return sentence + "."


WISHES = {
    "wish_department": N_("a supporter from {which} department"),
    "wish_function": N_("a supporter who is a {which}"),
    "wish_language": N_("support in {which}"),
    "wish_supporter_id": N_("supporter {which} by name"),
}


def _wish(key: str, value: str) -> str:
    which = {"own": N_("their own"), "other": N_("another")}.get(value)
    said_as = _(which) if which else language_said(value) if value in LANGUAGES else said(value)
    return _(WISHES[key]).format(which=said_as)


def _offered(detail: Mapping[str, Any], name: str, zone: str) -> str:
    score = detail.get("score")
    sentence = _("Offered to {name} (offer {attempt})").format(
        name=name, attempt=detail.get("attempt", 1)
    )
    if isinstance(score, int | float):
        sentence = _("Offered to {name} (offer {attempt}, score {score:.2f})").format(
            name=name, attempt=detail.get("attempt", 1), score=float(score)
        )
    if due := detail.get("respond_by"):
        sentence += _("; answer by {moment}").format(moment=at_local(_moment(due), zone))
    if detail.get("passed_over"):
        sentence += f" ({detail['passed_over']})"
    return sentence + "."


def _moment(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _escalated(detail: Mapping[str, Any], _name: str, _zone: str) -> str:
    why = said(detail.get("reason", ""))
    away = turned_away(detail.get("rejections") or {})
    if away:
        return _("Passed to the coordinator: {why} (turned away: {away}).").format(
            why=why, away=away
        )
    return _("Passed to the coordinator: {why}.").format(why=why)


TIERS = {1: N_("peer support"), 2: N_("the trained support team"), 3: N_("professional care")}


def _contact(detail: Mapping[str, Any], name: str, _zone: str) -> str:
    sentence = _("{name} logged a contact on {date}: {minutes} minutes {mode}").format(
        name=name,
        date=detail.get("date"),
        minutes=detail.get("minutes"),
        mode=said(detail.get("mode")),
    )
    tier = TIERS.get(detail.get("tier") or 0)
    return sentence + (f", {_(tier)}." if tier else ".")


def _ended(detail: Mapping[str, Any], _name: str, _zone: str) -> str:
    referral, outcome = detail.get("referral"), detail.get("outcome")
    if referral and outcome != "referred":
        ending = _("{outcome}, and referred to {referral}").format(
            outcome=said(outcome), referral=said(referral)
        )
    elif referral:
        ending = _("referred to {referral}").format(referral=said(referral))
    else:
        ending = said(outcome)
    return _("Support ended: {ending}.").format(ending=ending)


def _regraded(detail: Mapping[str, Any], _name: str, _zone: str) -> str:
    if detail.get("calamity"):
        return _("The incident was regraded: harm {harm}, a calamity.").format(
            harm=said(detail.get("harm"))
        )
    return _("The incident was regraded: harm {harm}.").format(harm=said(detail.get("harm")))


def _cancelled(detail: Mapping[str, Any], name: str, _zone: str) -> str:
    if detail.get("reason") == "handed_over":
        return _(
            "Support by {name} was handed over at a coordinator's request; they were thanked."
        ).format(name=name)
    return _("The offer to {name} was taken back: {why}.").format(
        name=name, why=said(detail.get("reason"))
    )


def _notified(detail: Mapping[str, Any], name: str, _zone: str) -> str:
    return _("{step} reached {name} by {channel}.").format(
        step=said(detail.get("step")).capitalize(), name=name, channel=said(detail.get("channel"))
    )


def _not_notified(detail: Mapping[str, Any], name: str, _zone: str) -> str:
    return _("{step} to {name} by {channel} did not get through: {why}.").format(
        step=said(detail.get("step")).capitalize(),
        name=name,
        channel=said(detail.get("channel")),
        why=said(detail.get("reason")),
    )


FITS = {"same": N_("same function"), "related": N_("related function")}


def reason_said(rule: str, terms: Mapping[str, str], written: str) -> str:
    """One reason of a match, worded from its terms in the language being spoken; a reason
    without terms (from an older event) as it was written."""
    match rule:
        case "function" if terms:
            fit = FITS.get(terms.get("fit", ""), N_("different function"))
            return _("{fit}: {function}, colleague {colleague}").format(
                fit=_(fit),
                function=said(terms.get("function")),
                colleague=said(terms.get("colleague")),
            )
        case "seniority" if band := terms.get("colleague_band"):
            return _("{years} years of experience, colleague {band}").format(
                years=said(terms.get("years", "unknown")), band=_(band)
            )
        case "age" if apart := terms.get("years_apart"):
            if apart == "unknown":
                return _("age unknown")
            return _("{years} years apart in age").format(years=apart)
        case "open_cases" if terms:
            return _("{open} of at most {most} open cases, {recent} carried recently").format(
                open=terms.get("open"), most=terms.get("max"), recent=terms.get("recent")
            )
        case "waited" if "last_assigned" in terms:
            if day := terms["last_assigned"]:
                return _("last assigned {day}").format(day=day)
            return _("never assigned before")
        case "department" if terms:
            if terms.get("same") == "true":
                return _("works in the colleague's own department ({department})").format(
                    department=terms.get("department")
                )
            return _("works outside the colleague's department ({department})").format(
                department=terms.get("department")
            )
        case "language" if terms:
            spoken = [language_said(code.strip()) for code in terms.get("languages", "").split(",")]
            return _("speaks {languages} with the colleague").format(languages=", ".join(spoken))
    words = REASONS.get(rule)
    return _(words) if words else written


REASONS = {
    "chosen_by_colleague": N_("the colleague asked for this supporter by name"),
    "chosen_by_coordinator": N_("a coordinator chose this supporter"),
    "protected": N_(
        "not involved in the incident, not investigating it, not the colleague's line manager, "
        "not on the colleague's team"
    ),
}
"""Reasons that need no terms."""


def language_said(code: str) -> str:
    return _(LANGUAGES[code]) if code in LANGUAGES else code


TIMELINE_WORDS: dict[str, Words] = {
    "support.case_opened": _opened,
    "support.case_updated": _regraded,
    "support.case_closed": lambda d, _name, _zone: _("Closed before support: {why}.").format(
        why=said(d.get("reason"))
    ),
    "support.peer_assigned": _offered,
    "support.response_deadline_moved": lambda d, _name, zone: _(
        "The answer is now due by {moment}."
    ).format(moment=at_local(_moment(d["respond_by"]), zone)),
    "support.assignment_cancelled": _cancelled,
    "support.case_escalated": _escalated,
    "support.peer_notified": _notified,
    "support.notification_failed": _not_notified,
    "assignment.accepted": lambda _d, name, _zone: _("{name} accepted.").format(name=name),
    "assignment.declined": lambda _d, name, _zone: _("{name} declined.").format(name=name),
    "support.contact_logged": _contact,
    "support.ended": _ended,
    "support.safety_concern_raised": lambda d, _name, _zone: _(
        "A concern for the colleague's safety was raised by the {who}; "
        "the coordinators and the hospital's back-up were alerted."
    ).format(who=said(d.get("raised_by"))),
    "support.reopened": lambda d, _name, _zone: _(
        "Reopened by a coordinator (support had ended: {outcome}); theirs to offer again."
    ).format(outcome=said(d.get("outcome"))),
}


def in_words(kind: str, detail: Mapping[str, Any], name: str, zone: str) -> str:
    """`name`: the supporter's, as the roster has it (the events carry only their id)."""
    words = TIMELINE_WORDS.get(kind)
    return words(detail, name, zone) if words else said(kind.removeprefix("support."))
