"""The public contract: what hospital systems may send, and what they are told when it is wrong."""

import json
from typing import Any

import pytest
from pydantic import ValidationError

from shared.errors import describe
from shared.events import Actuality, IncidentReported, IncidentStatus
from tests.factories import incident_json, participant


def reason_for(data: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as error:
        IncidentReported.model_validate_json(json.dumps(data))
    return describe(error.value)


def test_the_documented_example_is_accepted() -> None:
    event = IncidentReported.model_validate_json(json.dumps(incident_json()))
    assert event.incident_key == "ZH-A:INC-2026-000123"
    assert event.occurred_at.utcoffset() is not None
    assert [p.staff_id for p in event.participants] == ["E12345", "E23456"]


def test_status_and_actuality_default_as_in_fhir() -> None:
    data = incident_json()
    del data["status"], data["actuality"]
    event = IncidentReported.model_validate(data)
    assert event.status is IncidentStatus.COMPLETED
    assert event.actuality is Actuality.ACTUAL


def test_fields_from_a_newer_producer_are_ignored() -> None:
    event = IncidentReported.model_validate(incident_json(location_code="B4-12"))
    assert "location_code" not in event.model_dump()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"harm": "catastrophic"}, "harm: Input should be 'none', 'mild'"),
        ({"occurred_at": "2026-11-20T03:12:00"}, "occurred_at: Input should have timezone info"),
        ({"participants": []}, "participants: List should have at least 1 item"),
        ({"schema_version": 2}, "schema_version: Input should be 1"),
        ({"hospital_id": "ZH A; drop"}, "hospital_id: String should match pattern"),
    ],
)
def test_a_violation_is_named_by_its_field(change: dict[str, Any], expected: str) -> None:
    assert expected in reason_for(incident_json(**change))


def test_a_missing_field_is_named() -> None:
    data = incident_json()
    del data["category"]
    assert "category: Field required" in reason_for(data)


def test_a_participant_error_points_at_the_participant() -> None:
    bad = participant("E2", contact={"email": "not-an-address"})
    reason = reason_for(incident_json(participants=[participant("E1"), bad]))
    assert "participants.1.contact.email" in reason


def test_the_same_professional_twice_is_refused() -> None:
    reason = reason_for(incident_json(participants=[participant("E1"), participant("E1")]))
    assert "staff_id appears more than once" in reason
