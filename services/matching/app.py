"""matching: cases in, fair and safe assignments (re-made on decline or silence) out, and the
coordinator desk for what the software cannot decide.

Three topics feed the matcher: intake's cases, the roster's changes and the supporters'
answers. A clock of its own expires unanswered offers and retries waiting cases; several
instances may run it at once, since every step claims its case first. The desk also hears
the assignments and notifications topics, for each case's timeline and worklist.
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated

from fastapi import FastAPI
from faststream.kafka.annotations import KafkaMessage
from pydantic import TypeAdapter

from services.matching.coordination import Coordination
from services.matching.desk_api import desk_api_router
from services.matching.desk_store import DeskRecords
from services.matching.desk_views import DeskViews
from services.matching.desk_web import desk_pages_router
from services.matching.erasure import Erasure
from services.matching.matcher import Matcher
from services.matching.rosters import Rosters
from services.matching.settings import SERVICE, MatchingSettings
from services.matching.store import CaseBook, Roster
from shared.batches import Delivery, Unchecked
from shared.events import (
    AssignmentNews,
    AssignmentResponse,
    CaseNews,
    NotificationNews,
    RosterChange,
    SafetyConcernRaised,
    StepCount,
    SupportEnded,
    SupporterDeactivated,
)
from shared.gate import bearer_grant, refusals_of
from shared.kafka import subscription
from shared.service import Clock, Wiring, web_app, wire
from shared.signin import SignIn
from shared.tokens import ApiTokens, Sessions

CASE_NEWS = TypeAdapter(CaseNews)
ASSIGNMENT_NEWS = TypeAdapter(AssignmentNews)
NOTIFICATION_NEWS = TypeAdapter(NotificationNews)


def create_app(settings: MatchingSettings | None = None) -> FastAPI:
    settings = settings or MatchingSettings()
    wiring = wire(SERVICE, settings)
    topics = settings.topics
    roster, book = Roster(wiring.database), CaseBook(wiring.database)
    records = DeskRecords(wiring.database, settings.audit_kept)
    policy = settings.policy()
    if settings.exclusion_key is None:
        wiring.log.warning("EXCLUSION_KEY unset: a case tagged with it is offered to nobody")
    rosters = Rosters(roster, policy.recent_cases_full, wiring.log, wiring.registry)
    matcher = Matcher(
        wiring.unit_of_work, roster, book, policy, topics.assignments, wiring.log, rosters
    )
    _subscribe(wiring, settings, matcher, roster, records)

    async def scan() -> None:
        await matcher.expire_overdue(settings.scan_batch)
        await matcher.match_waiting(settings.scan_batch)

    clock = Clock("deadline and waiting scan", scan, settings.scan_seconds, matcher.capacity_freed)
    erasure = Erasure(book, records, settings.purge_after, wiring.log)
    erasing = Clock("erasure", erasure.purge_due, settings.purge_scan_seconds)
    tokens = ApiTokens(wiring.database, timedelta(days=settings.api_token_days))
    sessions = Sessions(wiring.database, tokens)
    refusals = refusals_of(wiring.database, wiring.registry, wiring.log, settings)
    app = web_app(
        wiring,
        settings,
        title="peer-support coordinator desk",
        description="The cases that need a coordinator, and what a coordinator does about them.",
        on_startup=[
            roster.ensure_indexes,
            book.ensure_indexes,
            records.ensure_indexes,
            sessions.ensure_indexes,
            refusals.ensure_indexes,
        ],
        background=[clock.keep, erasing.keep, rosters.follow],
        translated=True,
        publishes=[
            (topics.assignments, AssignmentNews, "offers, escalations, coordinators' decisions"),
            (topics.roster, RosterChange, "supporters deactivated or reactivated at the desk"),
            (topics.step_counts, StepCount, "each offer, escalation and end, for reporting"),
        ],
    )
    views = DeskViews(book, roster, records, policy, settings.targets(), settings.refresher_after)
    freed, reopen_within = matcher.capacity_freed, settings.reopen_window()
    coordination = Coordination(
        wiring.unit_of_work, roster, book, records, policy, topics, freed, reopen_within
    )
    app.include_router(
        desk_api_router(views, coordination, bearer_grant(tokens, refusals), refusals)
    )
    sign_in = SignIn(tokens, sessions, refusals, settings)
    sign_in.install(app)
    app.include_router(desk_pages_router(views, coordination, sign_in))
    return app


def _subscribe(
    wiring: Wiring,
    settings: MatchingSettings,
    matcher: Matcher,
    roster: Roster,
    records: DeskRecords,
) -> None:
    broker, topics, log = wiring.broker, settings.topics, wiring.log

    batches = wiring.batches

    async def on_cases(batch: Sequence[Delivery[CaseNews]]) -> None:
        await matcher.on_cases(batch)
        await records.heard([one.event for one in batch])

    async def on_case(one: Delivery[CaseNews]) -> None:
        await matcher.on_case_news(one.event)
        await records.heard([one.event])

    @broker.subscriber(
        topics.cases, **subscription(settings, SERVICE, "cases", batch=True, outreach=True)
    )
    async def on_case_news(
        news: Annotated[list[CaseNews], Unchecked], message: KafkaMessage
    ) -> None:
        await batches.handle(message.raw_message, CASE_NEWS, on_cases, on_case)

    @broker.subscriber(topics.responses, **subscription(settings, SERVICE, "responses"))
    async def on_response(response: AssignmentResponse) -> None:
        if isinstance(response, SupportEnded):
            await matcher.end(response)
        elif not isinstance(response, SafetyConcernRaised):  # the desk's alone
            await matcher.respond(response)
        await records.heard([response])

    @broker.subscriber(topics.roster, **subscription(settings, SERVICE, "roster", concurrent=False))
    async def on_roster_change(change: RosterChange) -> None:
        if isinstance(change, SupporterDeactivated):
            await roster.deactivate(change.supporter_id)
        else:
            await roster.apply(change.supporter)
            matcher.capacity_freed.set()
        log.info("roster changed", change=change.event_type, supporter_id=change.correlation_id)

    _hear_for_the_desk(wiring, settings, records)


def _hear_for_the_desk(wiring: Wiring, settings: MatchingSettings, records: DeskRecords) -> None:
    """Each case's timeline and notes, from the assignments and notifications, in batches."""
    broker, batches = wiring.broker, wiring.batches

    assignments = subscription(settings, SERVICE, "desk_assignments", batch=True)

    @broker.subscriber(settings.topics.assignments, **assignments)
    async def on_assignment_news(
        news: Annotated[list[AssignmentNews], Unchecked], message: KafkaMessage
    ) -> None:
        await batches.handle_events(message.raw_message, ASSIGNMENT_NEWS, records.heard)

    notifications = subscription(settings, SERVICE, "desk_notifications", batch=True)

    @broker.subscriber(settings.topics.notifications, **notifications)
    async def on_notification(
        news: Annotated[list[NotificationNews], Unchecked], message: KafkaMessage
    ) -> None:
        await batches.handle_events(message.raw_message, NOTIFICATION_NEWS, records.heard)
