"""matching: opened cases in, one fair and safe assignment (or an escalation) out."""

from datetime import UTC, datetime

from faststream.asgi import AsgiFastStream
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from services.matching.policy import assignment_for, no_peer_for, rank
from services.matching.store import Decisions, Roster
from shared.events import SupportCaseOpened
from shared.kafka import subscription
from shared.mongo import Document, Outbox, in_transaction
from shared.service import service_app, wire
from shared.settings import ServiceSettings

SERVICE = "matching"


class MatchingSettings(ServiceSettings):
    http_port: int = 8082


def create_app(settings: MatchingSettings | None = None) -> AsgiFastStream:
    settings = settings or MatchingSettings()
    wiring = wire(SERVICE, settings)
    log, registry, broker, mongo = wiring.log, wiring.registry, wiring.broker, wiring.mongo
    roster = Roster(wiring.database)
    decisions = Decisions(wiring.database)
    outbox = Outbox(wiring.database, broker)
    topic = settings.topics.assignments

    @broker.subscriber(settings.topics.cases, **subscription(settings, SERVICE, "cases"))
    async def on_case_opened(case: SupportCaseOpened) -> None:
        case_id = str(case.case_id)

        async def decide(session: AsyncClientSession) -> list[Document]:
            now = datetime.now(UTC)
            ranking = rank(case, await roster.available_in(case.hospital_id, session))
            for candidate in ranking.candidates:
                supporter_id = candidate.supporter.supporter_id
                if await roster.reserve(session, supporter_id, case_id, now):
                    await decisions.record(
                        session, case_id, outcome="assigned", supporter_id=supporter_id, at=now
                    )
                    return await outbox.put(
                        session, [(topic, assignment_for(case, candidate, now))]
                    )
            await decisions.record(session, case_id, outcome="no_peer_available", at=now)
            return await outbox.put(session, [(topic, no_peer_for(case, ranking, now))])

        try:
            decided = await in_transaction(mongo, decide)
        except DuplicateKeyError:
            # Decided before: this delivery's transaction, reservation included, was undone.
            log.info("case decided before", case_id=case_id)
            return
        await outbox.flush(decided)
        outcome = decided[0]["payload"]
        log.info(
            "case decided",
            case_id=case_id,
            outcome=outcome["event_type"],
            supporter_id=outcome.get("supporter", {}).get("supporter_id"),
            rejections=outcome.get("rejections"),
        )

    return service_app(
        broker, mongo, registry, on_startup=[roster.ensure_indexes], after_startup=[outbox.flush]
    )
