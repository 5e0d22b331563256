"""What a supporter reads: in their language, enough to reach out, nothing about the patient."""

from datetime import UTC, datetime

import pytest

from services.intake.cases import open_cases
from services.matching.policy import assignment_for, rank
from services.notify.messages import render_outreach
from shared.events import CaseContactRecorded, PeerAssigned
from tests.factories import PSEUDONYM_KEY, incident, supporter

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def assignment_and_contact(language: str) -> tuple[PeerAssigned, CaseContactRecorded]:
    case = open_cases(incident(), PSEUDONYM_KEY, NOW)[0]
    candidate = rank(case.case_opened, [supporter("P1", language=language)]).candidates[0]
    return assignment_for(case.case_opened, candidate, NOW), case.contact


def test_a_dutch_supporter_gets_dutch() -> None:
    outreach = render_outreach(*assignment_and_contact("nl"))
    assert outreach.to == "p1@zh-a.example"
    assert outreach.subject == "Verzoek om collegiale ondersteuning (medication, 2026-11-20)"
    assert outreach.body.startswith("Beste Supporter P1,")
    assert "e12345@zh-a.example, +31612345678" in outreach.body


@pytest.mark.parametrize("language", ["en", "de"])
def test_other_languages_get_english(language: str) -> None:
    outreach = render_outreach(*assignment_and_contact(language))
    assert outreach.language == "en"
    assert outreach.body.startswith("Dear Supporter P1,")
    assert "A colleague (nurse, ICU)" in outreach.body


def test_the_reasons_for_the_match_are_listed() -> None:
    body = render_outreach(*assignment_and_contact("en")).body
    assert "- 0 of at most 3 open cases" in body
    assert "- not among the staff involved in the incident" in body


def test_without_contact_details_the_supporter_is_sent_to_the_coordinator() -> None:
    assignment, contact = assignment_and_contact("en")
    bare = contact.model_copy(update={"email": None, "phone": None})
    assert (
        "no contact details were given; ask the coordinator"
        in render_outreach(assignment, bare).body
    )
