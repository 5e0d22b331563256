"""What a supporter is told, in their language: pure, no I/O.

Only what the supporter needs to reach out: the colleague's function, department and how to
reach them, and of the incident only its category, harm level and date. Never patient data.
"""

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from string import Template
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from services.notify.steps import OFFER, kind_of
from shared.events import (
    AssignmentAccepted,
    AssignmentDeclined,
    CaseContactRecorded,
    CaseOrigin,
    Category,
    ConcernRaisedBy,
    ContactMode,
    Function,
    Harm,
    NotificationFailed,
    PeerAssigned,
    PeerNotified,
    ReferralKind,
    SafetyConcernRaised,
    ScoreItem,
    SupportContactLogged,
    SupportEnded,
    SupporterContact,
    SupportOutcome,
    derived_event_id,
)
from shared.mail import Outreach

_SUBJECTS = {
    "nl": "Verzoek om collegiale ondersteuning ($category, $date)",
    "en": "Request for peer support ($category, $date)",
}

_BODIES = {
    "nl": Template(
        """Beste $supporter,

$situation Wil je deze collega binnenkort benaderen om
collegiale ondersteuning aan te bieden?

Zo bereik je je collega: $how_to_reach

Je bent gekoppeld omdat:
$reasons

Geef je antwoord (ja of nee) vóór $respond_by via:
$respond_url
Zonder antwoord vragen we daarna een andere collega.

Dank je wel,
Peer support
"""
    ),
    "en": Template(
        """Dear $supporter,

$situation Would you reach out to them soon to offer
peer support?

How to reach your colleague: $how_to_reach

You were matched because:
$reasons

Please answer (yes or no) before $respond_by at:
$respond_url
Without an answer by then we will ask another colleague.

Thank you,
Peer support
"""
    ),
}

_SITUATIONS = {
    "nl": {
        CaseOrigin.INCIDENT: "Een collega ($function, $department) was op $date betrokken bij "
        "een incident\n(categorie: $category, schade: $harm).",
        CaseOrigin.REQUEST: "Een collega ($function, $department) vroeg op $date zelf om\n"
        "collegiale ondersteuning.",
        CaseOrigin.REFERRAL: "Iemand maakte zich op $date zorgen om een collega ($function,\n"
        "$department) en vroeg ons ondersteuning aan te bieden.",
    },
    "en": {
        CaseOrigin.INCIDENT: "A colleague ($function, $department) was involved in an incident "
        "on $date\n(category: $category, harm: $harm).",
        CaseOrigin.REQUEST: "A colleague ($function, $department) asked for peer support\n"
        "themselves on $date.",
        CaseOrigin.REFERRAL: "Someone was concerned about a colleague ($function, $department)\n"
        "on $date and asked us to offer them support.",
    },
}
"""Why the supporter is asked: for a referral, only that someone was concerned, never who."""

_NO_CONTACT = {
    "nl": "geen contactgegevens bekend; vraag ze op bij de coördinator",
    "en": "no contact details were given; ask the coordinator",
}


_DUTCH: dict[StrEnum, str] = {
    Function.NURSE: "verpleegkundige",
    Function.PHYSICIAN: "arts",
    Function.RESIDENT: "arts in opleiding",
    Function.MIDWIFE: "verloskundige",
    Function.PHARMACIST: "apotheker",
    Function.PARAMEDIC: "ambulancezorgverlener",
    Function.ALLIED_HEALTH: "paramedisch zorgverlener",
    Function.SUPPORT_STAFF: "ondersteunend medewerker",
    Function.MANAGER: "leidinggevende",
    Function.OTHER: "overig",
    Category.MEDICATION: "medicatie",
    Category.FALL: "val",
    Category.SURGERY: "operatie",
    Category.DIAGNOSIS: "diagnose",
    Category.TREATMENT: "behandeling",
    Category.DEVICE: "medisch hulpmiddel",
    Category.COMMUNICATION: "communicatie",
    Category.OTHER: "overig",
    Harm.NONE: "geen",
    Harm.MILD: "licht",
    Harm.MODERATE: "matig",
    Harm.SEVERE: "ernstig",
    Harm.DEATH: "overlijden",
    Harm.UNKNOWN: "onbekend",
}

