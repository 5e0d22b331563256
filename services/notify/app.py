"""notify: assignments in; offers, reminders and follow-ups out to supporters; their answers
and logged contacts back as events.

A supporter can only be asked to reach out once notify knows how to reach the colleague, and
the contact and the assignment arrive on different topics in either order: whichever comes
second makes the offer due. Every step of every assignment is one document in MongoDB, so
timers survive restarts and a step is sent at most once (see `store.Messages`).
"""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from faststream.asgi import AsgiFastStream
from faststream.asgi.types import Receive, Scope, Send
from prometheus_client import Counter
from pydantic import Field, SecretStr, ValidationError
from pymongo.asynchronous.client_session import AsyncClientSession
from starlette.requests import Request
from starlette.responses import HTMLResponse

from services.notify.channels import Channel, EmailChannel, WebhookChannel
from services.notify.links import Link, LinkProblem, Links, Purpose
from services.notify.messages import (
    ContactEntry,
    answered,
    compose,
    contact_logged,
    failed,
    notified,
)
from services.notify.messages import Links as MessageLinks
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
from services.notify.steps import (
    OFFER,
    REMINDER,
    follow_up_steps,
    kind_of,
    needs_colleague_contact,
    offer_steps,
    reminder_due,
    still_due,
)
from services.notify.store import CaseContacts, Firsts, Messages, Offers, State
from shared.errors import RejectedEvent, describe
from shared.events import (
    AssignmentCancelled,
    AssignmentNews,
    CaseContactRecorded,
    ChannelName,
    Envelope,
    PeerAssigned,
    ResponseDeadlineMoved,
)
from shared.kafka import is_passing, subscription
from shared.mongo import Announcements
from shared.service import Clock, service_app, wire
from shared.settings import ServiceSettings

SERVICE = "notify"


class NotifySettings(ServiceSettings):
    http_port: int = 8083
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_ca_file: str | None = None
    """A CA bundle to trust for STARTTLS, for a relay with a certificate of the hospital's own."""
    mail_from: str = "peer-support@hospital.example"
    sms_webhook_url: str | None = None
    """The SMS/pager provider's endpoint; without it, supporters are reached by email only."""
    sms_webhook_token: SecretStr | None = None
    sending_lease_seconds: float = 120.0
    """How long a claimed message may stay unsent before another worker may take it."""
    public_url: str = "http://127.0.0.1:8083"
    """Where supporters reach notify's pages: the base of every link in a message."""
    link_secret: SecretStr = Field(min_length=16)
    """Signs the links in messages. Required: with a known secret anyone could answer."""
    link_max_age_seconds: int = Field(default=45 * 24 * 3600, ge=60)
    """Longer than the last follow-up, whose link records contacts."""
    timezone: str = "Europe/Amsterdam"
    """Times in messages are shown in this zone."""
    follow_up_after: list[timedelta] = Field(
        default_factory=lambda: [timedelta(days=d) for d in (1, 3, 7, 30)]
    )
    """When after acceptance the supporter is prompted to check in again (ISO 8601
    durations or seconds, e.g. `["P1D", "P3D", "P7D", "P30D"]`)."""
    scan_seconds: float = Field(default=5.0, gt=0)
    """How often due reminders, follow-ups and retries are looked for."""
    scan_batch: int = Field(default=100, ge=1)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    """Ceiling of the pause before a message that failed for a passing reason is retried."""


