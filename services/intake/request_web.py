"""The request page, `/request`, in Dutch and English: a professional asks for support for
themselves or for a colleague, or sets their standing choices.

Who asks is known from `TRUSTED_IDENTITY_HEADER` when the request comes through one of
`TRUSTED_PROXIES` (the hospital's sign-in proxy); otherwise nothing happens until the link
mailed to the asker's work address is opened and its button pressed, once. Each confirming
address and each vouched identity may ask a few times an hour, and each hospital's page so
many times: counted in the store."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from pymongo.asynchronous.client_session import AsyncClientSession

from services.intake.request_store import PendingRequests
from services.intake.requests import (
    PAGE_LANGUAGES,
    WHAT,
    AskForm,
    ChoiceForm,
    address_refusal,
    confirmation_mail,
    outreach_choice,
    support_request,
)
from services.intake.settings import IntakeSettings
from shared.access import new_token, token_hash
from shared.allowances import Allowance, Allowances
from shared.errors import describe
from shared.events import Function, StaffEvent
from shared.mail import EmailChannel
from shared.mongo import Announcements, UnitOfWork
from shared.pages import templates_beside
from shared.pseudonyms import pseudonymise
from shared.web import among, peer

_templates = templates_beside(__file__)

TEXTS = {
    "nl": {
        "title": "Collegiale ondersteuning",
        "ask": "Vraag om ondersteuning",
        "confidential": "Vertrouwelijk en los van elk onderzoek: een getrainde collega neemt "
        "contact op. Schrijf hier geen details over patiënten of het voorval.",
        "hospital": "Ziekenhuis",
        "staff_id": "Je personeelsnummer",
        "email": "Je werk-e-mailadres (daar komt de bevestigingslink)",
        "for_whom": "Voor wie?",
        "myself": "Voor mezelf",
        "a_colleague": "Voor een collega over wie ik me zorgen maak (je naam wordt niet "
        "doorgegeven)",
        "colleague_staff_id": "Personeelsnummer van je collega",
        "function": "Functie (van wie steun krijgt)",
        "department": "Afdeling (van wie steun krijgt)",
        "reach_email": "Bereikbaar via e-mail",
        "reach_phone": "Bereikbaar via telefoon",
        "wishes": "Wensen (niet verplicht)",
        "prefer_department": "Een collega van",
        "own": "de eigen afdeling",
        "other": "een andere afdeling",
        "no_matter": "maakt niet uit",
        "prefer_function": "Met de functie",
        "prefer_language": "In de taal",
        "prefer_supporter": "Een bepaalde collega uit het team (code)",
        "send": "Versturen",
        "choices": "Je vaste keuzes",
        "welcome": "Benader mij gerust na een incident",
        "declined": "Benader mij liever niet na een incident",
        "channel": "Liefst via",
        "phone": "telefoon",
        "save": "Opslaan",
        "check_mail": "Kijk in je e-mail",
        "check_mail_text": "We stuurden een link naar {email}. Er gebeurt niets tot je hem "
        "gebruikt.",
        "done": "Dank je wel",
        "done_ask": "Je verzoek is ontvangen: een getrainde collega neemt contact op.",
        "done_choice": "Je keuze is opgeslagen.",
        "invalid": "Deze link werkt niet",
        "invalid_text": "Hij is verlopen, al gebruikt of niet van ons. Er is niets gebeurd.",
        "too_many": "Je vroeg het al een paar keer; probeer het over een uur opnieuw.",
        "too_many_hospital": "De pagina neemt dit uur geen verzoeken meer aan voor dit "
        "ziekenhuis. Probeer het later opnieuw, of vraag de coördinator van het programma.",
        "confirm": "Bevestig je verzoek",
        "confirm_text": "Je vroeg om {what}. Er gebeurt niets tot je op de knop drukt.",
        "confirm_button": "Bevestigen",
    },
    "en": {
        "title": "Peer support",
        "ask": "Ask for support",
        "confidential": "Confidential and separate from any investigation: a trained colleague "
        "will reach out. Do not write details of patients or the event here.",
        "hospital": "Hospital",
        "staff_id": "Your staff id",
        "email": "Your work e-mail address (the link to confirm goes there)",
        "for_whom": "For whom?",
        "myself": "For myself",
        "a_colleague": "For a colleague I am concerned about (your name is not passed on)",
        "colleague_staff_id": "Your colleague's staff id",
        "function": "Function (of who is to be supported)",
        "department": "Department (of who is to be supported)",
        "reach_email": "Reachable by e-mail at",
        "reach_phone": "Reachable by phone at",
        "wishes": "Wishes (optional)",
        "prefer_department": "A colleague from",
        "own": "the own department",
        "other": "another department",
        "no_matter": "no matter",
        "prefer_function": "With the function",
        "prefer_language": "In the language",
        "prefer_supporter": "A particular colleague from the team (code)",
        "send": "Send",
        "choices": "Your standing choices",
        "welcome": "Do approach me after an incident",
        "declined": "Please do not approach me after an incident",
        "channel": "Preferably by",
        "phone": "phone",
        "save": "Save",
        "check_mail": "Check your e-mail",
        "check_mail_text": "We sent a link to {email}. Nothing happens until you use it.",
        "done": "Thank you",
        "done_ask": "Your request was received: a trained colleague will reach out.",
        "done_choice": "Your choice was saved.",
        "invalid": "This link does not work",
        "invalid_text": "It has expired, was used already or is not ours. Nothing happened.",
        "too_many": "You asked a few times already; try again in an hour.",
        "too_many_hospital": "The page takes no more requests for this hospital this hour. "
        "Try again later, or ask the programme's coordinator.",
        "confirm": "Confirm your request",
        "confirm_text": "You asked for {what}. Nothing happens until you press the button.",
        "confirm_button": "Confirm",
    },
}


@dataclass
class RequestPages:
    unit_of_work: UnitOfWork
    pending: PendingRequests
    mail: EmailChannel
    settings: IntakeSettings
    allowances: Allowances
    pseudonym_key: bytes

    def page(self, lang: str, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("problem", "")
        html = _templates.get_template(f"{name}.html").render(lang=lang, t=TEXTS[lang], **values)
        return HTMLResponse(html, status)

    def form_page(
        self, request: Request, lang: str, problem: str = "", status: int = 200
    ) -> HTMLResponse:
        return self.page(
            lang,
            "request",
            status,
            problem=problem,
            hospitals=sorted(self.settings.mail_domains),
            functions=list(Function),
            signed_in=self.identity(request) is not None,
        )

    def identity(self, request: Request) -> str | None:
        """The staff id the hospital's sign-in proxy vouches for, if the connection came from
        it (its socket, not an `X-Forwarded-For` anyone can write)."""
        header = self.settings.trusted_identity_header
        if header and among(peer(request.scope), self.settings.trusted_proxies):
            return request.headers.get(header) or None
        return None

    async def submit(self, request: Request, lang: str, kind: str) -> Response:
        fields = await _fields(request)
        vouched = self.identity(request)
        if vouched:
            fields["staff_id"] = vouched
        try:
            form: AskForm | ChoiceForm = (
                AskForm(**fields) if kind == "ask" else ChoiceForm(**fields)
            )
        except ValidationError as error:
            return self.form_page(request, lang, describe(error), 422)
        if refused := await self._past_allowance(form, vouched):
            return self.form_page(request, lang, TEXTS[lang][refused], 429)
        if vouched:
            await self._act(kind, form, None)
            return self._done(lang, kind)
        if refused := address_refusal(form.email, form.hospital_id, self.settings.mail_domains):
            return self.form_page(request, lang, refused, 422)
        return await self._confirm_by_mail(lang, kind, form)

    async def confirmation(self, lang: str, token: str) -> Response:
        """What opening the link shows: what it confirms, and the button. Nothing happens
        yet, so a mail scanner that opens every link confirms nothing."""
        kind = await self.pending.waiting(token_hash(token), datetime.now(UTC)) if token else None
        if kind is None:
            return self._invalid(lang)
        what = WHAT[lang][kind if kind == "choice" else "self"]
        return self.page(
            lang, "confirm", text=TEXTS[lang]["confirm_text"].format(what=what), token=token
        )

    async def confirm(self, lang: str, request: Request) -> Response:
        token = (await _fields(request)).get("t", "")
        held = await self.pending.take(token_hash(token), datetime.now(UTC)) if token else None
        if held is None:
            return self._invalid(lang)
        kind, fields = held
        form = AskForm(**fields) if kind == "ask" else ChoiceForm(**fields)
        await self._act(kind, form, form.email)
        return self._done(lang, kind)

    async def _confirm_by_mail(self, lang: str, kind: str, form: AskForm | ChoiceForm) -> Response:
        token, now = new_token(), datetime.now(UTC)
        lasting = timedelta(hours=self.settings.request_confirm_hours)
        await self.pending.hold(token_hash(token), kind, self._kept(form), now + lasting)
        what = form.for_whom if isinstance(form, AskForm) else "choice"
        url = f"{self.settings.request_url}/request/confirm?lang={lang}&t={token}"
        assert form.email is not None, "checked by address_refusal"
        hours = int(self.settings.request_confirm_hours)
        await self.mail.send(
            confirmation_mail(form.email, url, what, lang, hours), f"confirm.{token[-16:]}"
        )
        t = TEXTS[lang]
        return self.page(
            lang,
            "message",
            heading=t["check_mail"],
            text=t["check_mail_text"].format(email=form.email),
        )

    def _kept(self, form: AskForm | ChoiceForm) -> dict[str, Any]:
        """What waits for the confirmation: of a referrer, only their pseudonym."""
        kept = form.model_dump(mode="json")
        if isinstance(form, AskForm) and form.for_whom == "colleague":
            kept["staff_id"] = pseudonymise(self.pseudonym_key, form.hospital_id, form.staff_id)
            kept["email"] = None
        return kept

    async def _act(self, kind: str, form: AskForm | ChoiceForm, confirmed: str | None) -> None:
        """Published on the staff topic, as a staff system's request or choice would be, and
        taken in from there."""
        now = datetime.now(UTC)
        event: StaffEvent = (
            support_request(form, now, confirmed)
            if isinstance(form, AskForm)
            else outreach_choice(form, now)
        )

        async def publish(session: AsyncClientSession, at: datetime) -> Announcements:
            return [(self.settings.topics.staff, event)]

        await self.unit_of_work.run(publish)

    def _invalid(self, lang: str) -> HTMLResponse:
        t = TEXTS[lang]
        return self.page(lang, "message", 400, heading=t["invalid"], text=t["invalid_text"])

    def _done(self, lang: str, kind: str) -> Response:
        t = TEXTS[lang]
        return self.page(
            lang,
            "message",
            heading=t["done"],
            text=t["done_ask" if kind == "ask" else "done_choice"],
        )

    async def _past_allowance(self, form: AskForm | ChoiceForm, vouched: str | None) -> str | None:
        """Why the page takes no more from this asker now (a key of `TEXTS`), if it does not:
        counted per confirming address or vouched identity, and per hospital."""
        asker = f"vouched:{vouched}" if vouched else f"address:{(form.email or '').lower()}"
        own = Allowance(self._key(form.hospital_id, asker), self.settings.requests_allowed)
        hospital = Allowance(
            self._key(form.hospital_id, "hospital"), self.settings.requests_allowed_per_hospital
        )
        exceeded = await self.allowances.spend([own, hospital], datetime.now(UTC))
        if exceeded is None:
            return None
        return "too_many" if exceeded is own else "too_many_hospital"

    def _key(self, hospital_id: str, asker: str) -> str:
        """Keyed like a pseudonym: the store holds no address or staff id."""
        return pseudonymise(self.pseudonym_key, hospital_id, asker)


def request_router(pages: RequestPages) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/request")
    async def form(request: Request, lang: str = "nl") -> Response:
        return pages.form_page(request, _language(lang))

    @router.post("/request/ask")
    async def ask(request: Request, lang: str = "nl") -> Response:
        return await pages.submit(request, _language(lang), "ask")

    @router.post("/request/choices")
    async def choices(request: Request, lang: str = "nl") -> Response:
        return await pages.submit(request, _language(lang), "choice")

    @router.get("/request/confirm")
    async def confirmation(lang: str = "nl", t: str = "") -> Response:
        return await pages.confirmation(_language(lang), t)

    @router.post("/request/confirm")
    async def confirm(request: Request, lang: str = "nl") -> Response:
        return await pages.confirm(_language(lang), request)

    return router


async def _fields(request: Request) -> dict[str, str]:
    """A form's fields, the first value of each."""
    return {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}


def _language(lang: str) -> str:
    return lang if lang in PAGE_LANGUAGES else "nl"
