"""Reporting's domain: what each event adds to the cell of its case."""

from datetime import UTC, datetime, timedelta

from services.matching.policy import Policy, assignment_for, rank
from services.notify.messages import ContactEntry, answered, contact_logged, notified, support_ended
from services.reporting.aggregates import (
    DIMENSIONS,
    Cell,
    Replay,
    counted_as,
    tally,
    waiting_cases,
)
from shared.events import (
    AboutCase,
    CaseEvent,
    PeerAssigned,
    ReferralKind,
    SupportCaseCounted,
    SupportOutcome,
    case_event,
)
from shared.mongo import with_counts
from shared.settings import Topics
from tests.factories import NOW, case_to_match, incident_json, opened_cases, participant, supporter


def events_of_one_incident() -> list[AboutCase]:
    people = [participant("E1"), participant("E2", function="physician", department="ED")]
    events: list[AboutCase] = []
    for opened in opened_cases(incident_json(participants=people)):
        case = case_to_match(opened)
        candidate = rank(case, [supporter("P1")], Policy(), NOW).candidates[0]
        assigned = assignment_for(case, candidate, 1, Policy(), NOW, opened.event_id)
        events += [opened, assigned, notified(assigned, "offer", "email", NOW)]
    return events


def read_by_reporting(*events: AboutCase) -> list[CaseEvent]:
    """What reporting reads of these events: their counts, as every `UnitOfWork` announces
    them, on reporting's own topics."""
    topics = Topics()
    announced = with_counts([(topics.assignments, e) for e in events], topics)
    return [
        case_event.validate_json(e.model_dump_json())
        for topic, e in announced
        if topic in topics.counted()
    ]


def test_each_event_counts_in_the_cell_of_its_case() -> None:
    cells = tally(read_by_reporting(*events_of_one_incident()), DIMENSIONS)
    nurse = Cell("2026-11", ("ZH-A", "nurse", "ICU", "severe"))
    physician = Cell("2026-11", ("ZH-A", "physician", "ED", "severe"))
    assert set(cells) == {nurse, physician}
    assert +cells[nurse] == {
        "cases_opened": 1,
        "opened_from_incident": 1,
        "peers_assigned": 1,
        "hours_to_assignment_le_1": 1,
        "peers_notified": 1,
    }


def test_reporting_reads_no_supporter_and_counts_each_step_under_the_event_it_counts() -> None:
    events = events_of_one_incident()
    read = read_by_reporting(*events)
    assert len(read) == len(events)
    for event in read:
        assert "supporter" not in event.model_dump_json()
        assert "P1" not in event.model_dump_json()
    opened, assigned = events[:2]
    assert [counted_as(e) for e in read[:2]] == [
        str(opened.counted().event_id),  # type: ignore[union-attr]
        str(assigned.event_id),  # counted once, had reporting read the offer itself before
    ]


def test_a_batch_notes_each_case_once_in_its_hospitals_month_for_the_next_correction() -> None:
    events = read_by_reporting(*events_of_one_incident())
    notices = [e for e in events if e.event_type == "support.notification_counted"]
    nothing_counted = [e.model_copy(update={"step": "follow_up_day_1"}) for e in notices]
    cases = {str(e.case_id) for e in events if isinstance(e, SupportCaseCounted)}
    assert waiting_cases([*events, *events]) == {("2026-11", "ZH-A"): cases}
    assert waiting_cases(nothing_counted) == {}


def test_a_replay_counts_an_event_repeated_in_a_later_batch_once() -> None:
    events = read_by_reporting(*events_of_one_incident())
    replay = Replay(DIMENSIONS)
    assert replay.count(events[:4]) == 4
    replay.written()
    assert replay.count([*events[2:], events[-1]]) == len(events) - 4
    nurse = Cell("2026-11", ("ZH-A", "nurse", "ICU", "severe"))
    physician = Cell("2026-11", ("ZH-A", "physician", "ED", "severe"))
    assert nurse.key in replay.written_cells  # already in the store: only added to
    assert replay.cells[physician]["peers_notified"] == 1
    assert len(replay.unwritten) == len(events) - 4
    assert replay.written_units == {("2026-11", "ZH-A")}


