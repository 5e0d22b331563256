"""matching's lifecycle on in-memory stores: decline, silence, exhaustion, waiting, closing."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import structlog
from aiokafka import ConsumerRecord

from services.matching.matcher import Matcher
from services.matching.policy import Policy
from services.matching.rosters import Rosters
from services.matching.store import Status
from services.notify.messages import answered, support_ended
from shared.batches import Delivery
from shared.events import (
    AssignmentCancelled,
    CaseEscalated,
    PeerAssigned,
    SupportCaseClosed,
    SupportCaseOpened,
    SupportEnded,
    SupportOutcome,
)
from tests.factories import NOW, opened_cases, supporter
from tests.fakes import FakeCaseBook, FakeRoster, FakeUnitOfWork

TOPIC = "support.assignments.v1"


@dataclass
class Lifecycle:
    matcher: Matcher
    unit_of_work: FakeUnitOfWork
    roster: FakeRoster
    book: FakeCaseBook
    case: SupportCaseOpened

    def offers(self) -> list[PeerAssigned]:
        return self.unit_of_work.events(PeerAssigned)

    def escalations(self) -> list[CaseEscalated]:
        return self.unit_of_work.events(CaseEscalated)

    async def decline(self, offer: PeerAssigned) -> None:
        await self.matcher.respond(answered(offer, False, self.unit_of_work.now))


def withdrawn(case: SupportCaseOpened) -> SupportCaseClosed:
    return SupportCaseClosed(
        event_id=case.event_id,
        occurred_at=NOW,
        producer="intake",
        correlation_id=case.correlation_id,
        hospital_id=case.hospital_id,
        case_id=case.case_id,
        profile=case.profile,
        reason="incident_withdrawn",
    )


def delivered(case: SupportCaseOpened, offset: int) -> Delivery[SupportCaseOpened]:
    record = ConsumerRecord("support.cases.v1", 0, offset, 0, 0, None, b"", None, 0, 0, [])
    return Delivery(record, case, {})


def lifecycle(*supporter_ids: str, **policy: Any) -> Lifecycle:
    unit_of_work = FakeUnitOfWork(NOW)
    roster = FakeRoster(supporter(s) for s in supporter_ids)
    book = FakeCaseBook()
    log = structlog.get_logger("test")
    rules = Policy(**policy)
    rosters = Rosters(roster, rules.recent_cases_full, log)
    matcher = Matcher(unit_of_work, roster, book, rules, TOPIC, log, rosters)
    return Lifecycle(matcher, unit_of_work, roster, book, opened_cases()[0])


async def test_a_declined_case_goes_to_someone_else_and_frees_the_first() -> None:
    life = lifecycle("P1", "P2")
    await life.matcher.open(life.case)
    (first,) = life.offers()
    await life.decline(first)
    second = life.offers()[-1]
    assert second.supporter_id != first.supporter_id
    assert second.attempt == 2
    assert life.roster.open[first.supporter_id] == set()


async def test_declined_by_everyone_allowed_it_escalates_with_attempts_exhausted() -> None:
    life = lifecycle("P1", "P2", "P3", max_attempts=2)
    await life.matcher.open(life.case)
    await life.decline(life.offers()[-1])
    await life.decline(life.offers()[-1])
    (escalation,) = life.escalations()
    assert escalation.reason == "attempts_exhausted"
    assert life.book.status(life.case.case_id) == Status.ESCALATED
    assert all(not cases for cases in life.roster.open.values())


async def test_with_nobody_free_the_case_waits_escalated_once_then_is_offered() -> None:
    life = lifecycle()
    await life.matcher.open(life.case)
    await life.matcher.match_waiting(10)
    (escalation,) = life.escalations()
    assert escalation.reason == "no_peer_available"
    assert life.book.status(life.case.case_id) == Status.WAITING

    life.roster.supporters["P9"] = supporter("P9")
    life.roster.open["P9"] = set()
    assert await life.matcher.match_waiting(10) == 1
    assert [o.supporter_id for o in life.offers()] == ["P9"]
    assert len(life.escalations()) == 1


async def test_an_unanswered_offer_is_cancelled_and_offered_again() -> None:
    life = lifecycle("P1", "P2")
    await life.matcher.open(life.case)
    (first,) = life.offers()
    life.unit_of_work.now = first.respond_by + Policy().answer_grace + timedelta(seconds=1)
    assert await life.matcher.expire_overdue(10) == 1
    (cancelled,) = life.unit_of_work.events(AssignmentCancelled)
    assert cancelled.reason == "no_response"
    assert life.offers()[-1].supporter_id != first.supporter_id


async def test_an_answer_given_at_the_deadline_arrives_before_the_offer_expires() -> None:
    """notify takes answers until the deadline; matching waits the grace for them."""
    life = lifecycle("P1", "P2")
    await life.matcher.open(life.case)
    (first,) = life.offers()
    life.unit_of_work.now = first.respond_by + timedelta(seconds=30)
    assert await life.matcher.expire_overdue(10) == 0
    await life.matcher.respond(answered(first, True, first.respond_by))
    life.unit_of_work.now = first.respond_by + Policy().answer_grace + timedelta(seconds=1)
    assert await life.matcher.expire_overdue(10) == 0
    assert life.book.status(life.case.case_id) == Status.ACCEPTED
    assert life.unit_of_work.events(AssignmentCancelled) == []


async def test_a_closed_case_gives_its_supporter_capacity_back() -> None:
    life = lifecycle("P1")
    await life.matcher.open(life.case)
    (offer,) = life.offers()
    closed = withdrawn(life.case)
    await life.matcher.close(closed)
    assert life.roster.open["P1"] == set()
    (cancelled,) = life.unit_of_work.events(AssignmentCancelled)
    assert cancelled.reason == "case_closed"
    assert life.book.status(life.case.case_id) == Status.CLOSED
    assert offer.case_id == life.case.case_id


@pytest.mark.parametrize("redelivered", [1, 2])
async def test_a_case_opened_again_changes_nothing(redelivered: int) -> None:
    life = lifecycle("P1", "P2")
    for _ in range(1 + redelivered):
        await life.matcher.open(life.case)
    assert len(life.offers()) == 1


async def test_when_support_ends_capacity_comes_back_and_a_waiting_case_is_offered() -> None:
    life = lifecycle("P1")
    life.roster.supporters["P1"] = supporter("P1", max_open_cases=1)
    first, second = opened_cases()
    await life.matcher.open(first)
    await life.matcher.open(second)
    (offer,) = life.offers()
    assert life.book.status(second.case_id) == Status.WAITING
    await life.matcher.respond(answered(offer, True, NOW))
    await life.matcher.end(support_ended(offer, SupportOutcome.COMPLETED, None, NOW))
    assert life.book.status(first.case_id) == Status.ENDED
    assert life.matcher.capacity_freed.is_set()
    assert await life.matcher.match_waiting(10) == 1
    assert [o.case_id for o in life.offers()] == [first.case_id, second.case_id]


async def test_an_end_for_a_case_not_in_support_changes_nothing() -> None:
    life = lifecycle("P1", "P2")
    await life.matcher.open(life.case)
    (offer,) = life.offers()
    await life.matcher.end(support_ended(offer, SupportOutcome.COMPLETED, None, NOW))
    assert life.book.status(life.case.case_id) == Status.OFFERED  # never accepted
    assert life.roster.open[offer.supporter_id] == {str(life.case.case_id)}


async def test_support_under_way_ends_as_withdrawn_when_the_incident_is_withdrawn() -> None:
    life = lifecycle("P1")
    await life.matcher.open(life.case)
    (offer,) = life.offers()
    await life.matcher.respond(answered(offer, True, NOW))
    await life.matcher.close(withdrawn(life.case))
    (ended,) = life.unit_of_work.events(SupportEnded)
    assert ended.outcome == SupportOutcome.WITHDRAWN
    assert ended.event_id == support_ended(offer, SupportOutcome.WITHDRAWN, None, NOW).event_id
    assert life.roster.open["P1"] == set()


async def test_a_late_decline_racing_the_end_of_support_changes_nothing() -> None:
    """The supporter accepted, then ended support; a decline from an older message arrives
    after either: the case stays ended, nobody else is offered it, capacity comes back once."""
    life = lifecycle("P1", "P2")
    await life.matcher.open(life.case)
    (offer,) = life.offers()
    await life.matcher.respond(answered(offer, True, NOW))
    await life.decline(offer)
    assert life.book.status(life.case.case_id) == Status.ACCEPTED
    await life.matcher.end(support_ended(offer, SupportOutcome.COMPLETED, None, NOW))
    await life.decline(offer)
    assert life.book.status(life.case.case_id) == Status.ENDED
    assert life.offers() == [offer]
    assert life.roster.open == {"P1": set(), "P2": set()}


async def test_an_accepted_case_weighs_in_the_supporters_recent_load() -> None:
    life = lifecycle("P1")
    await life.matcher.open(life.case)
    (offer,) = life.offers()
    assert not life.roster.supporters["P1"].carried
    await life.matcher.respond(answered(offer, True, NOW))
    assert life.roster.supporters["P1"].carried == (life.unit_of_work.now,)


async def test_a_batch_redelivering_an_opened_case_offers_only_the_new_one() -> None:
    life = lifecycle("P1", "P2")
    earlier, new = opened_cases()
    await life.matcher.open(earlier)
    await life.matcher.on_cases([delivered(earlier, 0), delivered(new, 1)])
    assert [offer.case_id for offer in life.offers()] == [earlier.case_id, new.case_id]
    assert life.book.status(new.case_id) == Status.OFFERED
