"""A coordinator's actions on in-memory stores: what may be overridden, with a reason, and
what never; each action an event and an audit line."""

import asyncio
from datetime import timedelta

import pytest
import structlog

from services.matching.coordination import Coordination, Refused
from services.matching.desk import CaseNotes, Need, Targets, needs_of
from services.matching.matcher import Matcher
from services.matching.policy import Policy
from services.matching.rosters import Rosters
from services.matching.store import Status
from services.notify.messages import answered
from shared.access import Grant
from shared.events import (
    AssignmentCancelled,
    CancelReason,
    ConcernRaisedBy,
    PeerAssigned,
    SafetyConcernRaised,
    SupportEnded,
    SupportOutcome,
    SupportReopened,
)
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
    FakeNotes,
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
            reopen_within=timedelta(days=30),
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


async def accepted_by_the_icu_nurse(desk: Desk) -> str:
    case_id = await desk.opened()
    await desk.coordination.assign(case_id, "ICU-NURSE", "works nights", COORDINATOR)
    (offer,) = desk.unit_of_work.events(PeerAssigned)
    await desk.matcher.respond(answered(offer, True, NOW))
    assert desk.book.status(case_id) == Status.ACCEPTED
    return case_id


async def test_accepted_support_is_handed_over_and_the_first_supporter_thanked(
    desk: Desk,
) -> None:
    case_id = await desk.opened()
    with pytest.raises(Refused, match="only accepted support") as refused:
        await desk.coordination.hand_over(case_id, "FULL", "going on leave", COORDINATOR)
    assert refused.value.status == 409
    case_id = await accepted_by_the_icu_nurse(desk)
    with pytest.raises(Refused, match="give a reason for the handover"):
        await desk.coordination.hand_over(case_id, "FULL", " ", COORDINATOR)

    await desk.coordination.hand_over(case_id, "FULL", "going on leave", COORDINATOR)

    (thanked,) = desk.unit_of_work.events(AssignmentCancelled)
    assert (thanked.supporter_id, thanked.reason) == ("ICU-NURSE", CancelReason.HANDED_OVER)
    first, second = desk.unit_of_work.events(PeerAssigned)
    assert (second.supporter_id, second.attempt) == ("FULL", first.attempt + 1)
    assert desk.book.status(case_id) == Status.OFFERED
    assert desk.roster.open["ICU-NURSE"] == set(), "the first supporter's capacity is free"
    assert case_id in desk.roster.open["FULL"]
    assert [(line.action, line.supporter_id) for line in desk.audit.lines] == [
        ("assign", "ICU-NURSE"),
        ("hand over", "ICU-NURSE"),
        ("assign", "FULL"),
    ]
    assert "going on leave" not in second.model_dump_json(), "the reason never travels"


async def test_support_is_never_handed_to_someone_a_protective_rule_turns_away(
    desk: Desk,
) -> None:
    case_id = await accepted_by_the_icu_nurse(desk)
    with pytest.raises(Refused, match="never overridden"):
        await desk.coordination.hand_over(case_id, "INVESTIGATOR", "they asked", COORDINATOR)
    with pytest.raises(Refused, match="with this supporter already"):
        await desk.coordination.hand_over(case_id, "ICU-NURSE", "again", COORDINATOR)


async def test_an_ended_case_is_reopened_within_the_window_and_back_on_the_worklist(
    desk: Desk,
) -> None:
    case_id = await accepted_by_the_icu_nurse(desk)
    with pytest.raises(Refused, match="only an ended case"):
        await desk.coordination.reopen(case_id, "more needed", COORDINATOR)
    await desk.coordination.end(case_id, SupportOutcome.COMPLETED, None, "done", COORDINATOR)
    with pytest.raises(Refused, match="give a reason for reopening"):
        await desk.coordination.reopen(case_id, "", COORDINATOR)

    desk.unit_of_work.now = NOW + timedelta(days=29)
    await desk.coordination.reopen(case_id, "the colleague called again", COORDINATOR)

    (reopened,) = desk.unit_of_work.events(SupportReopened)
    assert reopened.ended_outcome == SupportOutcome.COMPLETED
    record = await desk.book.get(case_id)
    assert record is not None
    assert record.status == Status.ESCALATED
    items = needs_of(record, CaseNotes(), desk.unit_of_work.now, Targets())
    assert [item.need for item in items] == [Need.REOPENED]
    assert desk.audit.lines[-1].action == "reopen"
    await desk.coordination.assign(case_id, "ICU-NURSE", "they know them", COORDINATOR)
    assert desk.book.status(case_id) == Status.OFFERED, "its last supporter may have it again"


async def test_a_case_ended_longer_ago_than_the_window_is_not_reopened(desk: Desk) -> None:
    case_id = await accepted_by_the_icu_nurse(desk)
    await desk.coordination.end(case_id, SupportOutcome.COMPLETED, None, "done", COORDINATOR)
    desk.unit_of_work.now = NOW + timedelta(days=31)
    with pytest.raises(Refused, match="more than 30 days ago") as refused:
        await desk.coordination.reopen(case_id, "the colleague called again", COORDINATOR)
    assert refused.value.status == 409
    assert desk.book.status(case_id) == Status.ENDED


async def test_a_coordinators_concern_is_announced_and_settled_only_with_what_was_done(
    desk: Desk,
) -> None:
    case_id = await accepted_by_the_icu_nurse(desk)
    await desk.coordination.raise_concern(case_id, COORDINATOR)
    (raised,) = desk.unit_of_work.events(SafetyConcernRaised)
    assert (raised.raised_by, raised.supporter_id) == (ConcernRaisedBy.COORDINATOR, "ICU-NURSE")
    await desk.records.notes.concern(case_id, raised.occurred_at, raised.raised_by)
    with pytest.raises(Refused, match="say what was done"):
        await desk.coordination.settle_concern(case_id, " ", COORDINATOR)
    await desk.coordination.settle_concern(case_id, "back-up called them", COORDINATOR)
    with pytest.raises(Refused, match="no open safety concern") as refused:
        await desk.coordination.settle_concern(case_id, "again", COORDINATOR)
    assert refused.value.status == 409
    assert [line.action for line in desk.audit.lines][-2:] == [
        "safety concern raised",
        "safety concern settled",
    ]


async def test_a_case_is_claimed_and_annotated_and_the_audit_log_keeps_no_note(
    desk: Desk,
) -> None:
    case_id = await desk.opened()
    await desk.coordination.claim(case_id, COORDINATOR)
    colleague = Grant("ZH-A", "Second coordinator ZH-A (def)")
    await desk.coordination.claim(case_id, colleague)
    with pytest.raises(Refused, match="write the note first"):
        await desk.coordination.note(case_id, "  ", colleague)
    await desk.coordination.note(case_id, "called the ward; nights until Friday", colleague)

    notes = desk.records.notes
    assert isinstance(notes, FakeNotes)
    assert notes.owners[case_id] == colleague.holder
    (remark,) = notes.remarks[case_id]
    assert (remark.who, remark.text) == (colleague.holder, "called the ward; nights until Friday")
    lines = [(line.action, line.reason) for line in desk.audit.lines]
    assert lines == [
        ("claim", ""),
        ("claim", f"taken over from {COORDINATOR.holder}"),
        ("note added", ""),
    ], "the note's text stays with the case, erased with it"
    with pytest.raises(Refused) as refused:
        await desk.coordination.claim(case_id, Grant("UMC-B", "other"))
    assert refused.value.status == 404
