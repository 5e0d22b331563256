"""intake: incidents and support requests in, one support case per professional out; the
request page for staff; the staff directory's SCIM endpoint. The work is `Intake`'s, the page
`RequestPages`', the directory's provisioning `ProvisioningEndpoint`'s."""

from datetime import timedelta
from typing import Annotated

from fastapi import FastAPI
from faststream.kafka.annotations import KafkaMessage
from pydantic import TypeAdapter

from services.intake.directory_store import StaffDirectory
from services.intake.intake import Intake
from services.intake.request_store import PendingRequests
from services.intake.request_web import RequestPages, request_router
from services.intake.scim_web import provisioning_endpoint
from services.intake.settings import SERVICE, IntakeSettings
from services.intake.store import IncidentRecords, Preferences, WaitingContacts
from shared.allowances import Allowances
from shared.batches import Unchecked
from shared.events import (
    CaseContactSealed,
    CaseNews,
    ContactKeyIssued,
    IncidentEvent,
    StaffMessage,
    SupportCaseCounted,
)
from shared.kafka import subscription
from shared.mail import email_channel
from shared.service import Clock, Wiring, web_app, wire

INCIDENT_EVENTS = TypeAdapter(IncidentEvent)
CONTACT_KEYS = TypeAdapter(ContactKeyIssued)


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    wiring = wire(SERVICE, settings)
    topics = settings.topics
    records = IncidentRecords(wiring.database, settings.pseudonym_keys())
    directory = StaffDirectory(wiring.database)
    intake = Intake(
        wiring.unit_of_work,
        records,
        Preferences(wiring.database),
        WaitingContacts(wiring.database),
        settings.policy(),
        settings.pseudonym_keys(),
        topics,
        wiring.log,
        settings.incidents_settle_after,
        directory,
    )

    if settings.source_systems is None:
        wiring.log.warning("SOURCE_SYSTEMS unset: any producer may report for any hospital")
    if settings.exclusion_key is None:
        wiring.log.warning("EXCLUSION_KEY unset: anyone who reads the topics can match tags")

    _subscribe(wiring, settings, intake)
    pending = PendingRequests(wiring.database)
    allowances = Allowances(
        wiring.database, "request_allowances", timedelta(seconds=settings.requests_window_seconds)
    )
    provisioning = provisioning_endpoint(wiring, settings, directory)
    app = web_app(
        wiring,
        settings,
        title="peer-support intake",
        description="Asking for support without an incident, and staff's standing choices.",
        on_startup=[
            pending.ensure_indexes,
            records.ensure_indexes,
            allowances.ensure_indexes,
            directory.ensure_indexes,
            provisioning.ensure_indexes,
        ],
        background=[Clock("settling", intake.settle_due, settings.settle_scan_seconds).keep],
        publishes=[
            (topics.cases, CaseNews, "one case per professional: opened, updated, closed"),
            (topics.case_counts, SupportCaseCounted, "each case opened, for reporting: not whose"),
            (topics.contacts, CaseContactSealed, "how to reach a colleague, sealed for notify"),
            (topics.staff, StaffMessage, "requests and choices made on the request page"),
        ],
    )
    key = settings.pseudonym_keys().current
    pages = RequestPages(
        wiring.unit_of_work, pending, directory, email_channel(settings), settings, allowances, key
    )
    app.include_router(request_router(pages))
    app.mount("/scim", provisioning)
    return app


def _subscribe(wiring: Wiring, settings: IntakeSettings, intake: Intake) -> None:
    """Incidents and contact keys are taken in batches (`shared.batches`); staff messages
    one at a time, as people send them."""
    broker, topics, batches = wiring.broker, settings.topics, wiring.batches

    @broker.subscriber(
        topics.incidents_reported,
        **subscription(settings, SERVICE, "incidents", batch=True, outreach=True),
    )
    async def on_incidents(
        incidents: Annotated[list[IncidentEvent], Unchecked], message: KafkaMessage
    ) -> None:
        await batches.handle(
            message.raw_message,
            INCIDENT_EVENTS,
            intake.on_incidents,
            lambda one: intake.on_incident(one.event, one.key),
        )

    @broker.subscriber(topics.staff, **subscription(settings, SERVICE, "staff"))
    async def on_staff_message(message: StaffMessage) -> None:
        await intake.on_staff_message(message)

    @broker.subscriber(
        topics.contact_keys,
        **subscription(settings, SERVICE, "contact_keys", batch=True, outreach=True),
    )
    async def on_contact_keys(
        keys: Annotated[list[ContactKeyIssued], Unchecked], message: KafkaMessage
    ) -> None:
        await batches.handle(
            message.raw_message,
            CONTACT_KEYS,
            intake.on_contact_keys,
            lambda one: intake.on_contact_keys([one]),
        )
