"""Who may support a colleague, and who goes first: every rule, as a coordinator states it."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from services.matching.policy import (
    Case,
    DepartmentRule,
    Policy,
    Refusal,
    Weights,
    assignment_for,
    escalation_for,
    priority,
    rank,
)
from services.matching.supporters import Supporter as S
from shared.events import Absence, EscalationReason, Function, Harm, Weekday
from shared.pseudonyms import pseudonymise
from tests.factories import (
    NOW,
    PSEUDONYM_KEY,
    case_to_match,
    incident_json,
    opened_cases,
    participant,
    supporter,
)

POLICY = Policy()


@pytest.fixture
def case() -> Case:
    """The ICU nurse E12345 (4 years of experience, born 1994, speaks nl and en); E23456 from
    the ED was involved too."""
    return case_to_match(opened_cases()[0])


def chosen(case: Case, *roster: S, policy: Policy = POLICY) -> list[str]:
    return [c.supporter.supporter_id for c in rank(case, roster, policy, NOW).candidates]


def refusals(case: Case, *roster: S, policy: Policy = POLICY) -> Counter[Refusal]:
    return rank(case, roster, policy, NOW).refusals


def absence(first: date, last: date) -> Absence:
    return Absence(first_day=first, last_day=last)


def staff(staff_id: str) -> str:
    return pseudonymise(PSEUDONYM_KEY, "ZH-A", staff_id)


# --- Hard rules ----------------------------------------------------------------------------------


def test_someone_involved_in_the_incident_never_supports_it(case: Case) -> None:
    involved = supporter("P1", pseudonym=staff("E23456"))
    assert chosen(case, involved, supporter("P2")) == ["P2"]
    assert refusals(case, involved) == {Refusal.INVOLVED: 1}


def test_nobody_on_the_incidents_investigation(case: Case) -> None:
    event = incident_json(investigators=["E77777"])
    case = case_to_match(opened_cases(event)[0])
    assert refusals(case, supporter("P1", pseudonym=staff("E77777"))) == {Refusal.INVESTIGATOR: 1}


def test_never_the_colleagues_line_manager() -> None:
    people = [participant("E12345", line_manager_staff_id="E55555")]
    case = case_to_match(opened_cases(incident_json(participants=people))[0])
    manager = supporter("P1", pseudonym=staff("E55555"))
    assert refusals(case, manager, supporter("P2")) == {Refusal.LINE_MANAGER: 1}


def test_never_from_the_same_team_even_where_the_department_may_be_shared() -> None:
    people = [participant("E12345", team="ICU-2")]
    case = case_to_match(opened_cases(incident_json(participants=people))[0])
    near = Policy(default_department_rule=DepartmentRule.PREFER)
    team_mate = supporter("P1", department="ICU", team="ICU-2")
    other_team = supporter("P2", department="ICU", team="ICU-1")
    assert chosen(case, team_mate, other_team, policy=near) == ["P2"]
    assert refusals(case, team_mate, policy=near) == {Refusal.SAME_TEAM: 1}


def test_only_trained_active_supporters_of_the_same_hospital(case: Case) -> None:
    roster = [
        supporter("P1", active=False),
        supporter("P2", hospital_id="ZH-B"),
        supporter("P3", trained_on=None),
        supporter("P4", trained_on=date(2026, 12, 1)),
        supporter("P5"),
    ]
    assert chosen(case, *roster) == ["P5"]
    assert refusals(case, *roster) == {
        Refusal.INACTIVE: 1,
        Refusal.OTHER_HOSPITAL: 1,
        Refusal.NOT_TRAINED: 2,
    }


def test_only_supporters_available_today(case: Case) -> None:
    """NOW is Friday 2026-11-20 in Amsterdam."""
    roster = [
        supporter("P1", available_days=frozenset({Weekday.MON, Weekday.TUE})),
        supporter("P2", absences=(Absence(first_day=date(2026, 11, 16), last_day=NOW.date()),)),
        supporter("P3", available_days=frozenset({Weekday.FRI})),
        supporter(
            "P4", absences=(Absence(first_day=date(2026, 11, 21), last_day=date(2026, 12, 1)),)
        ),
    ]
    assert chosen(case, *roster) == ["P3", "P4"]
    assert refusals(case, *roster) == {Refusal.UNAVAILABLE: 1, Refusal.ABSENT: 1}


def test_today_is_the_hospitals_day_not_utc(case: Case) -> None:
    late_thursday_utc = datetime(2026, 11, 19, 23, 30, tzinfo=UTC)  # Friday 00:30 in Amsterdam
    friday_only = supporter("P1", available_days=frozenset({Weekday.FRI}))
    assert rank(case, [friday_only], POLICY, late_thursday_utc).candidates


def test_a_shared_language_is_required(case: Case) -> None:
    german = supporter("P1", languages=frozenset({"de"}))
    english = supporter("P2", languages=frozenset({"en", "de"}))
    assert chosen(case, german, english) == ["P2"]
    assert refusals(case, german) == {Refusal.NO_SHARED_LANGUAGE: 1}


def test_anyone_speaking_any_language_suits_a_colleague_who_gave_none() -> None:
    people = [participant("E12345", languages=[])]
    case = case_to_match(opened_cases(incident_json(participants=people))[0])
    assert chosen(case, supporter("P1", languages=frozenset({"de"}))) == ["P1"]


def test_a_supporter_at_capacity_takes_no_more(case: Case) -> None:
    assert chosen(case, supporter("P1", open_cases=3, max_open_cases=3), supporter("P2")) == ["P2"]


def test_who_declined_or_did_not_answer_is_not_asked_again() -> None:
    case = case_to_match(opened_cases()[0], tried=frozenset({"P1"}))
    assert chosen(case, supporter("P1"), supporter("P2")) == ["P2"]


# --- The department, per hospital -----------------------------------------------------------------


def test_by_default_nobody_from_the_colleagues_own_department(case: Case) -> None:
    assert chosen(case, supporter("P1", department=" icu "), supporter("P2")) == ["P2"]


def test_a_hospital_may_prefer_its_own_department(case: Case) -> None:
    near = Policy(department_rules={"ZH-A": DepartmentRule.PREFER})
    assert chosen(case, supporter("P2"), supporter("P1", department="ICU"), policy=near) == [
        "P1",
        "P2",
    ]
    elsewhere = Policy(department_rules={"ZH-B": DepartmentRule.PREFER})
    assert chosen(case, supporter("P1", department="ICU"), policy=elsewhere) == []


def test_a_hospital_may_ignore_the_department(case: Case) -> None:
    either = Policy(default_department_rule=DepartmentRule.EITHER)
    assert chosen(case, supporter("P2"), supporter("P1", department="ICU"), policy=either) == [
        "P1",
        "P2",
    ]


# --- Large incidents ------------------------------------------------------------------------------


def test_in_a_large_incident_one_supporter_takes_at_most_their_share() -> None:
    people = [participant(f"E{n}", department="ED") for n in range(10001, 10008)]
    case = case_to_match(opened_cases(incident_json(participants=people))[0])
    share = {"P1": 2, "P2": 1}
    ranking = rank(case, [supporter("P1"), supporter("P2")], POLICY, NOW, share)
    assert [c.supporter.supporter_id for c in ranking.candidates] == ["P2"]
    assert ranking.refusals == {Refusal.INCIDENT_SHARE: 1}


def test_in_a_small_incident_there_is_no_share(case: Case) -> None:
    assert rank(case, [supporter("P1")], POLICY, NOW, {"P1": 2}).candidates


# --- The score ----------------------------------------------------------------------------------


def test_the_same_function_beats_a_related_one_beats_another(case: Case) -> None:
    roster = [
        supporter("P1", function=Function.PHYSICIAN),
        supporter("P2", function=Function.MIDWIFE),
        supporter("P3", function=Function.NURSE),
    ]
    assert chosen(case, *roster) == ["P3", "P2", "P1"]


def test_comparable_or_greater_seniority_is_preferred(case: Case) -> None:
    junior = supporter("P1", seniority_years=0)
    senior = supporter("P2", seniority_years=20)
    as_experienced = supporter("P3", seniority_years=4)
    ranking = rank(case, [junior, senior, as_experienced], POLICY, NOW)
    scores = {c.supporter.supporter_id: c.score for c in ranking.candidates}
    assert scores["P2"] == scores["P3"] > scores["P1"]


def test_closer_in_age_is_preferred(case: Case) -> None:
    roster = [supporter("P1", birth_year=1960), supporter("P2", birth_year=1996)]
    assert chosen(case, *roster) == ["P2", "P1"]


def test_the_least_loaded_supporter_goes_first(case: Case) -> None:
    roster = [
        supporter("P1", open_cases=2),
        supporter("P2", open_cases=0),
        supporter("P3", open_cases=1),
    ]
    assert chosen(case, *roster) == ["P2", "P3", "P1"]


def test_cases_carried_in_the_recent_window_weigh_in_the_load(case: Case) -> None:
    """With capacity free everywhere, who carried fewer cases lately goes first; cases carried
    before the window no longer count."""
    lately = tuple(NOW - timedelta(days=d) for d in (10, 30, 60))
    long_ago = tuple(NOW - timedelta(days=d) for d in (100, 200, 300, 400))
    busy = supporter("P1", carried=lately)
    rested = supporter("P2", carried=long_ago)
    one = supporter("P3", carried=lately[:1])
    assert chosen(case, busy, rested, one) == ["P2", "P3", "P1"]
    assert chosen(case, busy, rested, policy=Policy(recent_window=timedelta(days=500))) == [
        "P1",
        "P2",
    ]


def test_equal_scores_go_to_who_waited_longest(case: Case) -> None:
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    recent = supporter("P1", last_assigned_at=long_ago + timedelta(days=10))
    earlier = supporter("P3", last_assigned_at=long_ago)
    assert chosen(case, recent, earlier) == ["P3", "P1"]


def test_a_recent_assignment_counts_against_a_supporter(case: Case) -> None:
    yesterday = supporter("P1", last_assigned_at=NOW - timedelta(days=1))
    never = supporter("P2", last_assigned_at=None)
    assert chosen(case, yesterday, never) == ["P2", "P1"]


def test_weights_come_from_the_settings(case: Case) -> None:
    age_only = Policy(weights=Weights(function=0, seniority=0, age=10, load=0, waited=0))
    physician_of_her_age = supporter("P1", function=Function.PHYSICIAN, birth_year=1994)
    nurse_far_older = supporter("P2", birth_year=1960)
    assert chosen(case, nurse_far_older, physician_of_her_age, policy=age_only)[0] == "P1"
    assert chosen(case, nurse_far_older, physician_of_her_age)[0] == "P2"


# --- Explanation, deadlines, escalation -------------------------------------------------------


def test_the_assignment_explains_the_choice(case: Case) -> None:
    peer = supporter("P1", open_cases=1, last_assigned_at=None, seniority_years=12)
    candidate = rank(case, [peer], POLICY, NOW).candidates[0]
    assigned = assignment_for(case, candidate, 1, POLICY, NOW, case.case_id)
    why = {item.rule: item for item in assigned.explanation}
    assert why["function"].detail == "same function: nurse, colleague nurse"
    assert why["function"].points == 3.0
    assert why["seniority"].detail == "12 years of experience, colleague 4"
    assert why["age"].detail == "born 1990, colleague 1994"
    assert why["open_cases"].detail == "1 of at most 3 open cases, 0 carried recently"
    assert why["waited"].detail == "never assigned before"
    assert why["department"].detail == "works in Cardiology, outside the colleague's (ICU)"
    assert why["language"].detail == "speaks nl with the colleague"
    assert "not involved" in why["protected"].detail
    assert assigned.score == pytest.approx(sum(i.points for i in assigned.explanation), abs=1e-3)
    assert assigned.supporter_id == "P1"
    assert "p1@zh-a.example" not in assigned.model_dump_json()  # contact details stay on the roster


def test_the_deadline_to_answer_follows_the_harm() -> None:
    severe = case_to_match(opened_cases()[0])
    mild = case_to_match(opened_cases(incident_json(harm="mild", calamity=False))[0])
    calamity = case_to_match(opened_cases(incident_json(harm="none", calamity=True))[0])
    candidate = rank(severe, [supporter("P1")], POLICY, NOW).candidates[0]
    assert assignment_for(severe, candidate, 1, POLICY, NOW, severe.case_id).respond_by == (
        NOW + timedelta(hours=2)
    )
    assert assignment_for(mild, candidate, 1, POLICY, NOW, mild.case_id).respond_by == (
        NOW + timedelta(hours=24)
    )
    assert calamity.profile.urgent


def test_severe_cases_come_before_milder_ones() -> None:
    def profile(harm: Harm, calamity: bool = False) -> int:
        event = incident_json(harm=harm.value, calamity=calamity)
        return priority(opened_cases(event)[0].profile)

    assert profile(Harm.DEATH) == profile(Harm.SEVERE) == profile(Harm.NONE, True) == 0
    assert profile(Harm.DEATH) < profile(Harm.MODERATE) < profile(Harm.MILD)
    assert profile(Harm.MILD) == profile(Harm.NONE)


def test_when_nobody_fits_the_escalation_says_why_without_names(case: Case) -> None:
    roster = [supporter("P1", department="ICU"), supporter("P2", open_cases=3)]
    ranking = rank(case, roster, POLICY, NOW)
    escalation = escalation_for(
        case, 0, EscalationReason.NO_PEER_AVAILABLE, ranking.refusals, NOW, case.case_id
    )
    assert ranking.candidates == []
    assert escalation.rejections == {"at_capacity": 1, "same_department": 1}
    assert "P1" not in escalation.model_dump_json()