def test_supporters_answers_time_and_referrals_are_counted() -> None:
    opened, assigned, _ = events_of_one_incident()[:3]
    assert isinstance(assigned, PeerAssigned)
    now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    logged = [
        contact_logged(assigned, ContactEntry(contact_date=now.date(), minutes=m, mode="phone",
                                              tier=1, referred=r), f"n{m}", now, first_of_case=f)
        for m, r, f in ((45, False, True), (30, True, False))
    ]  # fmt: skip
    events = [
        opened,
        answered(assigned, True, now),
        notified(assigned, "reminder", "email", now),
        notified(assigned, "follow_up_day_1", "email", now),
        *logged,
    ]
    (counts,) = tally(read_by_reporting(*events), DIMENSIONS).values()
    assert +counts == {
        "cases_opened": 1,
        "opened_from_incident": 1,
        "accepted": 1,
        "reminded": 1,
        "contacts_logged": 2,
        "supporter_minutes": 75,
        "referrals": 1,
        "days_to_first_contact_le_1": 1,
    }


def test_only_the_first_offer_counts_towards_the_time_to_assignment() -> None:
    assigned = events_of_one_incident()[1]
    assert isinstance(assigned, PeerAssigned)
    late = assigned.occurred_at + timedelta(days=3)
    again = assigned.model_copy(update={"attempt": 2, "occurred_at": late})
    waited = assigned.model_copy(update={"occurred_at": late})
    (second,) = tally(read_by_reporting(again), DIMENSIONS).values()
    assert +second == {"peers_assigned": 1}
    (first,) = tally(read_by_reporting(waited), DIMENSIONS).values()
    assert first["hours_to_assignment_le_72"] == 1


def test_the_first_contact_is_counted_in_the_hospitals_own_days() -> None:
    """Opened at 00:30 on the 21st in Amsterdam (23:30 UTC on the 20th), contacted on the
    21st: the same day."""
    assigned = events_of_one_incident()[1]
    assert isinstance(assigned, PeerAssigned)
    at = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    assigned = assigned.model_copy(update={"case_opened_at": at})
    entry = ContactEntry(contact_date=at.date() + timedelta(days=1), minutes=30, mode="phone",
                         tier=1, referred=False)  # fmt: skip
    logged = contact_logged(assigned, entry, "n", at, first_of_case=True)
    (counts,) = tally(read_by_reporting(logged), DIMENSIONS).values()
    assert counts["days_to_first_contact_le_0"] == 1


def test_a_cell_holds_only_dimensions_and_counts() -> None:
    (cell,) = list(tally(read_by_reporting(*events_of_one_incident()[:1]), ("hospital_id", "harm")))
    assert cell == Cell("2026-11", ("ZH-A", "severe"))


def test_support_ended_is_counted_by_outcome_kind_of_referral_time_and_contacts() -> None:
    assigned = events_of_one_incident()[1]
    assert isinstance(assigned, PeerAssigned)
    later = assigned.model_copy(update={"case_opened_at": NOW - timedelta(days=20)})
    ended = support_ended(later, SupportOutcome.REFERRED, ReferralKind.EAP, NOW, contacts=3)
    (counts,) = tally(read_by_reporting(ended), DIMENSIONS).values()
    assert +counts == {
        "ended_referred": 1,
        "referred_eap": 1,
        "days_in_support_le_30": 1,
        "contacts_per_case_le_3": 1,
    }


def test_an_end_without_known_contacts_adds_nothing_to_contacts_per_case() -> None:
    assigned = events_of_one_incident()[1]
    assert isinstance(assigned, PeerAssigned)
    ended = support_ended(assigned, SupportOutcome.WITHDRAWN, None, NOW)
    (counts,) = tally(read_by_reporting(ended), DIMENSIONS).values()
    assert not any(name.startswith("contacts_per_case") for name in +counts)
