"""Asking for support without an incident, and a professional's standing choices, as the
request page takes them: pure, no I/O.

A form holds no free text: codes, choices from lists, addresses. Who asks is known from the
hospital's sign-in proxy, or from a work address the asker confirms through a mailed link.
Who referred a colleague is never part of the request that follows.
"""

import uuid
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, model_validator

from shared.events import (
    Code,
    Contact,
    Email,
    Function,
    HospitalId,
    LanguageCode,
    OutreachPreferenceSet,
    Participant,
    Phone,
    SupportPreferences,
    SupportRequested,
)
from shared.mail import Outreach

SOURCE = "request-page"
"""The source system of everything the page takes in."""
PAGE_LANGUAGES = ("nl", "en")


class Form(BaseModel):
    """An HTML form's fields: an empty field is a field not filled in."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_none(cls, values: Any) -> Any:
        if isinstance(values, dict):
            return {k: (v.strip() or None) if isinstance(v, str) else v for k, v in values.items()}
        return values


class Asker(Form):
    """Who fills the form in: their hospital, staff id and work address."""

    hospital_id: HospitalId
    staff_id: Code
    email: Email | None = None
    """Needed unless the hospital's sign-in proxy says who asks."""


class AskForm(Asker):
    for_whom: Literal["self", "colleague"] = "self"
    colleague_staff_id: Code | None = None
    function: Function
    department: Code
    """A department's code, as the hospital writes it ("ICU", "ED"): no free text from a
    public page reaches a supporter's mail or a report."""
    reach_email: Email | None = None
    reach_phone: Phone | None = None
    prefer_department: Literal["own", "other"] | None = None
    prefer_function: Function | None = None
    prefer_language: LanguageCode | None = None
    prefer_supporter: Code | None = None

    @model_validator(mode="after")
    def _colleague_named(self) -> Self:
        if self.for_whom == "colleague" and self.colleague_staff_id is None:
            raise ValueError("give the staff id of the colleague you are concerned about")
        return self

    @property
    def professional_staff_id(self) -> str:
        """Whom the support is for."""
        return self.colleague_staff_id if self.colleague_staff_id else self.staff_id


class ChoiceForm(Asker):
    outreach: Literal["welcome", "declined"]
    channel: Literal["email", "phone"] | None = None
    language: LanguageCode | None = None


def address_refusal(
    email: str | None, hospital_id: str, domains: dict[str, list[str]]
) -> str | None:
    """Why this address cannot confirm a request for the hospital, if it cannot."""
    allowed = domains.get(hospital_id)
    if not allowed:
        return f"requests for {hospital_id} are not taken on this page"
    if email is None:
        return "give your work e-mail address: the link to confirm goes there"
    if email.rsplit("@", 1)[-1].lower() not in {d.lower() for d in allowed}:
        return f"use your work e-mail address at {' or '.join(allowed)}"
    return None


def support_request(form: AskForm, now: datetime, confirmed_email: str | None) -> SupportRequested:
    """The request as intake takes it in; the referrer's staff id and address stay out."""
    own = form.for_whom == "self"
    reach_email = form.reach_email or (confirmed_email if own else None)
    return SupportRequested(
        **_as_staff_event(form, now),
        event_type="support.requested",
        request_id=uuid.uuid4().hex[:20],
        requested_by=form.for_whom,
        professional=Participant(
            staff_id=form.professional_staff_id,
            function=form.function,
            department=form.department,
            contact=Contact(email=reach_email, phone=form.reach_phone),
        ),
        preferences=SupportPreferences(
            department=form.prefer_department,
            function=form.prefer_function,
            language=form.prefer_language,
            supporter_id=form.prefer_supporter,
        ),
    )


def outreach_choice(form: ChoiceForm, now: datetime) -> OutreachPreferenceSet:
    return OutreachPreferenceSet(
        **_as_staff_event(form, now),
        event_type="staff.outreach_preference",
        staff_id=form.staff_id,
        outreach=form.outreach,
        channel=form.channel,
        language=form.language,
    )


def _as_staff_event(form: Asker, now: datetime) -> dict[str, Any]:
    """What every staff event the page makes carries, as a staff system's would."""
    return {
        "event_id": uuid.uuid4(),
        "schema_version": 1,
        "occurred_at": now,
        "source_system": SOURCE,
        "hospital_id": form.hospital_id,
    }


_CONFIRMATION = {
    "nl": (
        "Bevestig je verzoek (peer support)",
        "Je vroeg via de pagina van peer support om {what}.\n\nOpen deze link en bevestig "
        "het met de knop (hij werkt één keer, {hours} uur lang):\n{url}\n\n"
        "Vroeg je niets? Dan gebeurt er niets: negeer deze e-mail.\n\nPeer support",
    ),
    "en": (
        "Confirm your request (peer support)",
        "You asked on the peer support page for {what}.\n\nOpen this link and confirm it "
        "with the button (it works once, for {hours} hours):\n{url}\n\n"
        "Did you not ask? Then nothing happens: ignore this e-mail.\n\nPeer support",
    ),
}
WHAT = {
    # What was asked for, as the confirmation mail and page put it.
    "nl": {
        "self": "steun voor jezelf",
        "colleague": "steun voor een collega",
        "choice": "een keuze over benaderd worden",
    },
    "en": {
        "self": "support for yourself",
        "colleague": "support for a colleague",
        "choice": "a choice about being approached",
    },
}


def confirmation_mail(to: str, url: str, what: str, language: str, hours: int) -> Outreach:
    """`what`: `self`, `colleague` or `choice`."""
    subject, body = _CONFIRMATION[language]
    text = body.format(what=WHAT[language][what], hours=hours, url=url)
    return Outreach(to=to, subject=subject, body=text, language=language)
