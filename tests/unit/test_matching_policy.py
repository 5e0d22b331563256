"""Who may support a colleague, and who goes first."""

from datetime import UTC, datetime

import pytest

from services.intake.cases import open_cases
from services.matching.policy import Refusal, assignment_for, no_peer_for, rank
from shared.events import SupportCaseOpened
from shared.pseudonyms import pseudonymise
from tests.factories import PSEUDONYM_KEY, incident, supporter

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def case() -> SupportCaseOpened:
    """The case of the ICU nurse E12345; E23456 (ED) was involved too."""
    return open_cases(incident(), PSEUDONYM_KEY, NOW)[0].case_opened


def chosen(case: SupportCaseOpened, *roster: object) -> list[str]:
    return [c.supporter.supporter_id for c in rank(case, roster).candidates]  # type: ignore[arg-type]


def test_someone_involved_in_the_incident_never_supports_it(case: SupportCaseOpened) -> None:
    involved = supporter("P1", pseudonym=pseudonymise(PSEUDONYM_KEY, "ZH-A", "E23456"))
    ranking = rank(case, [involved, supporter("P2")])
    assert [c.supporter.supporter_id for c in ranking.candidates] == ["P2"]
    assert ranking.refusals == {Refusal.INVOLVED: 1}


def test_nobody_from_the_colleagues_own_department(case: SupportCaseOpened) -> None:
    assert chosen(case, supporter("P1", department=" icu "), supporter("P2")) == ["P2"]


def test_only_active_supporters_of_the_same_hospital(case: SupportCaseOpened) -> None:
    roster = [supporter("P1", active=False), supporter("P2", hospital_id="ZH-B"), supporter("P3")]
    ranking = rank(case, roster)
    assert [c.supporter.supporter_id for c in ranking.candidates] == ["P3"]
    assert ranking.refusals == {Refusal.INACTIVE: 1, Refusal.OTHER_HOSPITAL: 1}


def test_a_supporter_at_capacity_takes_no_more(case: SupportCaseOpened) -> None:
    assert chosen(case, supporter("P1", open_cases=3, max_open_cases=3), supporter("P2")) == ["P2"]


def test_the_least_loaded_supporter_goes_first(case: SupportCaseOpened) -> None:
    roster = [
        supporter("P1", open_cases=2),
        supporter("P2", open_cases=0),
        supporter("P3", open_cases=1),
    ]
    assert chosen(case, *roster) == ["P2", "P3", "P1"]


def test_equal_loads_go_to_who_waited_longest(case: SupportCaseOpened) -> None:
    recent = supporter("P1", last_assigned_at=datetime(2026, 11, 1, tzinfo=UTC))
    never = supporter("P2", last_assigned_at=None)
    earlier = supporter("P3", last_assigned_at=datetime(2026, 6, 1, tzinfo=UTC))
    assert chosen(case, recent, never, earlier) == ["P2", "P3", "P1"]


def test_the_assignment_explains_the_choice(case: SupportCaseOpened) -> None:
    candidate = rank(case, [supporter("P1", open_cases=1, last_assigned_at=None)]).candidates[0]
    assigned = assignment_for(case, candidate, NOW)
    details = [item.detail for item in assigned.explanation]
    assert "1 of at most 3 open cases" in details
    assert "never assigned before" in details
    assert any("outside the colleague's department ICU" in d for d in details)
    assert assigned.supporter.email == "p1@zh-a.example"
    assert assigned.causation_id == case.event_id
    assert assigned.correlation_id == case.correlation_id


def test_when_nobody_fits_the_escalation_says_why(case: SupportCaseOpened) -> None:
    roster = [supporter("P1", department="ICU"), supporter("P2", open_cases=3)]
    ranking = rank(case, roster)
    escalation = no_peer_for(case, ranking, NOW)
    assert ranking.candidates == []
    assert escalation.rejections == {"at_capacity": 1, "same_department": 1}
    assert "P1" not in escalation.model_dump_json()
