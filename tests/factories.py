"""Events and roster entries as tests need them: valid by default, changed where a test says."""

import uuid
from datetime import UTC, datetime
from typing import Any

from services.matching.policy import Supporter
from shared.events import IncidentReported
from shared.pseudonyms import pseudonymise

PSEUDONYM_KEY = b"test-pseudonym-key-0123456789"


def participant(staff_id: str, department: str = "ICU", **changes: Any) -> dict[str, Any]:
    return {
        "staff_id": staff_id,
        "function": "nurse",
        "department": department,
        "involvement": "direct",
        "seniority_years": 4,
        "birth_year": 1994,
        "languages": ["nl", "en"],
        "contact": {"email": f"{staff_id.lower()}@zh-a.example", "phone": "+31612345678"},
        **changes,
    }


def incident_json(
    incident_id: str = "INC-2026-000123",
    participants: list[dict[str, Any]] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """The example of the public contract, as a hospital system would send it."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "incident.reported",
        "schema_version": 1,
        "occurred_at": "2026-11-20T03:12:00+01:00",
        "reported_at": "2026-11-20T08:40:00+01:00",
        "source_system": "epd-zh-a",
        "hospital_id": "ZH-A",
        "incident_id": incident_id,
        "status": "completed",
        "actuality": "actual",
        "category": "medication",
        "harm": "severe",
        "calamity": True,
        "department": "ICU",
        "participants": participants
        if participants is not None
        else [participant("E12345"), participant("E23456", department="ED")],
        **changes,
    }


def incident(**changes: Any) -> IncidentReported:
    return IncidentReported.model_validate(incident_json(**changes))


def supporter(supporter_id: str, **changes: Any) -> Supporter:
    fields: dict[str, Any] = {
        "supporter_id": supporter_id,
        "hospital_id": "ZH-A",
        "pseudonym": pseudonymise(PSEUDONYM_KEY, "ZH-A", f"staff-of-{supporter_id}"),
        "display_name": f"Supporter {supporter_id}",
        "email": f"{supporter_id.lower()}@zh-a.example",
        "function": "nurse",
        "department": "Cardiology",
        "max_open_cases": 3,
        "last_assigned_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return Supporter(**(fields | changes))
