"""The pages supporters reach through the links in their messages: answering an offer and
logging a contact. Each link is signed, expires, and records what it is for once."""

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from faststream.asgi.types import Receive, Scope, Send
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse

from services.notify.links import Link, LinkProblem, Links, Purpose
from services.notify.messages import ContactEntry
from services.notify.notifier import Notifier
from services.notify.pages import (
    Closed,
    Outcome,
    closed_page,
    contact_form_page,
    logged_page,
    outcome_page,
    problem_page,
    question_page,
    used_page,
)
from shared.errors import describe

ANSWERS = {"accept": Outcome.ACCEPTED, "decline": Outcome.DECLINED}


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
            response = HTMLResponse(question_page(offer.language if offer else "en", token))
        await response(scope, receive, send)

    async def _answer(self, link: Link, answer: Outcome) -> HTMLResponse:
        offer = await self.notifier.offer(str(link.assignment_id))
        if offer is None:
            return HTMLResponse(closed_page("en", Closed.UNKNOWN), 404)
        if not await self.notifier.answer(offer, answer):
            closed = Closed.ANSWERED if offer.answer or offer.open else Closed.WITHDRAWN
            return HTMLResponse(closed_page(offer.language, closed), 409)
        return HTMLResponse(outcome_page(offer.language, answer))

    async def log_contact(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET shows the form, POST records one contact; each link records one."""
        request = Request(scope, receive)
        token = request.query_params.get("t", "")
        link = self.links.read(token, Purpose.LOG_CONTACT)
        offer = (
            await self.notifier.offer(str(link.assignment_id)) if isinstance(link, Link) else None
        )
        if not isinstance(link, Link):
            response = self._refused(link)
        elif offer is None:
            response = HTMLResponse(closed_page("en", Closed.UNKNOWN), 404)
        else:
            today = f"{datetime.now(UTC):%Y-%m-%d}"
            if request.method != "POST":
                response = HTMLResponse(contact_form_page(offer.language, token, today))
            else:
                fields = await _form(request)
                try:
                    entry = ContactEntry.model_validate(
                        {**fields, "referred": fields.get("referred") == "true"}
                    )
                except ValidationError as error:
                    page = contact_form_page(offer.language, token, today, describe(error))
                    response = HTMLResponse(page, 422)
                else:
                    logged = await self.notifier.log_contact(link, offer.assignment, entry)
                    page = logged_page(offer.language) if logged else used_page(offer.language)
                    response = HTMLResponse(page, 200 if logged else 409)
        await response(scope, receive, send)

    def _refused(self, problem: LinkProblem | None) -> HTMLResponse:
        """A link that is forged, expired or for something else; `None`: a forged form."""
        problem = problem or LinkProblem.FORGED
        self.log.warning("link refused", problem=problem)
        return HTMLResponse(problem_page(problem), 400 if problem is LinkProblem.FORGED else 410)


async def _form(request: Request) -> dict[str, str]:
    form = parse_qs((await request.body()).decode(errors="replace"))
    return {name: values[0] for name, values in form.items()}