_REASONS: dict[str, dict[str, str]] = {
    "nl": {
        "function:same": "je hebt dezelfde functie ({function})",
        "function:related": "je functie ({function}) ligt dicht bij die van je collega",
        "seniority": "je hebt minstens zoveel ervaring als je collega",
        "age": "je bent ongeveer even oud als je collega",
        "open_cases": "je had {open} van maximaal {max} lopende trajecten",
        "open_cases:recent": "je had {open} van maximaal {max} lopende trajecten en begeleidde "
        "er onlangs {recent}",
        "waited": "je laatste koppeling was op {last_assigned}",
        "waited:never": "je bent nog niet eerder gekoppeld",
        "department:false": "je werkt niet op de afdeling van je collega ({department})",
        "department:true": "je werkt op dezelfde afdeling als je collega ({department})",
        "chosen_by_colleague": "je collega vroeg om jou",
        "chosen_by_coordinator": "de coördinator van het programma vroeg jou persoonlijk",
        "protected": "je was niet bij het incident betrokken, onderzoekt het niet, bent niet "
        "de leidinggevende van je collega en zit niet in hetzelfde team",
        "language": "je spreekt {languages} met je collega",
    },
    "en": {
        "function:same": "you have the same function ({function})",
        "function:related": "your function ({function}) is close to your colleague's",
        "seniority": "you have at least as much experience as your colleague",
        "age": "you are close in age to your colleague",
        "open_cases": "you had {open} of at most {max} open cases",
        "open_cases:recent": "you had {open} of at most {max} open cases and supported {recent} "
        "recently",
        "waited": "your last match was on {last_assigned}",
        "waited:never": "you have not been matched before",
        "department:false": "you do not work in your colleague's department ({department})",
        "department:true": "you work in your colleague's department ({department})",
        "chosen_by_colleague": "your colleague asked for you",
        "chosen_by_coordinator": "the programme's coordinator asked you personally",
        "protected": "you were not involved in the incident, do not investigate it, are not "
        "your colleague's line manager and not on their team",
        "language": "you speak {languages} with your colleague",
    },
}


def _term(value: StrEnum, language: str) -> str:
    return _DUTCH[value] if language == "nl" else value.value.replace("_", " ")


CLOSE_IN_AGE = 10
"""Years apart within which a supporter is told they are close in age to the colleague."""


def _reason(item: ScoreItem, language: str) -> str | None:
    """The reason in the supporter's words, without the colleague's age or experience; None
    for a reason that did not speak for this supporter; a reason unknown here keeps the
    coordinator's wording."""
    terms = item.terms
    phrase = {
        "function": f"function:{terms.get('fit')}",
        "waited": "waited" if terms.get("last_assigned") else "waited:never",
        "department": f"department:{terms.get('same')}",
        "open_cases": "open_cases:recent" if terms.get("recent", "0") != "0" else "open_cases",
    }.get(item.rule, item.rule)
    if "unknown" in terms.values() or not _speaks_for(item):
        return None
    if phrase not in _REASONS[language]:
        return item.detail
    if item.rule == "function":
        terms = {**terms, "function": _term(Function(terms["function"]), language)}
    return _REASONS[language][phrase].format(**terms)


def _speaks_for(item: ScoreItem) -> bool:
    terms = item.terms
    if item.rule == "function":
        return terms.get("fit") != "different"
    if item.rule == "seniority":
        return int(terms["years"]) >= int(terms["colleague"])
    if item.rule == "age":
        return int(terms["years_apart"]) <= CLOSE_IN_AGE
    return True


@dataclass(frozen=True)
class Links:
    """The supporter's signed links in one message."""

    respond: str = ""
    log_contact: str = ""
    end: str = ""
    """To say support has ended (with how), or that it goes on."""
    concern: str = ""
    """To raise a concern for the colleague's safety."""


