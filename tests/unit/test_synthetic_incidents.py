"""The demo's incidents are what a hospital system would send: valid and varied."""

from collections import Counter
from datetime import UTC, datetime

from deploy.incidents import incidents, kafka_key
from shared.events import IncidentReported

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def test_every_synthetic_incident_honours_the_public_contract() -> None:
    events = [IncidentReported.model_validate(e) for e in incidents(300, now=NOW)]
    assert len({e.event_id for e in events}) == 300
    assert {kafka_key(raw).decode() for raw in incidents(300, now=NOW)} == {
        e.incident_key for e in events
    }


def test_they_span_hospitals_functions_harm_levels_and_team_sizes() -> None:
    events = [IncidentReported.model_validate(e) for e in incidents(300, now=NOW)]
    assert {e.hospital_id for e in events} == {"ZH-A", "ZH-B", "UMC-C"}
    functions = Counter(p.function for e in events for p in e.participants)
    assert len(functions) >= 8
    assert functions.most_common(1)[0][0] == "nurse"
    assert len({e.harm for e in events}) == 6
    assert {len(e.participants) for e in events} == {1, 2, 3, 4}
    assert all((NOW - e.occurred_at).days <= 60 for e in events)


def test_the_same_seed_gives_the_same_incidents() -> None:
    assert incidents(20, seed=5, now=NOW) == incidents(20, seed=5, now=NOW)
    assert incidents(20, seed=5, now=NOW) != incidents(20, seed=6, now=NOW)
