"""notify: assignments in, the assigned supporter contacted, `peer_notified` out.

A supporter can only be asked to reach out once notify knows how to reach the colleague, and
the contact and the assignment arrive on different topics in either order: whichever comes
second triggers the message.
"""

from datetime import UTC, datetime, timedelta

from faststream.asgi import AsgiFastStream
from prometheus_client import Counter
from pydantic import SecretStr
from pymongo.asynchronous.client_session import AsyncClientSession

from services.notify.channels import EmailChannel
from services.notify.messages import notified, render_outreach
from services.notify.store import CaseContacts, Notifications
from shared.events import AssignmentNews, CaseContactRecorded, PeerAssigned
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

    async def deliver(assignment_id: str, case_id: str) -> None:
        contact = await contacts.of_case(case_id)
        if contact is None:
            return  # the contact's arrival will deliver it
        assignment = await notifications.claim(assignment_id, datetime.now(UTC))
        if assignment is None:
            return
        try:
            await email.send(render_outreach(assignment, contact), assignment_id)
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
    async def on_assignment_news(outcome: AssignmentNews) -> None:
        if isinstance(outcome, PeerAssigned):
            await notifications.expect(outcome)
            await deliver(str(outcome.assignment_id), str(outcome.case_id))

    @broker.subscriber(settings.topics.contacts, **subscription(settings, SERVICE, "contacts"))
    async def on_case_contact_recorded(contact: CaseContactRecorded) -> None:
        case_id = str(contact.case_id)
        await contacts.record(contact)
        for assignment_id in await notifications.pending_for_case(case_id):
            await deliver(assignment_id, case_id)

    return service_app(
        broker,
        mongo,
        registry,
        on_startup=[notifications.ensure_indexes],
        after_startup=[outbox.flush],
    )
