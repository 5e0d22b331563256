"""What a supporter is told, in their language: pure, no I/O.

Only what the supporter needs to reach out: the colleague's function, department and how to
reach them, and of the incident only its category, harm level and date. Never patient data.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from string import Template
from typing import Literal
from zoneinfo import ZoneInfo

from shared.events import (
    AssignmentAccepted,
    AssignmentDeclined,
    CaseContactRecorded,
    Category,
    Function,
    Harm,
    PeerAssigned,
    PeerNotified,
    ScoreItem,
    derived_event_id,
)


@dataclass(frozen=True)
class Outreach:
    to: str
    subject: str
    body: str
    language: str


_SUBJECTS = {
    "nl": "Verzoek om collegiale ondersteuning ($category, $date)",
    "en": "Request for peer support ($category, $date)",
}

_BODIES = {
    "nl": Template(
        """Beste $supporter,

Een collega ($function, $department) was op $date betrokken bij een incident
(categorie: $category, schade: $harm). Wil je deze collega binnenkort benaderen om
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

A colleague ($function, $department) was involved in an incident on $date
(category: $category, harm: $harm). Would you reach out to them soon to offer
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
        "waited": "je laatste koppeling was op {last_assigned}",
        "waited:never": "je bent nog niet eerder gekoppeld",
        "department:false": "je werkt niet op de afdeling van je collega ({department})",
        "department:true": "je werkt op dezelfde afdeling als je collega ({department})",
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
        "waited": "your last match was on {last_assigned}",
        "waited:never": "you have not been matched before",
        "department:false": "you do not work in your colleague's department ({department})",
        "department:true": "you work in your colleague's department ({department})",
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


def render_outreach(
    assignment: PeerAssigned,
    contact: CaseContactRecorded,
    respond_url: str,
    timezone: str = "Europe/Amsterdam",
) -> Outreach:
    """`respond_url`: the supporter's signed link to accept or decline."""
    supporter = assignment.supporter
    language = supporter.language if supporter.language in _BODIES else "en"
    profile = assignment.profile
    ways = [w for w in (contact.email, contact.phone) if w]
    fields = {
        "supporter": supporter.display_name,
        "function": _term(profile.function, language),
        "department": profile.department,
        "date": profile.incident_occurred_at.strftime("%Y-%m-%d"),
        "category": _term(profile.category, language),
        "harm": _term(profile.harm, language),
        "how_to_reach": ", ".join(ways) if ways else _NO_CONTACT[language],
        "respond_by": f"{assignment.respond_by.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M}",
        "respond_url": respond_url,
        "reasons": "\n".join(
            f"- {reason}"
            for item in assignment.explanation
            if (reason := _reason(item, language)) is not None
        ),
    }
    return Outreach(
        to=supporter.email,
        subject=Template(_SUBJECTS[language]).substitute(fields),
        body=_BODIES[language].substitute(fields),
        language=language,
    )


def notified(
    assignment: PeerAssigned, channel: Literal["email", "sms"], at: datetime
) -> PeerNotified:
    return PeerNotified(
        event_id=derived_event_id("peer_notified", assignment.assignment_id),
        assignment_id=assignment.assignment_id,
        case_id=assignment.case_id,
        profile=assignment.profile,
        channel=channel,
        notified_at=at,
        occurred_at=at,
        producer="notify",
        correlation_id=assignment.correlation_id,
        causation_id=assignment.event_id,
        hospital_id=assignment.hospital_id,
    )


def answered(
    assignment: PeerAssigned, accepted: bool, at: datetime
) -> AssignmentAccepted | AssignmentDeclined:
    """The supporter's answer, for matching (and reporting); an offer is answered once."""
    kind = AssignmentAccepted if accepted else AssignmentDeclined
    return kind(
        event_id=derived_event_id("assignment_answered", assignment.assignment_id),
        assignment_id=assignment.assignment_id,
        case_id=assignment.case_id,
        profile=assignment.profile,
        occurred_at=at,
        producer="notify",
        correlation_id=assignment.correlation_id,
        causation_id=assignment.event_id,
        hospital_id=assignment.hospital_id,
    )
