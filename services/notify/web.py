"""The pages supporters reach through the links in their messages: answering an offer and
logging a contact. Each link is signed, expires, and records what it is for once."""

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from faststream.asgi.types import Receive, Scope, Send
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from starlette.requests import Request
from starlette.responses import HTMLResponse

from services.notify.links import Link, LinkProblem, Links, Purpose
from services.notify.messages import ContactEntry, contact_date_refusal
from services.notify.notifier import Notifier
from services.notify.pages import (
    Closed,
    Outcome,
    closed_page,
    concern_page,
    contact_form_page,
    continuing_page,
    date_refusal,
    end_form_page,
    ended_page,
    logged_page,
    not_in_support_page,
    outcome_page,
    problem_page,
    question_page,
    raised_page,
    used_page,
)
from services.notify.store import Offer
from shared.errors import describe
from shared.events import ENDED_BY_SUPPORTER, ReferralKind, SupportOutcome

ANSWERS = {"accept": Outcome.ACCEPTED, "decline": Outcome.DECLINED}
OfferPage = Callable[[Link, Offer, str, dict[str, str] | None], Awaitable[HTMLResponse]]
"""What a link's page makes of its offer: the form (None for a GET) in, the page out."""


class Ending(BaseModel):
    """What the ending form may say: an outcome of the supporter's, and for a referral, the
    kind of help (never a name)."""

    model_config = ConfigDict(extra="ignore")

    outcome: SupportOutcome
    referral: ReferralKind | None = None

    @field_validator("referral", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return value or None

    @model_validator(mode="after")
    def _chosen_by_supporter(self) -> Self:
        if self.outcome not in ENDED_BY_SUPPORTER:
            raise ValueError(f"{self.outcome} is not an ending a supporter chooses")
        if (self.referral is None) == (self.outcome is SupportOutcome.REFERRED):
            raise ValueError("choose the kind of help exactly when support was referred")
        return self


class SupporterPages:
    def __init__(self, notifier: Notifier, links: Links, log: Any) -> None:
        self.notifier = notifier
        self.links = links
        self.log = log

    async def respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET shows the question, POST records the answer (once)."""
        request = Request(scope, receive)
        token = request.query_params.get("t", "")
        link = self.links.read(token, Purpose.RESPOND)
        if not isinstance(link, Link):
            response = self._refused(link)
        elif request.method == "POST":
            answer = ANSWERS.get((await _form(request)).get("answer", ""))
            response = await self._answer(link, answer) if answer else self._refused(None)
        else:
            offer = await self.notifier.offer(str(link.assignment_id))
            if offer and offer.open and offer.too_late_to_answer(datetime.now(UTC)):
                response = HTMLResponse(closed_page(offer.language, Closed.LATE), 409)
            else:
                response = HTMLResponse(question_page(offer.language if offer else "en", token))
        await response(scope, receive, send)

    async def _answer(self, link: Link, answer: Outcome) -> HTMLResponse:
        offer = await self.notifier.offer(str(link.assignment_id))
        if offer is None:
            return HTMLResponse(closed_page("en", Closed.UNKNOWN), 404)
        if not await self.notifier.answer(offer, answer):
            return HTMLResponse(closed_page(offer.language, _why_closed(offer)), 409)
        return HTMLResponse(outcome_page(offer.language, answer))

    async def log_contact(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET shows the form, POST records one contact; each link records one."""
        await self._offer_page(scope, receive, send, Purpose.LOG_CONTACT, self._contact)

    async def end_support(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET asks how support stands; POST ends it with an outcome, or continues it."""
        await self._offer_page(scope, receive, send, Purpose.END_SUPPORT, self._ending)

    async def concern(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET explains and asks for the button; POST raises the concern (once per form)."""
        await self._offer_page(scope, receive, send, Purpose.CONCERN, self._concern)

    async def _concern(
        self, link: Link, offer: Offer, token: str, form: dict[str, str] | None
    ) -> HTMLResponse:
        if not offer.in_support:
            return HTMLResponse(not_in_support_page(offer.language), 409)
        if form is None:
            return HTMLResponse(concern_page(offer.language, token, secrets.token_urlsafe(12)))
        nonce = form.get("nonce", "")[:64] or secrets.token_urlsafe(12)
        if not await self.notifier.raise_concern(offer, nonce):
            return HTMLResponse(not_in_support_page(offer.language), 409)
        return HTMLResponse(raised_page(offer.language))

    async def _offer_page(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        purpose: Purpose,
        page: OfferPage,
    ) -> None:
        """A page behind a link about one offer: refused unless the link and offer are good."""
        request = Request(scope, receive)
        token = request.query_params.get("t", "")
        link = self.links.read(token, purpose)
        offer = (
            await self.notifier.offer(str(link.assignment_id)) if isinstance(link, Link) else None
        )
        if not isinstance(link, Link):
            response = self._refused(link)
        elif offer is None:
            response = HTMLResponse(closed_page("en", Closed.UNKNOWN), 404)
        else:
            form = await _form(request) if request.method == "POST" else None
            response = await page(link, offer, token, form)
        await response(scope, receive, send)

    async def _contact(
        self, link: Link, offer: Offer, token: str, form: dict[str, str] | None
    ) -> HTMLResponse:
        """Contacts are logged only while support runs, each link once, dated between the
        acceptance and today; a refusal keeps what was typed and says why."""
        language, timezone = offer.language, self.notifier.settings.timezone
        now = datetime.now(UTC).astimezone(ZoneInfo(timezone))
        concern = self.links.url(Purpose.CONCERN, link.assignment_id)
        if not offer.in_support:
            return HTMLResponse(not_in_support_page(language), 409)
        if await self.notifier.link_used(link, Purpose.LOG_CONTACT):
            return HTMLResponse(used_page(language), 409)
        if form is None:
            today = {"contact_date": f"{now:%Y-%m-%d}"}
            return HTMLResponse(contact_form_page(language, token, today, "", concern))
        try:
            entry = ContactEntry.model_validate(
                {**form, "referred": form.get("referred") == "true"}
            )
        except ValidationError as error:
            page = contact_form_page(language, token, form, describe(error), concern)
            return HTMLResponse(page, 422)
        if refusal := contact_date_refusal(entry.contact_date, offer.answered_at, now, timezone):
            accepted_on = f"{(offer.answered_at or now).astimezone(now.tzinfo):%Y-%m-%d}"
            why = date_refusal(language, refusal, accepted_on)
            return HTMLResponse(contact_form_page(language, token, form, why, concern), 422)
        logged = await self.notifier.log_contact(link, offer.assignment, entry)
        page = logged_page(language) if logged else used_page(language)
        return HTMLResponse(page, 200 if logged else 409)

    async def _ending(
        self, link: Link, offer: Offer, token: str, form: dict[str, str] | None
    ) -> HTMLResponse:
        if not offer.in_support:
            return HTMLResponse(not_in_support_page(offer.language), 409)
        if await self.notifier.link_used(link, Purpose.END_SUPPORT):
            return HTMLResponse(used_page(offer.language), 409)
        concern = self.links.url(Purpose.CONCERN, link.assignment_id)
        if form is None:
            return HTMLResponse(end_form_page(offer.language, token, "", concern))
        return await self._ended(link, offer, token, form, concern)

    async def _ended(
        self, link: Link, offer: Offer, token: str, form: dict[str, str], concern: str
    ) -> HTMLResponse:
        language = offer.language
        if form.get("choice") == "continue":
            if await self.notifier.still_supporting(link, offer):
                return HTMLResponse(continuing_page(language))
            return HTMLResponse(used_page(language), 409)
        try:
            ending = Ending.model_validate(form)
        except ValidationError as error:
            return HTMLResponse(end_form_page(language, token, describe(error), concern), 422)
        if await self.notifier.end_support(link, offer, ending.outcome, ending.referral):
            return HTMLResponse(ended_page(language))
        return HTMLResponse(used_page(language), 409)

    def _refused(self, problem: LinkProblem | None) -> HTMLResponse:
        """A link that is forged, expired or for something else; `None`: a forged form."""
        problem = problem or LinkProblem.FORGED
        self.log.warning("link refused", problem=problem)
        return HTMLResponse(problem_page(problem), 400 if problem is LinkProblem.FORGED else 410)


async def _form(request: Request) -> dict[str, str]:
    form = parse_qs((await request.body()).decode(errors="replace"))
    return {name: values[0] for name, values in form.items()}


def _why_closed(offer: Offer) -> Closed:
    """Why an answer was not taken, as the offer stood just before."""
    if offer.answer:
        return Closed.ANSWERED
    if not offer.open:
        return Closed.WITHDRAWN
    return Closed.LATE if offer.too_late_to_answer(datetime.now(UTC)) else Closed.ANSWERED
