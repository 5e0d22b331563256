"""What a professional asks for, as the request page takes it and as matching honours it:
soft rules, explained like the others; a named supporter who cannot take it is passed over
with the reason kept for the coordinator."""

from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from services.intake.requests import AskForm, support_request
from services.matching.policy import Case, Policy, explain, rank
from shared.events import Function, SupportPreferences
from tests.factories import NOW, case_to_match, opened_cases, staff_member, supporter


def case_wishing(**wishes: Any) -> Case:
    case = case_to_match(opened_cases()[0])
    return replace(case, preferences=SupportPreferences(**wishes))


def test_a_supporter_asked_for_by_name_comes_first_and_is_told_so() -> None:
    case = case_wishing(supporter_id="P3")
    ranking = rank(case, [supporter("P1"), supporter("P2"), supporter("P3")], Policy(), NOW)
    assert ranking.candidates[0].supporter.supporter_id == "P3"
    assert ranking.passed_over is None
    rules = [item.rule for item in explain(case, supporter("P3"), Policy(), NOW)]
    assert "chosen_by_colleague" in rules


def test_a_named_supporter_a_rule_turns_away_is_passed_over_with_the_reason() -> None:
    case = case_wishing(supporter_id="P3")
    full = supporter("P3", open_cases=3)
    ranking = rank(case, [supporter("P1"), full], Policy(), NOW)
    assert ranking.candidates[0].supporter.supporter_id == "P1"
    assert ranking.passed_over is not None
    assert (ranking.passed_over.supporter_id, ranking.passed_over.refusal) == ("P3", "at_capacity")
    missing = rank(case_wishing(supporter_id="P9"), [supporter("P1")], Policy(), NOW)
    assert missing.passed_over is not None
    assert missing.passed_over.refusal == "not_on_the_roster"


def test_a_wish_for_the_own_department_sets_the_hospitals_rule_aside() -> None:
    case = case_to_match(opened_cases()[0])
    colleague_department = case.colleague.department
    same = supporter("P1", department=colleague_department)
    assert rank(case, [same], Policy(), NOW).candidates == [], "the hospital avoids it"
    wished = replace(case, preferences=SupportPreferences(department="own"))
    assert [c.supporter.supporter_id for c in rank(wished, [same], Policy(), NOW).candidates] == [
        "P1"
    ]


def test_a_wished_language_and_function_are_looked_for() -> None:
    dutch_nurse = supporter("P1", languages=frozenset({"nl"}))
    english_physician = supporter("P2", languages=frozenset({"en"}), function=Function.PHYSICIAN)
    in_english = rank(case_wishing(language="en"), [dutch_nurse, english_physician], Policy(), NOW)
    assert [c.supporter.supporter_id for c in in_english.candidates] == ["P2"]
    english_nurse = supporter("P3", languages=frozenset({"nl", "en"}))
    physician = rank(
        case_wishing(function="physician"), [english_nurse, english_physician], Policy(), NOW
    )
    assert physician.candidates[0].supporter.supporter_id == "P2"


def test_a_request_for_a_colleague_carries_nothing_of_who_asked() -> None:
    form = AskForm(
        hospital_id="ZH-A", staff_id="E10001", for_whom="colleague", colleague_staff_id="E10002"
    )
    colleague = staff_member("E10002")
    request = support_request(form, colleague, NOW)
    assert request.professional.staff_id == "E10002"
    assert request.professional.contact == colleague.contact, "reached as the directory says"
    assert request.requested_by == "colleague"
    assert "E10001" not in request.model_dump_json()
    with pytest.raises(ValidationError, match="staff id of the colleague"):
        AskForm(hospital_id="ZH-A", staff_id="E1", for_whom="colleague")
