"""What analysts are shown of a hospital's month is released once it has closed, then fixed:
a late case changes no answer, and a correction brings at least k (here 5) cases at once."""

from typing import Any

import pytest

from tests.factories import incident_json, participant
from tests.integration.pipeline import Pipeline
from tests.integration.rig import until_true
from tests.integration.test_pipeline import roster

pytestmark = pytest.mark.integration

MONTH = "2020-09-14T10:00:00+02:00"
"""A year of its own: no other test's hospital sits beside RL in it."""
QUESTIONS: list[dict[str, str]] = [
    {"hospital_id": "RL", "group_by": "period,hospital_id,function,harm"},
    {"hospital_id": "RL", "group_by": "period", "period": "year", "from": "2020"},
    {"group_by": "period,department", "from": "2020-01", "to": "2020-12"},
    {"hospital_id": "RL", "group_by": "period,harm", "format": "csv"},
]
"""A hospital's analyst and the network's, grouped several ways, as JSON and as CSV."""


async def opened(pipeline: Pipeline, incident_id: str, people: int, total: int) -> None:
    """Report an incident of `people` professionals in RL and wait until all is counted, up
    to each supporter's offer (sent once notify holds the colleague's contact)."""
    involved = [participant(f"E8{incident_id[-1]}{n:02d}", department="ED") for n in range(people)]
    await pipeline.report(incident_json(incident_id, involved, hospital_id="RL", occurred_at=MONTH))
    await until_true(
        lambda: pipeline.counted("RL"),
        lambda counted: counted["cases_opened"] >= total and counted["peers_notified"] >= total,
        f"{total} cases of RL counted and their offers sent",
    )
    await pipeline.idle()


async def answers(pipeline: Pipeline) -> list[Any]:
    """Every question's answer, as the analysts read it."""
    found = []
    for question in QUESTIONS:
        response = await pipeline.reporting.get("/api/v1/aggregates", params=question)
        assert response.status_code == 200
        found.append(response.text if question.get("format") == "csv" else response.json())
    return found


def cases_in(answer: dict[str, Any]) -> list[tuple[int, int]]:
    """The year's cases opened and the versions it was read from."""
    (row,) = answer["rows"]
    return [(row["cases_opened"], release["version"]) for release in answer["releases"]]


async def test_answers_within_a_release_stay_identical_and_a_correction_brings_k_cases(
    pipeline: Pipeline,
) -> None:
    await pipeline.load_roster(roster("RL"))
    await opened(pipeline, "INC-R1", 6, total=6)
    unreleased = await answers(pipeline)
    assert unreleased[0]["rows"] == []
    assert unreleased[0]["releases"] == [], "a month is shown only once released"

    await pipeline.release()
    released = await answers(pipeline)
    assert cases_in(released[1]) == [(6, 0)]
    (release,) = released[1]["releases"]
    assert (release["month"], release["hospital_id"]) == ("2020-09", "RL")
    assert set(release) == {"month", "hospital_id", "version", "released_at"}, (
        "no count beside the rows: a small month's would give away what they suppress"
    )

    await opened(pipeline, "INC-R2", 1, total=7)
    await pipeline.release()
    assert await answers(pipeline) == released, "one late case changes no answer"

    await opened(pipeline, "INC-R3", 4, total=11)
    await pipeline.release()
    corrected = await answers(pipeline)
    assert cases_in(corrected[1]) == [(11, 1)], "the late case and the four after it"
