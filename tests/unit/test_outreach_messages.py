"""What a supporter reads: in their language, enough to reach out, nothing about the patient."""

from datetime import timedelta

import pytest

from services.notify.messages import render_outreach
from shared.mail import Outreach
from tests.factories import NOW, assignment_and_contacts

RESPOND_URL = "https://peer-support.zh-a.example/respond?t=signed"


def rendered(language: str, **supporter_changes: object) -> Outreach:
    return render_outreach(*assignment_and_contacts(language, **supporter_changes), RESPOND_URL)


def test_a_dutch_supporter_gets_dutch() -> None:
    outreach = rendered("nl")
    assert outreach.to == "p1@zh-a.example"
    assert outreach.subject == "Verzoek om collegiale ondersteuning (medicatie, 2026-11-20)"
    assert outreach.body.startswith("Beste Supporter P1,")
    assert "Een collega (verpleegkundige, ICU)" in outreach.body
    assert "(categorie: medicatie, schade: ernstig)" in outreach.body
    assert "- je hebt dezelfde functie (verpleegkundige)" in outreach.body
    assert "- je was niet bij het incident betrokken, onderzoekt het niet" in outreach.body
    assert "e12345@zh-a.example, +31612345678" in outreach.body
    # Severe harm: two hours to answer, shown in Amsterdam time.
    assert f"Geef je antwoord (ja of nee) vóór 2026-11-20 12:00 via:\n{RESPOND_URL}" in (
        outreach.body
    )


@pytest.mark.parametrize("language", ["en", "de"])
def test_other_languages_get_english(language: str) -> None:
    outreach = rendered(language)
    assert outreach.language == "en"
    assert outreach.body.startswith("Dear Supporter P1,")
    assert "A colleague (nurse, ICU)" in outreach.body


def test_the_reasons_for_the_match_are_listed() -> None:
    body = rendered("en").body
    assert "- you have the same function (nurse)" in body
    assert "- you have at least as much experience as your colleague" in body
    assert "- you are close in age to your colleague" in body
    assert "- you had 0 of at most 3 open cases" in body
    assert "- your last match was on 2026-01-01" in body
    assert "- you do not work in your colleague's department (ICU)" in body
    assert "- you were not involved in the incident, do not investigate it" in body
    assert "- you speak nl with your colleague" in body


def test_reasons_that_did_not_speak_for_the_supporter_are_left_out() -> None:
    body = rendered("en", function="physician", seniority_years=1, birth_year=1960).body
    assert "function" not in body
    assert "experience" not in body
    assert "close in age" not in body


def test_without_contact_details_the_supporter_is_sent_to_the_coordinator() -> None:
    assignment, supporter, contact = assignment_and_contacts("en")
    bare = contact.model_copy(update={"email": None, "phone": None})
    assert (
        "no contact details were given; ask the coordinator"
        in render_outreach(assignment, supporter, bare, RESPOND_URL).body
    )


def test_a_first_match_is_called_one() -> None:
    body = rendered("nl", last_assigned_at=None).body
    assert "- je bent nog niet eerder gekoppeld" in body


def test_cases_supported_recently_are_named_only_when_there_were_some() -> None:
    lately = (NOW - timedelta(days=20), NOW - timedelta(days=5))
    assert "- you had 0 of at most 3 open cases and supported 2 recently" in (
        rendered("en", carried=lately).body
    )
    assert "recently" not in rendered("en").body