_STEP_TEXTS = {
    "nl": {
        "reminder_subject": "Herinnering: verzoek om collegiale ondersteuning ($date)",
        "reminder": """Beste $supporter,

Je hebt nog niet geantwoord op het verzoek om een collega ($function, $department)
collegiale ondersteuning aan te bieden. Geef je antwoord (ja of nee) vóór $respond_by via:
$respond_url
Zonder antwoord vragen we daarna een andere collega.

Peer support
""",
        "follow_up_subject": "Hoe gaat het met je collega? (dag $day)",
        "follow_up": """Beste $supporter,

Het is $day dag(en) geleden dat je het verzoek aannam om je collega ($function,
$department) te ondersteunen. Neem gerust nog eens contact op: $how_to_reach

Had je contact? Leg het vast (datum, duur, vorm), zo weten we hoeveel tijd
collegiale ondersteuning vraagt:
$log_url

Is de ondersteuning afgerond, of loopt ze nog? Laat het ons weten:
$end_url

Maak je je zorgen om de veiligheid van je collega? Meld het meteen:
$concern_url

Peer support
""",
        "closing_subject": "Is de ondersteuning van je collega afgerond?",
        "closing": """Beste $supporter,

Je ondersteunt je collega ($function, $department) al een tijd. Is de ondersteuning
afgerond (of doorverwezen naar professionele hulp), of loopt ze nog? Laat het ons weten:
$end_url

Horen we niets en leg je geen contact meer vast, dan sluiten we de ondersteuning vanzelf af.

Peer support
""",
        "handed_over_subject": "Je ondersteuning is overgedragen",
        "handed_over": """Beste $supporter,

De coördinator heeft de ondersteuning van je collega ($function, $department)
overgedragen aan een andere collega-ondersteuner. Je hoeft niets meer te doen.

Dank je wel voor wat je voor je collega hebt gedaan. Wil je er zelf over praten,
neem dan contact op met je coördinator.

Peer support
""",
        "sms_handed_over": "Peer support: de ondersteuning van je collega ($function, "
        "$department) is overgedragen. Dank je wel; je hoeft niets meer te doen.",
        "sms_offer": "Peer support: wil je een collega ($function, $department) steunen na een "
        "incident op $date? Antwoord vóór $respond_by: $respond_url",
        "sms_reminder": "Peer support, herinnering: antwoord vóór $respond_by: $respond_url",
        "sms_follow_up": "Peer support: dag $day. Neem nog eens contact op met je collega en "
        "leg het vast: $log_url . Afgerond? $end_url",
        "sms_closing": "Peer support: is de ondersteuning van je collega afgerond? $end_url",
    },
    "en": {
        "reminder_subject": "Reminder: request for peer support ($date)",
        "reminder": """Dear $supporter,

You have not yet answered the request to offer peer support to a colleague
($function, $department). Please answer (yes or no) before $respond_by at:
$respond_url
Without an answer by then we will ask another colleague.

Peer support
""",
        "follow_up_subject": "How is your colleague doing? (day $day)",
        "follow_up": """Dear $supporter,

It is $day day(s) since you accepted to support your colleague ($function,
$department). Please check in with them again: $how_to_reach

Were you in touch? Record it (date, duration, how), so we learn how much time
peer support takes:
$log_url

Has support ended, or is it going on? Let us know:
$end_url

Worried about your colleague's safety? Raise it at once:
$concern_url

Peer support
""",
        "closing_subject": "Has support for your colleague ended?",
        "closing": """Dear $supporter,

You have been supporting your colleague ($function, $department) for a while. Has
support ended (or been referred to professional help), or is it going on? Let us know:
$end_url

If we hear nothing and no more contacts are recorded, support will be closed by itself.

Peer support
""",
        "handed_over_subject": "Your support has been handed over",
        "handed_over": """Dear $supporter,

The coordinator has handed the support of your colleague ($function, $department)
to another peer supporter. There is nothing more you need to do.

Thank you for what you did for your colleague. If you would like to talk about it
yourself, please get in touch with your coordinator.

Peer support
""",
        "sms_handed_over": "Peer support: support for your colleague ($function, $department) "
        "has been handed over. Thank you; there is nothing more you need to do.",
        "sms_offer": "Peer support: would you support a colleague ($function, $department) "
        "after an incident on $date? Answer before $respond_by: $respond_url",
        "sms_reminder": "Peer support reminder: please answer before $respond_by: $respond_url",
        "sms_follow_up": "Peer support: day $day. Check in with your colleague again and "
        "record it: $log_url . Ended? $end_url",
        "sms_closing": "Peer support: has support for your colleague ended? $end_url",
    },
}


