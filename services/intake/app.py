"""intake: incidents and support requests in, one support case per professional out. The work
is `Intake`'s."""

from faststream.asgi import AsgiFastStream
from faststream.kafka.annotations import KafkaMessage

from services.intake.intake import Intake
from services.intake.settings import SERVICE, IntakeSettings
from services.intake.store import IncidentRecords, Preferences
from shared.events import CaseContactRecorded, CaseNews, IncidentEvent, StaffMessage
from shared.kafka import subscription
from shared.service import service_app, wire


def create_app(settings: IntakeSettings | None = None) -> AsgiFastStream:
    settings = settings or IntakeSettings()
    wiring = wire(SERVICE, settings)
    broker, topics = wiring.broker, settings.topics
    intake = Intake(
        wiring.unit_of_work,
        IncidentRecords(wiring.database),
        Preferences(wiring.database),
        settings.policy(),
        settings.pseudonym_key.get_secret_value().encode(),
        topics,
        wiring.log,
    )

    if settings.source_systems is None:
        wiring.log.warning("SOURCE_SYSTEMS unset: any producer may report for any hospital")

    @broker.subscriber(topics.incidents_reported, **subscription(settings, SERVICE, "incidents"))
    async def on_incident(incident: IncidentEvent, message: KafkaMessage) -> None:
        record = message.raw_message
        await intake.on_incident(incident, key=None if isinstance(record, tuple) else record.key)

    @broker.subscriber(topics.staff, **subscription(settings, SERVICE, "staff"))
    async def on_staff_message(message: StaffMessage) -> None:
        await intake.on_staff_message(message)

    return service_app(
        wiring,
        settings,
        publishes=[
            (topics.cases, CaseNews, "one case per professional: opened, updated, closed"),
            (topics.contacts, CaseContactRecorded, "how to reach a colleague, for notify only"),
        ],
    )
