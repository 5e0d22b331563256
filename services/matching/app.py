"""matching: cases in, fair and safe assignments (re-made on decline or silence) out.

Three topics feed it: intake's cases, the roster's changes and the supporters' answers. A
clock of its own expires unanswered offers and retries waiting cases; several instances may
run it at once, since every step claims its case first.
"""

from datetime import timedelta

from faststream.asgi import AsgiFastStream
from pydantic import Field

from services.matching.matcher import Matcher
from services.matching.policy import DepartmentRule, Policy, Weights
from services.matching.store import CaseBook, Roster
from shared.events import (
    AssignmentResponse,
    CaseNews,
    GroupDebriefSuggested,
    RosterChange,
    SupportCaseClosed,
    SupportCaseOpened,
    SupportCaseUpdated,
    SupporterDeactivated,
)
from shared.kafka import subscription
from shared.service import Clock, service_app, wire
from shared.settings import ServiceSettings

SERVICE = "matching"


class MatchingSettings(ServiceSettings):
    http_port: int = 8082
    weight_function: float = Field(default=3.0, ge=0)
    weight_seniority: float = Field(default=2.0, ge=0)
    weight_age: float = Field(default=1.0, ge=0)
    weight_load: float = Field(default=2.0, ge=0)
    weight_waited: float = Field(default=1.0, ge=0)
    weight_department: float = Field(default=2.0, ge=0)
    department_rules: dict[str, DepartmentRule] = Field(default_factory=dict)
    """Per hospital, e.g. `{"UMC-C": "prefer"}`; others follow `default_department_rule`."""
    default_department_rule: DepartmentRule = DepartmentRule.AVOID
    large_incident: int = Field(default=5, ge=1)
    share_in_large_incident: int = Field(default=2, ge=1)
    timezone: str = "Europe/Amsterdam"
    urgent_response_seconds: float = Field(default=2 * 3600, gt=0)
    response_seconds: float = Field(default=24 * 3600, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    scan_seconds: float = Field(default=15.0, gt=0)
    """How often overdue offers and waiting cases are looked at without other cause."""
    scan_batch: int = Field(default=50, ge=1)

    def policy(self) -> Policy:
        return Policy(
            weights=Weights(
                function=self.weight_function,
                seniority=self.weight_seniority,
                age=self.weight_age,
                load=self.weight_load,
                waited=self.weight_waited,
                department=self.weight_department,
            ),
            department_rules=self.department_rules,
            default_department_rule=self.default_department_rule,
            large_incident=self.large_incident,
            share_in_large_incident=self.share_in_large_incident,
            timezone=self.timezone,
            urgent_response=timedelta(seconds=self.urgent_response_seconds),
            response=timedelta(seconds=self.response_seconds),
            max_attempts=self.max_attempts,
        )


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

    return service_app(wiring, settings, on_startup=[prepare], background=[clock.keep])