def compose(
    step: str,
    assignment: PeerAssigned,
    supporter: SupporterContact,
    contact: CaseContactRecorded | None,
    channel: Literal["email", "sms"],
    links: Links,
    timezone: str = "Europe/Amsterdam",
) -> Outreach:
    """The message of one step on one channel, in the supporter's language."""
    language = supporter.language if supporter.language in _BODIES else "en"
    profile = assignment.profile
    ways = _ways(contact, language)
    fields = {
        "situation": "",
        "supporter": supporter.display_name,
        "function": _term(profile.function, language),
        "department": profile.department,
        "date": profile.incident_occurred_at.strftime("%Y-%m-%d"),
        "category": _term(profile.category, language),
        "harm": _term(profile.harm, language),
        "how_to_reach": ", ".join(ways) if ways else _NO_CONTACT[language],
        "respond_by": f"{assignment.respond_by.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M}",
        "respond_url": links.respond,
        "log_url": links.log_contact,
        "end_url": links.end,
        "concern_url": links.concern,
        "day": step.rsplit("_", 1)[-1].removesuffix("s"),
        "reasons": "\n".join(
            f"- {reason}"
            for item in assignment.explanation
            if (reason := _reason(item, language)) is not None
        ),
    }
    fields["situation"] = Template(_SITUATIONS[language][profile.origin]).substitute(fields)
    kind = kind_of(step)
    texts = _STEP_TEXTS[language]
    if channel == "sms":
        if supporter.phone is None:
            raise ValueError(f"supporter {supporter.supporter_id} has no phone for sms")
        body = Template(texts[f"sms_{kind}"]).substitute(fields)
        return Outreach(to=supporter.phone, subject="", body=body, language=language)
    if kind == OFFER:
        subject, body = _SUBJECTS[language], _BODIES[language].template
    else:
        subject, body = texts[f"{kind}_subject"], texts[kind]
    return Outreach(
        to=supporter.email,
        subject=Template(subject).substitute(fields),
        body=Template(body).substitute(fields),
        language=language,
    )


_PREFERS = {
    "nl": {"email": "liefst per e-mail", "phone": "liefst telefonisch"},
    "en": {"email": "by e-mail, preferably", "phone": "by phone, preferably"},
}


def _ways(contact: CaseContactRecorded | None, language: str) -> list[str]:
    """The colleague's ways to be reached, the one they chose first."""
    if contact is None:
        return []
    ways = [w for w in (contact.email, contact.phone) if w]
    chosen = contact.phone if contact.preferred_channel == "phone" else contact.email
    if contact.preferred_channel and chosen in ways:
        ways = [
            f"{chosen} ({_PREFERS[language][contact.preferred_channel]})",
            *(w for w in ways if w != chosen),
        ]
    return ways


def render_outreach(
    assignment: PeerAssigned,
    supporter: SupporterContact,
    contact: CaseContactRecorded,
    respond_url: str,
    timezone: str = "Europe/Amsterdam",
) -> Outreach:
    """The offer by email; `respond_url`: the supporter's signed link to accept or decline."""
    links = Links(respond=respond_url)
    return compose(OFFER, assignment, supporter, contact, "email", links, timezone)