def create_app(settings: NotifySettings | None = None) -> AsgiFastStream:
    settings = settings or NotifySettings()
    wiring = wire(SERVICE, settings)
    log, registry, broker = wiring.log, wiring.registry, wiring.broker
    contacts = CaseContacts(wiring.database)
    offers = Offers(wiring.database)
    messages = Messages(wiring.database, timedelta(seconds=settings.sending_lease_seconds))
    used_links = Firsts(wiring.database, "used_links")
    contacted_cases = Firsts(wiring.database, "contacted_cases")
    topics = settings.topics
    channels: dict[str, Channel] = {
        "email": EmailChannel(
            settings.smtp_host,
            settings.smtp_port,
            settings.mail_from,
            start_tls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            ca_file=settings.smtp_ca_file,
        )
    }
    if settings.sms_webhook_url:
        token = settings.sms_webhook_token
        channels["sms"] = WebhookChannel(
            settings.sms_webhook_url, token.get_secret_value() if token else None
        )
    links = Links(
        settings.link_secret.get_secret_value(), settings.public_url, settings.link_max_age_seconds
    )
    sent = Counter(
        "outreach_sent",
        "Messages sent to supporters, by channel and step",
        ["channel", "step"],
        registry=registry,
    )
    failures = Counter(
        "outreach_failed",
        "Messages a channel refused, or unconfirmed after a stop while sending",
        ["channel"],
        registry=registry,
    )
    answers = Counter(
        "offers_answered", "Offers answered through their link", ["answer"], registry=registry
    )
    contacts_logged = Counter(
        "contacts_logged", "Contacts recorded by supporters", registry=registry
    )

    publish = wiring.unit_of_work.run

    def channel_order(assignment: PeerAssigned, tried: list[str]) -> list[ChannelName]:
        """The supporter's own channel first, the other as the fallback, where possible."""
        supporter = assignment.supporter
        preferred: list[ChannelName] = [
            supporter.channel,
            "sms" if supporter.channel == "email" else "email",
        ]
        return [
            name
            for name in preferred
            if name in channels
            and name not in tried
            and (name != "sms" or supporter.phone is not None)
        ]

    def message_links(assignment: PeerAssigned, message_id: str, step: str) -> MessageLinks:
        if kind_of(step) in (OFFER, REMINDER):
            return MessageLinks(respond=links.respond_url(assignment.assignment_id))
        log_url = links.url(Purpose.LOG_CONTACT, assignment.assignment_id, nonce=message_id)
        return MessageLinks(log_contact=log_url)

    async def deliver(message_id: str) -> None:
        """Send one due step on the supporter's channel, falling back to the other."""
        before = await messages.claim(message_id, datetime.now(UTC))
        if before is None:
            return
        offer = await offers.get(before["assignment_id"])
        assert offer is not None, "an offer is recorded before its messages"
        assignment = PeerAssigned.model_validate(offer["assignment"])
        step = before["step"]
        if not still_due(step, cancelled=offer["cancelled"], answer=offer["answer"]):
            await messages.settle(message_id, State.SKIPPED)
            return
        interrupted: ChannelName | None = (
            before.get("channel") if before["state"] == State.SENDING else None
        )
        if interrupted and not channels[interrupted].retries_are_safe:
            reason = "unconfirmed: the service stopped while sending; not sent again"
            unconfirmed = failed(assignment, step, interrupted, reason, datetime.now(UTC))
            await settle_and_announce(message_id, State.UNCONFIRMED, unconfirmed)
            failures.labels(interrupted).inc()
            log.warning("message unconfirmed", message_id=message_id, step=step)
            return
        case_id = str(assignment.case_id)
        contact = await contacts.of_case(case_id)
        if needs_colleague_contact(step) and contact is None:
            await messages.wait_for_contact(message_id)  # the contact's arrival makes it due
            # The contact may have arrived after the look above and before the wait was
            # recorded: its handler then found nothing waiting. Look once more.
            if await contacts.of_case(case_id) is not None:
                for waited in await messages.contact_arrived(case_id, datetime.now(UTC)):
                    await deliver(waited)
            return
        tried = list(before.get("tried", []))
        for name in channel_order(assignment, tried):
            await messages.sending_on(message_id, name)
            outreach = compose(
                step,
                assignment,
                contact,
                name,
                message_links(assignment, message_id, step),
                settings.timezone,
            )
            key = str(assignment.assignment_id) if step == OFFER else message_id.replace("/", ".")
            try:
                await channels[name].send(outreach, key)
            except RejectedEvent as refusal:
                await announce(failed(assignment, step, name, describe(refusal), datetime.now(UTC)))
                failures.labels(name).inc()
                await messages.tried(message_id, name)
                tried.append(name)
                log.warning("channel refused message", message_id=message_id, channel=name)
                continue
            except Exception as error:
                if not is_passing(error):
                    raise
                attempts = int(before.get("attempts", 0)) + 1
                pause = min(settings.retry_max_seconds, 5 * 2**attempts)
                await messages.retry_later(
                    message_id, attempts, datetime.now(UTC) + timedelta(seconds=pause)
                )
                log.warning(
                    "message will be retried",
                    message_id=message_id,
                    channel=name,
                    retry_in_seconds=pause,
                    error=describe(error),
                )
                return
            now = datetime.now(UTC)
            done = notified(assignment, step, name, now)
            await settle_and_announce(message_id, State.SENT, done, sent_at=now)
            sent.labels(name, kind_of(step)).inc()
            log.info("supporter contacted", message_id=message_id, channel=name, step=step)
            return
        await messages.settle(message_id, State.FAILED, tried=tried)
        log.error("no channel could deliver", message_id=message_id, tried=tried)

    async def settle_and_announce(
        message_id: str, state: str, event: Envelope, **fields: object
    ) -> None:
        """Record how a step ended and announce it, together."""

        async def work(session: AsyncClientSession, now: datetime) -> Announcements:
            await messages.settle(message_id, state, session, **fields)
            return [(topics.notifications, event)]

        await publish(work)

    async def announce(event: Envelope) -> None:
        async def work(session: AsyncClientSession, now: datetime) -> Announcements:
            return [(topics.notifications, event)]

        await publish(work)

    @broker.subscriber(topics.assignments, **subscription(settings, SERVICE, "assignments"))
    async def on_assignment_news(news: AssignmentNews) -> None:
        assignment_id = str(getattr(news, "assignment_id", ""))

        async def record(session: AsyncClientSession, now: datetime) -> Announcements:
            if isinstance(news, PeerAssigned):
                await offers.record(session, news)
                await messages.schedule(
                    session, news, offer_steps(news.occurred_at, news.respond_by)
                )
            elif isinstance(news, AssignmentCancelled):
                await offers.cancel(session, assignment_id)
                await messages.skip_remaining(session, assignment_id)
            elif isinstance(news, ResponseDeadlineMoved):
                offer = await offers.get(assignment_id, session)
                if offer is not None:
                    offered_at = PeerAssigned.model_validate(offer["assignment"]).occurred_at
                    await offers.move_deadline(session, assignment_id, news.respond_by)
                    due = reminder_due(offered_at, news.respond_by)
                    await messages.reschedule(session, assignment_id, REMINDER, due)
            return []

        if isinstance(news, PeerAssigned | AssignmentCancelled | ResponseDeadlineMoved):
            await publish(record)
        if isinstance(news, PeerAssigned):
            await deliver(f"{news.assignment_id}/{OFFER}")

    @broker.subscriber(topics.contacts, **subscription(settings, SERVICE, "contacts"))
    async def on_case_contact_recorded(contact: CaseContactRecorded) -> None:
        await contacts.record(contact)
        for message_id in await messages.contact_arrived(str(contact.case_id), datetime.now(UTC)):
            await deliver(message_id)

    async def deliver_due() -> None:
        """Each due message on its own: one that fails is retried at the next scan, after
        its lease, and never holds up the others."""
        for message_id in await messages.due(datetime.now(UTC), settings.scan_batch):
            try:
                await deliver(message_id)
            except Exception:
                log.exception("message not delivered; retried after its lease", id=message_id)

    clock = Clock("message scan", deliver_due, settings.scan_seconds)

    # --- What supporters reach through their links --------------------------------------

    async def record_answer(link: Link, answer: Outcome) -> HTMLResponse:
        assignment_id = str(link.assignment_id)
        offer = await offers.get(assignment_id)
        if offer is None:
            return HTMLResponse(closed_page("en", Closed.UNKNOWN), 404)
        assignment = PeerAssigned.model_validate(offer["assignment"])
        language = assignment.supporter.language

        async def record(session: AsyncClientSession, now: datetime) -> Announcements:
            if not await offers.answer(session, assignment_id, answer, now):
                return []
            if answer == Outcome.ACCEPTED:
                await messages.schedule(
                    session, assignment, follow_up_steps(now, settings.follow_up_after)
                )
            return [(topics.responses, answered(assignment, answer == Outcome.ACCEPTED, now))]

        if not await publish(record):
            closed = Closed.ANSWERED if offer["answer"] or offer["open"] else Closed.WITHDRAWN
            return HTMLResponse(closed_page(language, closed), 409)
        answers.labels(answer).inc()
        log.info("offer answered", assignment_id=assignment_id, answer=answer)
        return HTMLResponse(outcome_page(language, answer))

    def refused(problem: LinkProblem) -> HTMLResponse:
        log.warning("link refused", problem=problem)
        return HTMLResponse(problem_page(problem), 400 if problem is LinkProblem.FORGED else 410)

    async def respond(scope: Scope, receive: Receive, send: Send) -> None:
        """GET shows the question, POST records the answer (once)."""
        request = Request(scope, receive)
        token = request.query_params.get("t", "")
        link = links.read(token, Purpose.RESPOND)
        if not isinstance(link, Link):
            response = refused(link)
        elif request.method == "POST":
            form = parse_qs((await request.body()).decode(errors="replace"))
            choice = (form.get("answer") or [""])[0]
            answer = {"accept": Outcome.ACCEPTED, "decline": Outcome.DECLINED}.get(choice)
            response = await record_answer(link, answer) if answer else refused(LinkProblem.FORGED)
        else:
            offer = await offers.get(str(link.assignment_id))
            language = offer["assignment"]["supporter"]["language"] if offer else "en"
            response = HTMLResponse(question_page(language, token))
        await response(scope, receive, send)

    async def log_contact(scope: Scope, receive: Receive, send: Send) -> None:
        """GET shows the form, POST records one contact; each link records one."""
        request = Request(scope, receive)
        token = request.query_params.get("t", "")
        link = links.read(token, Purpose.LOG_CONTACT)
        offer = await offers.get(str(link.assignment_id)) if isinstance(link, Link) else None
        if not isinstance(link, Link):
            response = refused(link)
        elif offer is None:
            response = HTMLResponse(closed_page("en", Closed.UNKNOWN), 404)
        else:
            assignment = PeerAssigned.model_validate(offer["assignment"])
            language = assignment.supporter.language
            today = f"{datetime.now(UTC):%Y-%m-%d}"
            if request.method != "POST":
                response = HTMLResponse(contact_form_page(language, token, today))
            else:
                form = parse_qs((await request.body()).decode(errors="replace"))
                fields = {k: v[0] for k, v in form.items()}
                try:
                    entry = ContactEntry.model_validate(
                        {**fields, "referred": fields.get("referred") == "true"}
                    )
                except ValidationError as error:
                    page = contact_form_page(language, token, today, describe(error))
                    response = HTMLResponse(page, 422)
                else:
                    response = await record_contact(link, assignment, entry)
        await response(scope, receive, send)

    async def record_contact(
        link: Link, assignment: PeerAssigned, entry: ContactEntry
    ) -> HTMLResponse:
        async def record(session: AsyncClientSession, now: datetime) -> Announcements:
            if not await used_links.first(session, link.nonce, now):
                return []
            first = await contacted_cases.first(session, str(assignment.case_id), now)
            logged = contact_logged(assignment, entry, link.nonce, now, first_of_case=first)
            return [(topics.notifications, logged)]

        language = assignment.supporter.language
        if not await publish(record):
            return HTMLResponse(used_page(language), 409)
        contacts_logged.inc()
        log.info("contact logged", assignment_id=str(link.assignment_id))
        return HTMLResponse(logged_page(language))

    async def prepare() -> None:
        await messages.ensure_indexes()

    return service_app(
        wiring,
        settings,
        on_startup=[prepare],
        background=[clock.keep],
        routes=[("/respond", respond), ("/log-contact", log_contact)],
    )
