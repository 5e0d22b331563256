"""notify: assignments in; offers, reminders and follow-ups out to supporters; their answers
and logged contacts back as events; coordinators told of what needs them. The work is
`Notifier`'s and `CoordinatorAlerts`', the pages `SupporterPages`'."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated

from faststream.asgi import AsgiFastStream
from faststream.kafka.annotations import KafkaMessage
from pydantic import TypeAdapter

from services.notify.alert_store import Alerts
from services.notify.channels import Channel, WebhookChannel
from services.notify.coordinators import CoordinatorAlerts
from services.notify.erasure import Erasure
from services.notify.keyring import ContactKeys, Keyring
from services.notify.links import Links
from services.notify.notifier import Notifier, OutreachMetrics, Stores
from services.notify.settings import NotifySettings
from services.notify.store import CaseContacts, Firsts, Messages, Offers, Supporters
from services.notify.web import SupporterPages
from shared.batches import Delivery, Unchecked
from shared.events import (
    AssignmentCancelled,
    AssignmentNews,
    AssignmentResponse,
    CancelReason,
    CaseContactSealed,
    CaseEscalated,
    ContactKeyIssued,
    NotificationNews,
    SafetyConcernRaised,
    StepCount,
    SupportCaseCounted,
    SupportEnded,
    SupporterReachable,
    SupportReopened,
)
from shared.kafka import subscription
from shared.mail import email_channel
from shared.service import Clock, Wiring, service_app, wire

SERVICE = "notify"
ASSIGNMENT_NEWS = TypeAdapter(AssignmentNews)
CASES_COUNTED = TypeAdapter(SupportCaseCounted)
CONTACTS_SEALED = TypeAdapter(CaseContactSealed)
NOTIFICATION_NEWS = TypeAdapter(NotificationNews)


def channels_of(settings: NotifySettings) -> dict[str, Channel]:
    """Email always; text messages where an SMS provider is configured."""
    channels: dict[str, Channel] = {"email": email_channel(settings)}
    if settings.sms_webhook_url:
        token = settings.sms_webhook_token
        channels["sms"] = WebhookChannel(
            settings.sms_webhook_url, token.get_secret_value() if token else None
        )
    return channels


def create_app(settings: NotifySettings | None = None) -> AsgiFastStream:
    settings = settings or NotifySettings()
    wiring = wire(SERVICE, settings)
    database, topics = wiring.database, settings.topics
    messages = Messages(database, timedelta(seconds=settings.sending_lease_seconds))
    stores = Stores(
        CaseContacts(database),
        Offers(database),
        Supporters(database),
        messages,
        Firsts(database, "used_links"),
        Firsts(database, "contacted_cases"),
    )
    links = Links(
        settings.link_secret.get_secret_value(), settings.public_url, settings.link_max_age_seconds
    )
    notifier = Notifier(
        wiring.unit_of_work,
        stores,
        channels_of(settings),
        links,
        settings,
        OutreachMetrics(wiring.registry),
        wiring.log,
    )
    pages = SupporterPages(notifier, links, wiring.log)
    coordinators = _coordinators(wiring, settings, stores, notifier.channels["email"])

    erasure = _responses(wiring, settings, coordinators)
    keyring = Keyring(wiring.unit_of_work, ContactKeys(database), topics.contact_keys, wiring.log)
    _subscribe(wiring, settings, notifier, coordinators, erasure, keyring)

    clock = Clock("message scan", notifier.deliver_due, settings.scan_seconds)
    telling = Clock("coordinator alerts", coordinators.send_due, settings.scan_seconds)
    erasing = Clock("erasure", erasure.purge_due, settings.purge_scan_seconds)
    return service_app(
        wiring,
        settings,
        on_startup=[
            messages.ensure_indexes,
            coordinators.alerts.ensure_indexes,
            erasure.ensure_indexes,
        ],
        background=[clock.keep, telling.keep, erasing.keep],
        routes=[
            ("/respond", pages.respond),
            ("/log-contact", pages.log_contact),
            ("/end-support", pages.end_support),
            ("/concern", pages.concern),
        ],
        publishes=[
            (topics.notifications, NotificationNews, "what was sent to supporters, or failed"),
            (topics.responses, AssignmentResponse, "supporters' answers and the ends of support"),
            (topics.contact_keys, ContactKeyIssued, "each case's key to seal its contact to"),
            (topics.step_counts, StepCount, "each message, answer, contact and end, for reporting"),
        ],
        drain=[notifier.sends.finished],
    )


def _subscribe(
    wiring: Wiring,
    settings: NotifySettings,
    notifier: Notifier,
    coordinators: CoordinatorAlerts,
    erasure: Erasure,
    keyring: Keyring,
) -> None:
    broker, topics, batches = wiring.broker, settings.topics, wiring.batches
    _hear_assignments(wiring, settings, notifier, coordinators, erasure)

    roster = subscription(settings, SERVICE, "roster", concurrent=False)

    @broker.subscriber(topics.roster_contacts, **roster)
    async def on_supporter_reachable(reachable: SupporterReachable) -> None:
        await notifier.on_supporter_reachable(reachable)

    async def on_cases_counted(batch: Sequence[Delivery[SupportCaseCounted]]) -> None:
        erased = await erasure.erased_among([str(d.event.case_id) for d in batch])
        await keyring.on_cases_counted([d for d in batch if str(d.event.case_id) not in erased])

    async def on_case(one: Delivery[SupportCaseCounted]) -> None:
        if not await erasure.erased(str(one.event.case_id)):  # no key again for an erased case
            await keyring.on_cases_counted([one])

    @broker.subscriber(
        topics.case_counts,
        **subscription(settings, SERVICE, "contact_keys", batch=True, outreach=True),
    )
    async def on_case_counted(
        counted: Annotated[list[SupportCaseCounted], Unchecked], message: KafkaMessage
    ) -> None:
        await batches.handle(message.raw_message, CASES_COUNTED, on_cases_counted, on_case)

    async def on_contacts(batch: Sequence[Delivery[CaseContactSealed]]) -> None:
        erased = await erasure.erased_among([str(d.event.case_id) for d in batch])
        kept = [d for d in batch if str(d.event.case_id) not in erased]
        contacts = await keyring.opened([d.event for d in kept])
        await notifier.on_contacts(list(zip(contacts, [d.trace for d in kept], strict=True)))

    async def on_contact(one: Delivery[CaseContactSealed]) -> None:
        await on_contacts([one])

    @broker.subscriber(
        topics.contacts, **subscription(settings, SERVICE, "contacts", batch=True, outreach=True)
    )
    async def on_case_contact_sealed(
        sealed: Annotated[list[CaseContactSealed], Unchecked], message: KafkaMessage
    ) -> None:
        await batches.handle(message.raw_message, CONTACTS_SEALED, on_contacts, on_contact)


def _hear_assignments(
    wiring: Wiring,
    settings: NotifySettings,
    notifier: Notifier,
    coordinators: CoordinatorAlerts,
    erasure: Erasure,
) -> None:
    """Offers, cancellations and moved deadlines for the notifier, in batches; escalations
    for the coordinators, ends for erasure."""

    async def heard_by_others(news: AssignmentNews) -> None:
        """What the coordinators and erasure take from the assignments topic."""
        if isinstance(news, CaseEscalated):
            await coordinators.escalated(news)
        elif isinstance(news, SupportEnded) or (
            isinstance(news, AssignmentCancelled) and news.reason is CancelReason.CASE_CLOSED
        ):
            await erasure.case_ended(str(news.case_id), news.occurred_at)
        elif isinstance(news, SupportReopened):
            await erasure.case_reopened(str(news.case_id))
        elif isinstance(news, SafetyConcernRaised):
            await coordinators.concern(news)

    async def on_assignments(batch: Sequence[Delivery[AssignmentNews]]) -> None:
        for one in batch:
            await heard_by_others(one.event)
        await notifier.on_assignments(batch)

    async def on_assignment(one: Delivery[AssignmentNews]) -> None:
        await heard_by_others(one.event)
        await notifier.on_assignment_news(one.event)

    @wiring.broker.subscriber(
        settings.topics.assignments,
        **subscription(settings, SERVICE, "assignments", batch=True, outreach=True),
    )
    async def on_assignment_news(
        news: Annotated[list[AssignmentNews], Unchecked], message: KafkaMessage
    ) -> None:
        await wiring.batches.handle(
            message.raw_message, ASSIGNMENT_NEWS, on_assignments, on_assignment
        )


def _coordinators(
    wiring: Wiring, settings: NotifySettings, stores: Stores, email: Channel
) -> CoordinatorAlerts:
    """What tells coordinators, fed by matching's escalations (on the assignments topic) and
    by notify's own failed and delivered messages."""
    coordinators = CoordinatorAlerts(
        alerts=Alerts(wiring.database),
        contacts=stores.contacts,
        email=email,
        addresses=settings.coordinators,
        safety_contacts=settings.safety_contacts,
        supporters=stores.supporters,
        desk_url=settings.desk_url,
        digest_every=settings.coordinator_digest_every,
        contact_grace=settings.coordinator_contact_grace,
        log=wiring.log,
        zone=settings.timezone,
    )
    alerting = subscription(settings, SERVICE, "coordinator_alerts", batch=True)

    @wiring.broker.subscriber(settings.topics.notifications, **alerting)
    async def on_notification(
        news: Annotated[list[NotificationNews], Unchecked], message: KafkaMessage
    ) -> None:
        await wiring.batches.handle_events(
            message.raw_message, NOTIFICATION_NEWS, coordinators.heard
        )

    return coordinators


def _responses(
    wiring: Wiring, settings: NotifySettings, coordinators: CoordinatorAlerts
) -> Erasure:
    """What notify hears of its own announcements on the responses topic: the ends (the
    supporter's, a lapse) for the erasure `PURGE_AFTER` after, and the supporters' safety
    concerns for the coordinators and the back-up."""
    erasure = Erasure(wiring.database, settings.purge_after, wiring.log)
    ending = subscription(settings, SERVICE, "erasure", concurrent=False)

    @wiring.broker.subscriber(settings.topics.responses, **ending)
    async def on_response(response: AssignmentResponse) -> None:
        if isinstance(response, SupportEnded):
            await erasure.case_ended(str(response.case_id), response.occurred_at)
        elif isinstance(response, SafetyConcernRaised):
            await coordinators.concern(response)

    return erasure
