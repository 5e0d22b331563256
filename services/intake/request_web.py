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

from services.intake.directory import StaffMember
from services.intake.directory_store import StaffDirectory
from services.intake.request_store import PendingRequests
from services.intake.requests import (
    PAGE_LANGUAGES,
    WHAT,
    AskForm,
    ChoiceForm,
    choice_notice,
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
        "link_to_directory": "De link om te bevestigen gaat naar het werkadres dat het "
        "ziekenhuis voor dit personeelsnummer kent.",
        "for_whom": "Voor wie?",
        "myself": "Voor mezelf",
        "a_colleague": "Voor een collega over wie ik me zorgen maak (je naam wordt niet "
        "doorgegeven)",
        "colleague_staff_id": "Personeelsnummer van je collega",
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
        "check_mail_text": "Als het ziekenhuis dit personeelsnummer kent, staat er een link in "
        "de mailbox van je werkadres. Er gebeurt niets tot je hem gebruikt.",
        "not_taken": "Voor dit ziekenhuis neemt deze pagina geen verzoeken aan.",
        "unknown_colleague": "Het ziekenhuis kent dat personeelsnummer van je collega niet. "
        "Kijk het na, of vraag de coördinator van het programma.",
        "unknown_self": "Het personeelsbestand van het ziekenhuis kent je niet. Vraag de "
        "coördinator van het programma.",
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
        "link_to_directory": "The link to confirm goes to the work address the hospital "
        "holds for this staff id.",
        "for_whom": "For whom?",
        "myself": "For myself",
        "a_colleague": "For a colleague I am concerned about (your name is not passed on)",
        "colleague_staff_id": "Your colleague's staff id",
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
        "check_mail_text": "If the hospital knows this staff id, a link is in the mailbox of "
        "your work address. Nothing happens until you use it.",
        "not_taken": "This page takes no requests for this hospital.",
        "unknown_colleague": "The hospital does not know your colleague's staff id. Check it, "
        "or ask the programme's coordinator.",
        "unknown_self": "The hospital's staff directory does not know you. Ask the "
        "programme's coordinator.",
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
    directory: StaffDirectory
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
        """Taken at once behind the sign-in proxy; otherwise a link goes to the address the
        staff directory holds for the staff id given, and the page says nothing of whether
        it knows that staff id: nobody learns a colleague's address, nor acts in their name."""
        fields = await _fields(request)
        if vouched := self.identity(request):
            fields["staff_id"] = vouched
        try:
            form: AskForm | ChoiceForm = (
                AskForm(**fields) if kind == "ask" else ChoiceForm(**fields)
            )
        except ValidationError as error:
            return self.form_page(request, lang, describe(error), 422)
        t = TEXTS[lang]
        if form.hospital_id not in self.settings.mail_domains:
            return self.form_page(request, lang, t["not_taken"], 422)
        known = await self.directory.find(form.hospital_id, _whom(form))
        client = request.client.host if request.client else ""
        asker = known.get(form.staff_id)
        if refused := await self._past_allowance(form, asker, vouched, client):
            return self.form_page(request, lang, t[refused], 429)
        for_colleague = isinstance(form, AskForm) and form.for_whom == "colleague"
        if _professional(form) not in known and (for_colleague or vouched):
            unknown = "unknown_colleague" if for_colleague else "unknown_self"
            return self.form_page(request, lang, t[unknown], 422)
        if vouched:
            await self._act(kind, form, known, lang)
            return self._done(lang, kind)
        if form.staff_id not in known:
            return self._check_mail(lang)
        return await self._confirm_by_mail(lang, kind, form, known[form.staff_id])

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
        known = await self.directory.find(form.hospital_id, _whom(form))
        if _professional(form) not in known:  # left the hospital meanwhile
            return self._invalid(lang)
        await self._act(kind, form, known, lang)
        return self._done(lang, kind)

    async def _confirm_by_mail(
        self, lang: str, kind: str, form: AskForm | ChoiceForm, asker: StaffMember
    ) -> Response:
        token, now = new_token(), datetime.now(UTC)
        lasting = timedelta(hours=self.settings.request_confirm_hours)
        await self.pending.hold(token_hash(token), kind, self._kept(form), now + lasting)
        what = form.for_whom if isinstance(form, AskForm) else "choice"
        url = f"{self.settings.request_url}/request/confirm?lang={lang}&t={token}"
        hours = int(self.settings.request_confirm_hours)
        await self.mail.send(
            confirmation_mail(asker.email, url, what, lang, hours), f"confirm.{token[-16:]}"
        )
        return self._check_mail(lang)

    def _check_mail(self, lang: str) -> HTMLResponse:
        t = TEXTS[lang]
        return self.page(lang, "message", heading=t["check_mail"], text=t["check_mail_text"])

    def _kept(self, form: AskForm | ChoiceForm) -> dict[str, Any]:
        """What waits for the confirmation: of a referrer, only their pseudonym."""
        kept = form.model_dump(mode="json")
        if isinstance(form, AskForm) and form.for_whom == "colleague":
            kept["staff_id"] = pseudonymise(self.pseudonym_key, form.hospital_id, form.staff_id)
        return kept

    async def _act(
        self, kind: str, form: AskForm | ChoiceForm, known: dict[str, StaffMember], lang: str
    ) -> None:
        """Published on the staff topic, as a staff system's request or choice would be, and
        taken in from there; whoever's standing choice it is, is told at their own address."""
        now = datetime.now(UTC)
        professional = known[_professional(form)]
        event: StaffEvent = (
            support_request(form, professional, now)
            if isinstance(form, AskForm)
            else outreach_choice(form, now)
        )

        async def publish(session: AsyncClientSession, at: datetime) -> Announcements:
            return [(self.settings.topics.staff, event)]

        await self.unit_of_work.run(publish)
        if isinstance(form, ChoiceForm):
            notice = choice_notice(professional.email, form.outreach, lang)
            await self.mail.send(notice, f"choice.{event.event_id}")

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

    async def _past_allowance(
        self,
        form: AskForm | ChoiceForm,
        asker: StaffMember | None,
        vouched: str | None,
        client: str,
    ) -> str | None:
        """Why the page takes no more from this asker now (a key of `TEXTS`), if it does not:
        counted per vouched identity, or per confirming address (the directory's) from one
        client address and from everyone; and per hospital."""
        settings, hospital_id = self.settings, form.hospital_id
        hospital = Allowance(
            self._key(hospital_id, "hospital"), settings.requests_allowed_per_hospital
        )
        own: list[Allowance] = []
        if vouched:
            own = [
                Allowance(self._key(hospital_id, f"vouched:{vouched}"), settings.requests_allowed)
            ]
        elif asker:
            to = f"address:{asker.email.lower()}"
            own = [
                Allowance(self._key(hospital_id, f"{to} from:{client}"), settings.requests_allowed),
                Allowance(self._key(hospital_id, to), settings.requests_allowed_per_recipient),
            ]
        exceeded = await self.allowances.spend([*own, hospital], datetime.now(UTC))
        if exceeded is None:
            return None
        return "too_many_hospital" if exceeded is hospital else "too_many"

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


def _professional(form: AskForm | ChoiceForm) -> str:
    """Whose the request or the choice is."""
    return form.professional_staff_id if isinstance(form, AskForm) else form.staff_id


def _whom(form: AskForm | ChoiceForm) -> set[str]:
    """The staff the directory is asked about: who asks, and whom it is for."""
    return {form.staff_id, _professional(form)}


async def _fields(request: Request) -> dict[str, str]:
    """A form's fields, the first value of each."""
    return {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}


def _language(lang: str) -> str:
    return lang if lang in PAGE_LANGUAGES else "nl"