def notified(
    assignment: PeerAssigned, step: str, channel: Literal["email", "sms"], at: datetime
) -> PeerNotified:
    return PeerNotified(
        event_id=_step_event_id("peer_notified", assignment, step),
        channel=channel,
        notified_at=at,
        step=step,
        **_about(assignment, at),
    )


def failed(
    assignment: PeerAssigned,
    step: str,
    channel: Literal["email", "sms"],
    reason: str,
    at: datetime,
) -> NotificationFailed:
    return NotificationFailed(
        event_id=derived_event_id("notification_failed", assignment.assignment_id, step, channel),
        step=step,
        channel=channel,
        reason=reason,
        **_about(assignment, at),
    )


def _step_event_id(kind: str, assignment: PeerAssigned, step: str) -> uuid.UUID:
    if step == OFFER:  # as before steps existed, so a redelivery is still recognised
        return derived_event_id(kind, assignment.assignment_id)
    return derived_event_id(kind, assignment.assignment_id, step)


def _about(assignment: PeerAssigned, at: datetime) -> dict[str, Any]:
    """What every step notify announces carries: the assignment, its case, and what caused it."""
    return {
        "assignment_id": assignment.assignment_id,
        "case_id": assignment.case_id,
        "profile": assignment.profile,
        "occurred_at": at,
        "producer": "notify",
        "correlation_id": assignment.correlation_id,
        "causation_id": assignment.event_id,
        "hospital_id": assignment.hospital_id,
    }


def concern_raised(assignment: PeerAssigned, nonce: str, at: datetime) -> SafetyConcernRaised:
    """One per concern form the supporter sent: a repeated post is the same event."""
    about = _about(assignment, at)
    del about["assignment_id"]
    return SafetyConcernRaised(
        event_id=derived_event_id("concern", assignment.assignment_id, nonce),
        raised_by=ConcernRaisedBy.SUPPORTER,
        supporter_id=assignment.supporter_id,
        **about,
    )


def answered(
    assignment: PeerAssigned, accepted: bool, at: datetime
) -> AssignmentAccepted | AssignmentDeclined:
    """The supporter's answer, for matching (and reporting); an offer is answered once."""
    kind = AssignmentAccepted if accepted else AssignmentDeclined
    return kind(
        event_id=derived_event_id("assignment_answered", assignment.assignment_id),
        **_about(assignment, at),
    )


def support_ended(
    assignment: PeerAssigned,
    outcome: SupportOutcome,
    referral: ReferralKind | None,
    at: datetime,
    *,
    contacts: int | None = None,
) -> SupportEnded:
    """Support ends once per assignment, by the supporter's link or by lapsing."""
    return SupportEnded(
        event_id=derived_event_id("support_ended", assignment.assignment_id),
        outcome=outcome,
        referral=referral,
        case_opened_at=assignment.case_opened_at,
        contacts=contacts,
        **_about(assignment, at),
    )


def contact_logged(
    assignment: PeerAssigned,
    entry: "ContactEntry",
    nonce: str,
    at: datetime,
    *,
    first_of_case: bool,
) -> SupportContactLogged:
    return SupportContactLogged(
        event_id=derived_event_id("contact_logged", nonce),
        case_opened_at=assignment.case_opened_at,
        first_of_case=first_of_case,
        **entry.model_dump(),
        **_about(assignment, at),
    )


class ContactEntry(BaseModel):
    """What a supporter records of one contact, from the form behind their link."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contact_date: date
    minutes: int = Field(ge=1, le=600)
    mode: ContactMode
    tier: int = Field(ge=1, le=3)
    referred: bool


def contact_date_refusal(
    contact_date: date, accepted_at: datetime | None, now: datetime, timezone: str
) -> str | None:
    """Why a contact cannot be dated so, in the hospital's calendar: `future`, or
    `before_acceptance` (support began when the supporter accepted); None when it can."""
    zone = ZoneInfo(timezone)
    if contact_date > now.astimezone(zone).date():
        return "future"
    if accepted_at is not None and contact_date < accepted_at.astimezone(zone).date():
        return "before_acceptance"
    return None
