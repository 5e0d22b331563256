"""What a programme coordinator is told, and when: pure, no I/O.

An escalation after death, severe harm or a calamity is mailed at once; the rest waits for
the hospital's daily digest. A mail says what is needed and links to the case on the desk;
where nobody on the roster fits, it carries how to reach the colleague, so the coordinator
can reach out themselves. Never patient data, never the colleague's name.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.notify.steps import kind_of
from shared.events import (
    AboutCase,
    CaseContactRecorded,
    CaseEscalated,
    ConcernRaisedBy,
    EscalationReason,
    Harm,
    NotificationFailed,
    SafetyConcernRaised,
    SupporterContact,
)
from shared.mail import Outreach
from shared.words import at_local, turned_away

ESCALATED = "escalated"
UNDELIVERED = "undelivered"
CONCERN = "concern"
"""A concern for the colleague's safety: mailed at once to the coordinators and the
hospital's professional back-up (`SAFETY_CONTACTS`)."""


@dataclass(frozen=True)
class Alert:
    """One thing a coordinator should hear of, about one case."""

    alert_id: str
    kind: str
    hospital_id: str
    case_id: str
    urgent: bool
    at: datetime
    needed: str
    about: str
    """The colleague's function and department, the incident's category, harm and date."""
    no_peer: bool = False
    """Nobody on the roster fits: the mail carries how to reach the colleague."""
    reach_colleague: bool = False
    """The mail carries how to reach the colleague (a safety concern)."""
    assignment_id: str | None = None
    step: str | None = None
    rejections: Mapping[str, int] = field(default_factory=dict)


def escalation_alert(event: CaseEscalated) -> Alert:
    no_peer = event.reason is EscalationReason.NO_PEER_AVAILABLE
    needed = (
        "Nobody on the roster fits this case: assign a supporter by hand, or reach out "
        "to the colleague yourself."
        if no_peer
        else "Offers for this case were declined or not answered: it is yours to assign."
    )
    return Alert(
        alert_id=str(event.event_id),
        kind=ESCALATED,
        hospital_id=event.hospital_id,
        case_id=str(event.case_id),
        urgent=event.profile.urgent,
        at=event.occurred_at,
        needed=needed,
        about=_about(event),
        no_peer=no_peer,
        rejections=dict(event.rejections),
    )


def undelivered_alert(event: NotificationFailed) -> Alert:
    return Alert(
        alert_id=str(event.event_id),
        kind=UNDELIVERED,
        hospital_id=event.hospital_id,
        case_id=str(event.case_id),
        urgent=False,
        at=event.occurred_at,
        needed=(
            f"The supporter's {_STEPS.get(kind_of(event.step), 'message')} by "
            f"{_CHANNELS[event.channel]} did not get through ({event.reason}): check with them."
        ),
        about=_about(event),
        assignment_id=str(event.assignment_id),
        step=event.step,
    )


def concern_alert(event: SafetyConcernRaised, supporter: SupporterContact | None) -> Alert:
    """Who raised it and whom to call; never what was said (nothing of it travels)."""
    raised_by = "the supporter" if event.raised_by is ConcernRaisedBy.SUPPORTER else "a coordinator"
    needed = f"A concern for the colleague's safety was raised by {raised_by}: act within the hour."
    if supporter is not None:
        ways = ", ".join(w for w in (supporter.phone, supporter.email) if w)
        needed += f" Call the supporter, {supporter.display_name}: {ways}."
    return Alert(
        alert_id=str(event.event_id),
        kind=CONCERN,
        hospital_id=event.hospital_id,
        case_id=str(event.case_id),
        urgent=True,
        at=event.occurred_at,
        needed=needed,
        about=_about(event),
        reach_colleague=True,
    )


_STEPS = {
    "offer": "offer",
    "reminder": "reminder",
    "follow_up": "follow-up",
    "closing": "question whether support ended",
    "handed_over": "thanks for a handover",
}
_CHANNELS = {"email": "e-mail", "sms": "text message"}
_HARM = {
    Harm.NONE: "no harm",
    Harm.MILD: "mild harm",
    Harm.MODERATE: "moderate harm",
    Harm.SEVERE: "severe harm",
    Harm.DEATH: "a death",
    Harm.UNKNOWN: "harm not known",
}


def _about(event: AboutCase) -> str:
    p = event.profile
    calamity = ", a calamity" if p.calamity else ""
    function, category = (str(v).replace("_", " ") for v in (p.function, p.category))
    return (
        f"a colleague ({function}) in {p.department}; incident: {category}, {_HARM[p.harm]}"
        f"{calamity}, on {p.incident_occurred_at:%Y-%m-%d}"
    )


def alert_mail(
    alert: Alert, contact: CaseContactRecorded | None, desk_url: str, to: str
) -> Outreach:
    """One urgent alert, mailed at once."""
    concern = alert.kind == CONCERN
    body = "\n".join(
        [
            "A colleague's safety is a concern." if concern else "A case needs a coordinator now.",
            "",
            *_lines(alert, contact, desk_url),
            "",
            "Peer support",
        ]
    )
    subject = (
        f"Peer support: a concern for a colleague's safety ({alert.hospital_id})"
        if concern
        else f"Peer support: a case needs you now ({alert.hospital_id})"
    )
    return Outreach(to=to, subject=subject, body=body, language="en")


def digest_mail(
    hospital_id: str,
    alerts: Sequence[Alert],
    contacts: Mapping[str, CaseContactRecorded],
    desk_url: str,
    to: str,
    zone: str,
) -> Outreach:
    """What came up since the last digest, oldest first, at the hospital's time."""
    lines = [
        f"{len(alerts)} thing(s) came up for the coordinator since the last digest. The "
        f"worklist on the desk has everything that still needs you: {desk_url}/",
        "",
    ]
    for n, alert in enumerate(sorted(alerts, key=lambda a: a.at), 1):
        lines += [
            f"{n}. {at_local(alert.at, zone)}",
            *_lines(alert, contacts.get(alert.case_id), desk_url),
            "",
        ]
    subject = f"Peer support: the coordinator's digest ({hospital_id}, {len(alerts)})"
    return Outreach(to=to, subject=subject, body="\n".join([*lines, "Peer support"]), language="en")


def _lines(alert: Alert, contact: CaseContactRecorded | None, desk_url: str) -> list[str]:
    lines = [
        alert.needed,
        f"The case: {alert.about}.",
        f"On the desk: {desk_url}/cases/{alert.case_id}",
    ]
    if alert.rejections:
        lines.append(f"Turned away on the roster: {turned_away(alert.rejections)}.")
    if alert.no_peer or alert.reach_colleague:
        ways = [w for w in (contact.email, contact.phone) if w] if contact else []
        reach = ", ".join(ways) if ways else "no contact details were given"
        lines.append(f"To reach the colleague yourself: {reach}.")
    return lines


def due_digest(last_sent: datetime | None, now: datetime, every: timedelta) -> bool:
    """At most one digest a hospital a day (`every`), as soon as there is something."""
    return last_sent is None or now - last_sent >= every
