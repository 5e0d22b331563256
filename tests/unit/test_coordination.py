"""A coordinator's actions on in-memory stores: what may be overridden, with a reason, and
what never; each action an event and an audit line."""

import asyncio

import pytest
import structlog

from services.matching.coordination import Coordination, Refused
from services.matching.matcher import Matcher
from services.matching.policy import Policy
from services.matching.rosters import Rosters
from services.matching.store import Status
from shared.access import Grant
from shared.events import AssignmentCancelled, PeerAssigned, SupportEnded, SupportOutcome
from shared.pseudonyms import pseudonymise
from shared.settings import Topics
from tests.factories import (
    NOW,
    PSEUDONYM_KEY,
    incident_json,
    opened_cases,
    participant,
    supporter,
)
from tests.fakes import (
    FakeAuditLog,
    FakeCaseBook,
    FakeDeskRecords,
    FakeRoster,
    FakeUnitOfWork,
)

COORDINATOR = Grant("ZH-A", "Coordinator ZH-A (abc)")


class Desk:
    """One case at ZH-A that nobody fits: one supporter works in the colleague's department
    (ICU), another investigates the incident, a third is full."""

    def __init__(self) -> None:
        event = incident_json(participants=[participant("E12345")], investigators=["E99999"])
        (self.case,) = opened_cases(event)
        investigator = pseudonymise(PSEUDONYM_KEY, "ZH-A", "E99999")
        self.unit_of_work = FakeUnitOfWork(NOW)
        self.roster = FakeRoster(
            [
                supporter("ICU-NURSE", department="ICU"),
                supporter("INVESTIGATOR", pseudonym=investigator),
                supporter("FULL", max_open_cases=1),
            ]
        )
        self.roster.open["FULL"] = {"another-case"}
        self.book = FakeCaseBook()
        self.records = FakeDeskRecords()
        self.audit = self.records.audit = FakeAuditLog()
        log = structlog.get_logger("test")
        rosters = Rosters(self.roster, Policy().recent_cases_full, log)
        self.matcher = Matcher(
            self.unit_of_work, self.roster, self.book, Policy(), Topics().assignments, log, rosters
        )
        self.coordination = Coordination(
            self.unit_of_work,
            self.roster,
            self.book,
            self.records,
            Policy(),
            Topics(),
            asyncio.Event(),
        )

    async def opened(self) -> str:
        await self.matcher.open(self.case)
        assert self.book.status(self.case.case_id) == Status.WAITING
        return str(self.case.case_id)


@pytest.fixture
def desk() -> Desk:
    return Desk()


async def test_a_soft_rule_is_set_aside_only_with_a_reason(desk: Desk) -> None:
    case_id = await desk.opened()
    with pytest.raises(Refused, match="give a reason") as refused:
        await desk.coordination.assign(case_id, "ICU-NURSE", "  ", COORDINATOR)
    assert refused.value.status == 422
    await desk.coordination.assign(case_id, "ICU-NURSE", "works nights", COORDINATOR)
    (offer,) = desk.unit_of_work.events(PeerAssigned)
    assert offer.supporter_id == "ICU-NURSE"
    assert offer.explanation[-1].rule == "chosen_by_coordinator"
    assert "works nights" not in offer.model_dump_json(), "the reason never travels"
    assert desk.book.status(case_id) == Status.OFFERED
    (line,) = desk.audit.lines
    assert (line.action, line.who, line.supporter_id) == ("assign", COORDINATOR.holder, "ICU-NURSE")
    assert line.reason == "works nights (overriding same_department)"


async def test_a_full_supporter_may_be_asked_anyway_and_takes_the_case_beyond_capacity(
    desk: Desk,
) -> None:
    case_id = await desk.opened()
    await desk.coordination.assign(case_id, "FULL", "offered to help", COORDINATOR)
    assert desk.roster.open["FULL"] == {"another-case", case_id}


async def test_a_rule_that_protects_the_colleague_is_never_set_aside(desk: Desk) -> None:
    case_id = await desk.opened()
    with pytest.raises(Refused, match="never overridden") as refused:
        await desk.coordination.assign(case_id, "INVESTIGATOR", "they asked", COORDINATOR)
    assert refused.value.status == 422
    assert desk.unit_of_work.events(PeerAssigned) == []
    assert desk.audit.lines == []


async def test_another_hospitals_coordinator_is_refused(desk: Desk) -> None:
    case_id = await desk.opened()
    with pytest.raises(Refused) as refused:
        await desk.coordination.assign(case_id, "ICU-NURSE", "mine", Grant("UMC-B", "other"))
    assert (refused.value.status, refused.value.reason) == (404, f"no case {case_id}")


async def test_withdrawing_an_offer_and_ending_the_case(desk: Desk) -> None:
    case_id = await desk.opened()
    await desk.coordination.assign(case_id, "ICU-NURSE", "works nights", COORDINATOR)
    await desk.coordination.withdraw(case_id, "ill", COORDINATOR)
    (cancelled,) = desk.unit_of_work.events(AssignmentCancelled)
    assert cancelled.reason == "withdrawn_by_coordinator"
    assert desk.roster.open["ICU-NURSE"] == set()
    assert desk.book.status(case_id) == Status.ESCALATED
    with pytest.raises(Refused) as refused:
        await desk.coordination.withdraw(case_id, "again", COORDINATOR)
    assert refused.value.status == 409
    await desk.coordination.end(
        case_id, SupportOutcome.COMPLETED, None, "talked it through", COORDINATOR
    )
    (ended,) = desk.unit_of_work.events(SupportEnded)
    assert ended.outcome == SupportOutcome.COMPLETED
    assert desk.book.status(case_id) == Status.ENDED
    assert [line.action for line in desk.audit.lines] == [
        "assign",
        "withdraw",
        "end: completed",
    ]
    with pytest.raises(Refused, match="not the coordinator's"):
        await desk.coordination.end(case_id, SupportOutcome.LAPSED, None, "", COORDINATOR)
