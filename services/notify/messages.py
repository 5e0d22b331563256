"""What a supporter is told, in their language: pure, no I/O.

Only what the supporter needs to reach out: the colleague's function, department and how to
reach them, and of the incident only its category, harm level and date. Never patient data.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from string import Template
from typing import Literal

from shared.events import (
    CaseContactRecorded,
    CaseProfile,
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

Kun je dit niet oppakken? Laat het de coördinator collegiale ondersteuning weten.

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

If you cannot take this on, please tell the peer-support coordinator.

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

_REASONS = {
    "nl": {
        "open_cases": (
            "je had {open_cases} lopende trajecten, niet meer dan andere beschikbare collega's"
        ),
        "last_assigned": "je laatste koppeling was op {last_assigned}",
        "never_assigned": "je bent nog niet eerder gekoppeld",
        "department": "je werkt niet op de afdeling van je collega ({department})",
        "not_involved": "je was zelf niet bij het incident betrokken",
    },
    "en": {
        "open_cases": "you had {open_cases} open cases, no more than other available supporters",
        "last_assigned": "your last match was on {last_assigned}",
        "never_assigned": "you have not been matched before",
        "department": "you do not work in your colleague's department ({department})",
        "not_involved": "you were not involved in the incident yourself",
    },
}


def _term(value: StrEnum, language: str) -> str:
    return _DUTCH[value] if language == "nl" else value.value.replace("_", " ")


def _reason(item: ScoreItem, language: str, profile: CaseProfile) -> str:
    """The matching rule in the supporter's words; a rule unknown here keeps its own."""
    phrases = _REASONS[language]
    if item.rule == "last_assigned" and not item.value:
        return phrases["never_assigned"]
    if item.rule not in phrases:
        return item.detail
    return phrases[item.rule].format(
        open_cases=int(item.value),
        last_assigned=f"{datetime.fromtimestamp(item.value, UTC):%Y-%m-%d}",
        department=profile.department,
    )


def render_outreach(assignment: PeerAssigned, contact: CaseContactRecorded) -> Outreach:
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
        "reasons": "\n".join(
            f"- {_reason(item, language, profile)}" for item in assignment.explanation
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
