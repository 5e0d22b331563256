"""Reporting's domain: counts per cell, rolled up, small cells hidden."""

from datetime import UTC, datetime

from services.matching.policy import Policy, assignment_for, rank
from services.notify.messages import ContactEntry, answered, contact_logged, notified
from services.reporting.aggregates import MEASURES, Cell, Row, roll_up, suppress, tally
from shared.events import CaseEvent, PeerAssigned
from tests.factories import NOW, case_to_match, incident_json, opened_cases, participant, supporter


def events_of_one_incident() -> list[CaseEvent]:
    people = [participant("E1"), participant("E2", function="physician", department="ED")]
    events: list[CaseEvent] = []
    for opened in opened_cases(incident_json(participants=people)):
        case = case_to_match(opened)
        candidate = rank(case, [supporter("P1")], Policy(), NOW).candidates[0]
        assigned = assignment_for(case, candidate, 1, Policy(), NOW, opened.event_id)
        events += [opened, assigned, notified(assigned, "offer", "email", NOW)]
    return events


def test_each_event_counts_in_the_cell_of_its_case() -> None:
    cells = tally(events_of_one_incident())
    nurse = Cell("2026-11", "ZH-A", "nurse", "severe")
    physician = Cell("2026-11", "ZH-A", "physician", "severe")
    assert set(cells) == {nurse, physician}
    assert +cells[nurse] == {"cases_opened": 1, "peers_assigned": 1, "peers_notified": 1}


def test_supporters_answers_time_and_referrals_are_counted() -> None:
    opened, assigned, _ = events_of_one_incident()[:3]
    assert isinstance(assigned, PeerAssigned)
    now = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    logged = [
        contact_logged(assigned, ContactEntry(contact_date=now.date(), minutes=m, mode="phone",
                                              tier=1, referred=r), f"n{m}", now)
        for m, r in ((45, False), (30, True))
    ]  # fmt: skip
    events = [
        opened,
        answered(assigned, True, now),
        notified(assigned, "reminder", "email", now),
        notified(assigned, "follow_up_day_1", "email", now),
        *logged,
    ]
    (counts,) = tally(events).values()
    assert +counts == {
        "cases_opened": 1,
        "accepted": 1,
        "reminded": 1,
        "contacts_logged": 2,
        "supporter_minutes": 75,
        "referrals": 1,
    }


def test_a_cell_holds_only_dimensions_and_counts() -> None:
    (cell,) = list(tally(events_of_one_incident()[:1]))
    assert cell.dimensions() == {
        "month": "2026-11",
        "hospital_id": "ZH-A",
        "function": "nurse",
        "harm": "severe",
    }


def row(month: str, hospital: str, cases: int) -> Row:
    return Row(
        {"month": month, "hospital_id": hospital, "function": "nurse", "harm": "none"},
        dict.fromkeys(MEASURES, 0) | {"cases_opened": cases, "peers_assigned": cases},
    )


def test_rolling_up_sums_the_dimensions_left_out() -> None:
    rows = [row("2026-10", "ZH-A", 4), row("2026-10", "ZH-B", 5), row("2026-11", "ZH-A", 7)]
    rolled = roll_up(rows, ["month"])
    assert [(r.dimensions, r.counts["cases_opened"]) for r in rolled] == [
        ({"month": "2026-10"}, 9),
        ({"month": "2026-11"}, 7),
    ]
    assert roll_up(rows, [])[0].counts["peers_assigned"] == 16


def test_cells_under_the_minimum_are_suppressed_whole() -> None:
    small, large = suppress([row("2026-10", "ZH-A", 4), row("2026-10", "ZH-B", 11)], 11)
    assert small.suppressed
    assert set(small.counts.values()) == {None}
    assert not large.suppressed
    assert large.counts["cases_opened"] == 11
    assert large.as_json()["hospital_id"] == "ZH-B"
