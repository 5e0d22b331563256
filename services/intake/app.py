"""intake: reported incidents in, one support case per involved professional out."""

from datetime import UTC, datetime

from faststream.asgi import AsgiFastStream
from pymongo.asynchronous.client_session import AsyncClientSession

from services.intake.cases import needs_support, open_cases
from services.intake.store import CaseLedger
from shared.events import IncidentReported
from shared.kafka import subscription
from shared.mongo import Document, Outbox, in_transaction
from shared.service import service_app, wire
from shared.settings import PseudonymSettings, ServiceSettings

SERVICE = "intake"


class IntakeSettings(ServiceSettings, PseudonymSettings):
    """The common settings and the pseudonym key, which only intake and the roster use."""


def create_app(settings: IntakeSettings | None = None) -> AsgiFastStream:
    settings = settings or IntakeSettings()
    wiring = wire(SERVICE, settings)
    log, registry, broker, mongo = wiring.log, wiring.registry, wiring.broker, wiring.mongo
    ledger = CaseLedger(wiring.database)
    outbox = Outbox(wiring.database, broker)
    topics = settings.topics
    pseudonym_key = settings.pseudonym_key.get_secret_value().encode()

    @broker.subscriber(
        topics.incidents_reported,
        **subscription(settings, SERVICE, "incidents"),
    )
    async def on_incident_reported(incident: IncidentReported) -> None:
        if not needs_support(incident):
            log.info("incident entered in error: no cases", incident_event=str(incident.event_id))
            return
        cases = open_cases(incident, pseudonym_key, opened_at=datetime.now(UTC))

        async def record(session: AsyncClientSession) -> list[Document]:
            new = await ledger.record_new(session, cases)
            return await outbox.put(
                session,
                [
                    entry
                    for case in new
                    for entry in ((topics.contacts, case.contact), (topics.cases, case.case_opened))
                ],
            )

        pending = await in_transaction(mongo, record)
        await outbox.flush(pending)
        opened = sum(1 for entry in pending if entry["topic"] == topics.cases)
        log.info("incident received", participants=len(cases), cases_opened=opened)

    return service_app(
        broker, mongo, registry, on_startup=[ledger.ensure_indexes], after_startup=[outbox.flush]
    )
