"""intake: incidents and support requests in, one support case per professional out."""

from datetime import datetime

from faststream.asgi import AsgiFastStream
from pydantic import Field
from pymongo.asynchronous.client_session import AsyncClientSession

from services.intake.cases import IntakePolicy, Occasion, reconcile
from services.intake.store import IncidentRecords, Preferences
from shared.events import (
    IncidentEvent,
    OutreachPreferenceSet,
    StaffMessage,
)
from shared.kafka import subscription
from shared.mongo import Announcements
from shared.pseudonyms import pseudonymise
from shared.service import service_app, wire
from shared.settings import PseudonymSettings, ServiceSettings

SERVICE = "intake"


class IntakeSettings(ServiceSettings, PseudonymSettings):
    """The common settings and the pseudonym key, which only intake and the roster use."""

    near_miss_outreach: bool = True
    """Reach out after near misses (`actuality: potential`) too."""
    large_incident: int = Field(default=5, ge=1)
    """More professionals than this in one incident: suggest a group debriefing."""


def create_app(settings: IntakeSettings | None = None) -> AsgiFastStream:
    settings = settings or IntakeSettings()
    wiring = wire(SERVICE, settings)
    log, broker = wiring.log, wiring.broker
    records = IncidentRecords(wiring.database)
    preferences = Preferences(wiring.database)
    topics = settings.topics
    pseudonym_key = settings.pseudonym_key.get_secret_value().encode()
    policy = IntakePolicy(settings.near_miss_outreach, settings.large_incident)

    async def take_in(occasion: Occasion) -> None:
        pseudonyms = [
            pseudonymise(pseudonym_key, occasion.hospital_id, p.staff_id)
            for p in occasion.participants
        ]

        async def record(session: AsyncClientSession, now: datetime) -> Announcements:
            previous = await records.get(session, occasion.key)
            opted_out = await preferences.opted_out(session, pseudonyms)
            outcome = reconcile(previous, occasion, pseudonym_key, opted_out, policy, now)
            if outcome.stale:
                return []
            await records.save(session, occasion.key, outcome.record, previous)
            return [
                *((topics.contacts, contact) for contact in outcome.contacts),
                *((topics.cases, event) for event in outcome.cases),
            ]

        published = await wiring.unit_of_work.run(record)
        log.info(
            "incident taken in" if published else "incident unchanged or superseded",
            revision=occasion.revision,
            participants=len(pseudonyms),
            events=sorted(doc["event_type"] for doc in published),
        )

    @broker.subscriber(topics.incidents_reported, **subscription(settings, SERVICE, "incidents"))
    async def on_incident(incident: IncidentEvent) -> None:
        await take_in(Occasion.of_incident(incident))

    @broker.subscriber(topics.staff, **subscription(settings, SERVICE, "staff"))
    async def on_staff_message(message: StaffMessage) -> None:
        if isinstance(message, OutreachPreferenceSet):
            pseudonym = pseudonymise(pseudonym_key, message.hospital_id, message.staff_id)
            changed = await preferences.record(pseudonym, message.outreach, message.occurred_at)
            log.info("outreach preference", outreach=message.outreach, changed=changed)
        else:
            await take_in(Occasion.of_request(message))

    return service_app(wiring, settings)
