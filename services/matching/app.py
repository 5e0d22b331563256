"""matching: cases in, fair and safe assignments (re-made on decline or silence) out.

Three topics feed it: intake's cases, the roster's changes and the supporters' answers. A
clock of its own expires unanswered offers and retries waiting cases; several instances may
run it at once, since every step claims its case first.
"""

from faststream.asgi import AsgiFastStream

from services.matching.matcher import Matcher
from services.matching.settings import SERVICE, MatchingSettings
from services.matching.store import CaseBook, Roster
from shared.events import (
    AssignmentNews,
    AssignmentResponse,
    CaseNews,
    GroupDebriefSuggested,
    RosterChange,
    SupportCaseClosed,
    SupportCaseOpened,
    SupportCaseUpdated,
    SupportEnded,
    SupporterDeactivated,
)
from shared.kafka import subscription
from shared.service import Clock, service_app, wire


def create_app(settings: MatchingSettings | None = None) -> AsgiFastStream:
    settings = settings or MatchingSettings()
    wiring = wire(SERVICE, settings)
    log, broker = wiring.log, wiring.broker
    roster = Roster(wiring.database)
    book = CaseBook(wiring.database)
    topics = settings.topics
    matcher = Matcher(wiring.unit_of_work, roster, book, settings.policy(), topics.assignments, log)

    @broker.subscriber(topics.cases, **subscription(settings, SERVICE, "cases"))
    async def on_case_news(news: CaseNews) -> None:
        match news:
            case SupportCaseOpened():
                await matcher.open(news)
            case SupportCaseUpdated():
                await matcher.update(news)
            case SupportCaseClosed():
                await matcher.close(news)
            case GroupDebriefSuggested():
                pass  # for the coordinator, not for matching

    @broker.subscriber(topics.responses, **subscription(settings, SERVICE, "responses"))
    async def on_response(response: AssignmentResponse) -> None:
        if isinstance(response, SupportEnded):
            await matcher.end(response)
        else:
            await matcher.respond(response)

    @broker.subscriber(topics.roster, **subscription(settings, SERVICE, "roster", concurrent=False))
    async def on_roster_change(change: RosterChange) -> None:
        if isinstance(change, SupporterDeactivated):
            await roster.deactivate(change.supporter_id)
        else:
            await roster.apply(change.supporter)
            matcher.capacity_freed.set()
        log.info("roster changed", change=change.event_type, supporter_id=change.correlation_id)

    async def scan() -> None:
        await matcher.expire_overdue(settings.scan_batch)
        await matcher.match_waiting(settings.scan_batch)

    clock = Clock("deadline and waiting scan", scan, settings.scan_seconds, matcher.capacity_freed)

    async def prepare() -> None:
        await roster.ensure_indexes()
        await book.ensure_indexes()

    return service_app(
        wiring,
        settings,
        on_startup=[prepare],
        background=[clock.keep],
        publishes=[(topics.assignments, AssignmentNews, "offers, escalations and their changes")],
    )
