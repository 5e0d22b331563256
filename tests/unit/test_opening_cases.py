"""intake's domain: one case per involved professional, with personal data kept apart."""

from datetime import UTC, datetime

from services.intake.cases import needs_support, open_cases
from shared.pseudonyms import pseudonymise
from tests.factories import PSEUDONYM_KEY, incident

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_each_professional_involved_gets_a_case_of_their_own() -> None:
    cases = open_cases(incident(), PSEUDONYM_KEY, NOW)
    assert len({c.case_id for c in cases}) == 2
    pseudonyms = [pseudonymise(PSEUDONYM_KEY, "ZH-A", s) for s in ("E12345", "E23456")]
    assert [c.case_opened.colleague.pseudonym for c in cases] == pseudonyms
    assert all(c.case_opened.involved_pseudonyms == pseudonyms for c in cases)


def test_the_case_event_carries_no_staff_id_or_contact() -> None:
    for case in open_cases(incident(), PSEUDONYM_KEY, NOW):
        published = case.case_opened.model_dump_json()
        assert "E12345" not in published
        assert "E23456" not in published
        assert "@zh-a.example" not in published
        assert "+316" not in published


def test_contact_details_travel_separately_for_notify() -> None:
    contact = open_cases(incident(), PSEUDONYM_KEY, NOW)[0].contact
    assert contact.email == "e12345@zh-a.example"
    assert contact.phone == "+31612345678"
    assert contact.languages == ["nl", "en"]


def test_the_same_incident_reported_twice_opens_the_same_cases() -> None:
    first = open_cases(incident(), PSEUDONYM_KEY, NOW)
    again = open_cases(incident(), PSEUDONYM_KEY, datetime(2026, 11, 21, tzinfo=UTC))
    assert [c.case_id for c in first] == [c.case_id for c in again]
    assert [c.case_opened.event_id for c in first] == [c.case_opened.event_id for c in again]


def test_events_trace_back_to_the_incident() -> None:
    reported = incident()
    opened = open_cases(reported, PSEUDONYM_KEY, NOW)[0].case_opened
    assert opened.correlation_id == "ZH-A:INC-2026-000123"
    assert opened.causation_id == reported.event_id
    assert opened.profile.month == "2026-11"


def test_an_incident_entered_in_error_needs_no_support() -> None:
    assert needs_support(incident())
    assert not needs_support(incident(status="entered-in-error"))
