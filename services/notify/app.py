"""notify: assignments in, the assigned supporter contacted, `peer_notified` out.

A supporter can only be asked to reach out once notify knows how to reach the colleague, and
the contact and the assignment arrive on different topics in either order: whichever comes
second triggers the message.
"""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from faststream.asgi import AsgiFastStream
from faststream.asgi.types import Receive, Scope, Send
from prometheus_client import Counter
from pydantic import Field, SecretStr
from pymongo.asynchronous.client_session import AsyncClientSession
from starlette.requests import Request
from starlette.responses import HTMLResponse

from services.notify.channels import EmailChannel
from services.notify.links import Link, LinkProblem, Links
from services.notify.messages import answered, notified, render_outreach
from services.notify.pages import (
    Closed,
    Outcome,
    closed_page,
    outcome_page,
    problem_page,
    question_page,
)
from services.notify.store import CaseContacts, Notifications
from shared.events import (
    AssignmentCancelled,
    AssignmentNews,
    CaseContactRecorded,
    PeerAssigned,
)
from shared.kafka import subscription
from shared.mongo import Document, Outbox, in_transaction
from shared.service import service_app, wire
from shared.settings import ServiceSettings

SERVICE = "notify"


class NotifySettings(ServiceSettings):
    http_port: int = 8083
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "peer-support@hospital.example"
    sending_lease_seconds: float = 120.0
    """How long a claimed message may stay unsent before another worker may send it."""
    public_url: str = "http://127.0.0.1:8083"
    """Where supporters reach notify's pages: the base of every link in a message."""
    link_secret: SecretStr = Field(min_length=16)
    """Signs the links in messages. Required: with a known secret anyone could answer."""
    link_max_age_seconds: int = Field(default=14 * 24 * 3600, ge=60)
    timezone: str = "Europe/Amsterdam"
    """Times in messages are shown in this zone."""


def create_app(settings: NotifySettings | None = None) -> AsgiFastStream:
    settings = settings or NotifySettings()
    wiring = wire(SERVICE, settings)
    log, registry, broker, mongo = wiring.log, wiring.registry, wiring.broker, wiring.mongo
    contacts = CaseContacts(wiring.database)
    notifications = Notifications(
        wiring.database, timedelta(seconds=settings.sending_lease_seconds)
    )
    outbox = Outbox(wiring.database, broker)
    email = EmailChannel(
        settings.smtp_host,
        settings.smtp_port,
        settings.mail_from,
        start_tls=settings.smtp_starttls,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
    )
    sent = Counter(
        "outreach_sent", "Supporters contacted, by channel", ["channel"], registry=registry
    )
    answers = Counter(
        "offers_answered", "Offers answered through their link", ["answer"], registry=registry
    )
    links = Links(
        settings.link_secret.get_secret_value(),
        settings.public_url,
        settings.link_max_age_seconds,
    )

    async def deliver(assignment_id: str, case_id: str) -> None:
        contact = await contacts.of_case(case_id)
        if contact is None:
            return  # the contact's arrival will deliver it
        assignment = await notifications.claim(assignment_id, datetime.now(UTC))
        if assignment is None:
            return
        try:
            outreach = render_outreach(
                assignment,
                contact,
                links.respond_url(assignment.assignment_id),
                settings.timezone,
            )
            await email.send(outreach, assignment_id)
        except Exception:
            await notifications.release(assignment_id)
            raise
        now = datetime.now(UTC)

        async def complete(session: AsyncClientSession) -> list[Document]:
            await notifications.complete(session, assignment_id, email.name, now)
            return await outbox.put(
                session, [(settings.topics.notifications, notified(assignment, "email", now))]
            )

        await outbox.flush(await in_transaction(mongo, complete))
        sent.labels(email.name).inc()
        log.info("supporter contacted", assignment_id=assignment_id, channel=email.name)

    @broker.subscriber(
        settings.topics.assignments,
        **subscription(settings, SERVICE, "assignments"),
    )
    async def on_assignment_news(news: AssignmentNews) -> None:
        if isinstance(news, PeerAssigned):
            await notifications.expect(news)
            await deliver(str(news.assignment_id), str(news.case_id))
        elif isinstance(news, AssignmentCancelled):
            await notifications.withdraw(str(news.assignment_id))

    @broker.subscriber(settings.topics.contacts, **subscription(settings, SERVICE, "contacts"))
    async def on_case_contact_recorded(contact: CaseContactRecorded) -> None:
        case_id = str(contact.case_id)
        await contacts.record(contact)
        for assignment_id in await notifications.pending_for_case(case_id):
            await deliver(assignment_id, case_id)

    async def record_answer(link: Link, answer: Outcome) -> HTMLResponse:
        assignment_id = str(link.assignment_id)
        offer = await notifications.offer(assignment_id)
        if offer is None:
            return HTMLResponse(closed_page("en", Closed.UNKNOWN), 404)
        assignment = PeerAssigned.model_validate(offer["assignment"])
        language = assignment.supporter.language

        async def record(session: AsyncClientSession) -> list[Document]:
            now = datetime.now(UTC)
            if not await notifications.answer(session, assignment_id, answer, now):
                return []
            event = answered(assignment, answer == Outcome.ACCEPTED, now)
            return await outbox.put(session, [(settings.topics.responses, event)])

        recorded = await in_transaction(mongo, record)
        if not recorded:
            closed = Closed.ANSWERED if offer["answer"] or offer["open"] else Closed.WITHDRAWN
            return HTMLResponse(closed_page(language, closed), 409)
        await outbox.flush(recorded)
        answers.labels(answer).inc()
        log.info("offer answered", assignment_id=assignment_id, answer=answer)
        return HTMLResponse(outcome_page(language, answer))

    async def respond(scope: Scope, receive: Receive, send: Send) -> None:
        """GET shows the question, POST records the answer (once)."""
        request = Request(scope, receive)
        token = request.query_params.get("t", "")
        link = links.read(token)
        if not isinstance(link, Link):
            log.warning("link refused", problem=link)
            response = HTMLResponse(problem_page(link), 400 if link == "forged" else 410)
        elif request.method == "POST":
            form = parse_qs((await request.body()).decode(errors="replace"))
            choice = (form.get("answer") or [""])[0]
            answer = {"accept": Outcome.ACCEPTED, "decline": Outcome.DECLINED}.get(choice)
            if answer is None:
                response = HTMLResponse(problem_page(LinkProblem.FORGED), 400)
            else:
                response = await record_answer(link, answer)
        else:
            offer = await notifications.offer(str(link.assignment_id))
            language = offer["assignment"]["supporter"]["language"] if offer else "en"
            response = HTMLResponse(question_page(language, token))
        await response(scope, receive, send)

    return service_app(
        broker,
        mongo,
        registry,
        on_startup=[notifications.ensure_indexes],
        after_startup=[outbox.flush],
        routes=[("/respond", respond)],
    )
