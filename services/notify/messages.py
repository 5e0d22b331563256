"""What a supporter is told, in their language: pure, no I/O.

Only what the supporter needs to reach out: the colleague's function, department and how to
reach them, and of the incident only its category, harm level and date. Never patient data.
"""

from dataclasses import dataclass
from datetime import datetime
from string import Template
from typing import Literal

from shared.events import CaseContactRecorded, PeerAssigned, PeerNotified, derived_event_id


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


def render_outreach(assignment: PeerAssigned, contact: CaseContactRecorded) -> Outreach:
    supporter = assignment.supporter
    language = supporter.language if supporter.language in _BODIES else "en"
    profile = assignment.profile
    ways = [w for w in (contact.email, contact.phone) if w]
    fields = {
        "supporter": supporter.display_name,
        "function": profile.function.value.replace("_", " "),
        "department": profile.department,
        "date": profile.incident_occurred_at.strftime("%Y-%m-%d"),
        "category": profile.category.value,
        "harm": profile.harm.value,
        "how_to_reach": ", ".join(ways) if ways else _NO_CONTACT[language],
        "reasons": "\n".join(f"- {item.detail}" for item in assignment.explanation),
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
