"""Asking for support without an incident, and a professional's standing choices, as the
request page takes them: pure, no I/O.

A form holds no free text and no address: codes and choices from lists. Who asks is known
from the hospital's sign-in proxy, or from the staff directory's work address for their staff
id, where the link to confirm goes; who a request is for, and how to reach them, from the
directory too. Who referred a colleague is never part of the request that follows.
"""

import uuid
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, model_validator

from services.intake.directory import StaffMember
from shared.events import (
    Code,
    Function,
    HospitalId,
    LanguageCode,
    OutreachPreferenceSet,
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
    """Who fills the form in: their hospital and staff id (the sign-in proxy's, if it vouches)."""

    hospital_id: HospitalId
    staff_id: Code


class AskForm(Asker):
    for_whom: Literal["self", "colleague"] = "self"
    colleague_staff_id: Code | None = None
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


def support_request(form: AskForm, professional: StaffMember, now: datetime) -> SupportRequested:
    """The request as intake takes it in, about the professional as the directory knows them;
    the referrer's staff id stays out."""
    return SupportRequested(
        **_as_staff_event(form, now),
        event_type="support.requested",
        request_id=uuid.uuid4().hex[:20],
        requested_by=form.for_whom,
        professional=professional.as_participant(),
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


_CHOICE_NOTICE = {
    "nl": (
        "Je keuze over benaderd worden is opgeslagen (peer support)",
        "Op de pagina van peer support is je vaste keuze opgeslagen: {choice}.\n\n"
        "Heb je dit niet zelf gedaan? Laat het de coördinator van het programma weten; je "
        "kunt je keuze op de pagina altijd weer veranderen.\n\nPeer support",
    ),
    "en": (
        "Your choice about being approached was saved (peer support)",
        "On the peer support page your standing choice was saved: {choice}.\n\n"
        "Was it not you? Tell the programme's coordinator; you can always change your choice "
        "on the page.\n\nPeer support",
    ),
}
CHOICES = {
    "nl": {
        "welcome": "benader me gerust na een incident",
        "declined": "benader me liever niet na een incident",
    },
    "en": {
        "welcome": "do approach me after an incident",
        "declined": "please do not approach me after an incident",
    },
}


def choice_notice(to: str, outreach: str, language: str) -> Outreach:
    """Whoever's standing choice changes is told at their own address, whoever changed it."""
    subject, body = _CHOICE_NOTICE[language]
    text = body.format(choice=CHOICES[language][outreach])
    return Outreach(to=to, subject=subject, body=text, language=language)
