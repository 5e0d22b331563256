"""The four services together on real servers: what a hospital, a supporter and an analyst see."""

import asyncio
import json
import os
import signal
import uuid
from datetime import datetime
from typing import Any

import pytest

from services.matching.roster import RosterEntry
from shared.events import ReferralKind
from tests.factories import incident_json, participant, roster_entry
from tests.integration.pipeline import Pipeline

pytestmark = pytest.mark.integration

INVOLVED_STAFF_ID = "E23456"


def roster(hospital: str) -> list[RosterEntry]:
    """Supporters whose ids sort so that, were a rule broken, the wrong one would win the tie."""

    return [
        roster_entry(hospital, "A-ICU", "E90001", "ICU"),
        roster_entry(hospital, "A-INVOLVED", INVOLVED_STAFF_ID, "Cardiology"),
        roster_entry(hospital, "S-1", "E90002", "Oncology"),
        roster_entry(hospital, "S-2", "E90003", "Radiology"),
    ]


async def report_and_wait(pipeline: Pipeline, event: dict[str, Any], notified: int) -> str:
    """Report an incident, in a hospital of its own, and wait until `notified` supporters were
    contacted for it; returns the hospital (no event after intake names the incident)."""
    hospital = event["hospital_id"]
    await pipeline.report(event)
    topic = pipeline.topics.notifications
    await pipeline.until(
        lambda: len(pipeline.log.at(topic, hospital)) >= notified,
        what=f"{notified} notified in {hospital}",
    )
    return str(hospital)


async def test_two_professionals_get_two_cases_two_supporters_and_two_emails(
    pipeline: Pipeline,
) -> None:
    await pipeline.load_roster(roster("T1"))
    people = [participant("E12345", department="ICU"), participant(INVOLVED_STAFF_ID, "ED")]
    event = incident_json("INC-1", people, hospital_id="T1")
    hospital = await report_and_wait(pipeline, event, 2)
    await pipeline.idle()
    await pipeline.release()

    cases = pipeline.log.events_at(pipeline.topics.cases, hospital)
    assignments = pipeline.log.events_at(pipeline.topics.assignments, hospital)
    assert len({c["case_id"] for c in cases}) == 2
    assert {a["event_type"] for a in assignments} == {"support.peer_assigned"}
    department_of_case = {c["case_id"]: c["colleague"]["department"] for c in cases}
    assigned = {a["case_id"]: a["supporter_id"] for a in assignments}
    assert assigned.keys() == department_of_case.keys()
    assert "T1-A-INVOLVED" not in assigned.values()
    icu_case = next(case for case, dept in department_of_case.items() if dept == "ICU")
    assert assigned[icu_case] != "T1-A-ICU"

    for assignment in assignments:
        (mail,) = pipeline.mail.to(pipeline.supporter_of(assignment).email)
        assert mail["Subject"] == "Verzoek om collegiale ondersteuning (medicatie, 2026-11-20)"
        assert f"<{assignment['assignment_id']}@peer-support>" == mail["Message-ID"]

    cells = [c for c in await pipeline.cells() if c["hospital_id"] == "T1"]
    assert sorted(c["department"] for c in cells) == ["ED", "ICU"]
    counted = ("cases_opened", "peers_assigned", "peers_notified")
    assert [sum(c[m] for c in cells) for m in counted] == [2, 2, 2]
    response = await pipeline.reporting.get(
        "/api/v1/aggregates", params={"hospital_id": "T1", "group_by": "hospital_id"}
    )
    assert response.status_code == 200
    (row,) = response.json()["rows"]
    assert row["suppressed"] is True  # 2 cases: under the minimum cell size of this test (5)
    assert row["cases_opened"] is None


async def test_reporting_reads_and_stores_no_personal_data(pipeline: Pipeline) -> None:
    await pipeline.load_roster(roster("T5"))
    people = [participant("E55555", department="ICU")]
    event = incident_json("INC-5", people, hospital_id="T5")
    hospital = await report_and_wait(pipeline, event, 1)
    await pipeline.idle()
    # At least once: an event the relay published again after a failed publish is one event.
    cases = pipeline.log.events_at(pipeline.topics.cases, hospital)
    (case,) = {e["event_id"]: e for e in cases}.values()
    assignments = pipeline.log.events_at(pipeline.topics.assignments, hospital)
    (assignment,) = {e["event_id"]: e for e in assignments}.values()
    database = pipeline.mongo[f"{pipeline.database_prefix}reporting"]
    stored = [
        json.dumps(doc, default=str)
        for name in await database.list_collection_names()
        async for doc in database[name].find()
    ]
    personal = [
        "E55555",
        case["colleague"]["pseudonym"],
        "e55555@zh-a.example",
        "+31612345678",
        assignment["supporter_id"],
        pipeline.supporter_of(assignment).email,
        pipeline.supporter_of(assignment).display_name,
    ]
    assert stored
    assert [p for p in personal if any(p in doc for doc in stored)] == []
    read = [
        (record.value or b"").decode()
        for topic in pipeline.topics.counted()
        for record in pipeline.log.at(topic, hospital)
    ]
    steps = {json.loads(r)["event_type"] for r in read}
    assert {"support.case_counted", "support.assignment_counted"} <= steps
    assert [
        p for p in (*personal, str(assignment["assignment_id"])) if any(p in r for r in read)
    ] == []


OWN_MONTH = "2023-03-12T10:00:00+01:00"


async def test_analysts_see_cells_large_enough(pipeline: Pipeline) -> None:
    await pipeline.load_roster(roster("T4"))
    people = [participant(f"E4000{i}", department="ED") for i in range(6)]
    # A year of its own: which rows are hidden depends on the hospitals and months beside them.
    event = incident_json("INC-4", people, hospital_id="T4", occurred_at=OWN_MONTH)
    await report_and_wait(pipeline, event, 6)
    await pipeline.idle()
    await pipeline.release()

    response = await pipeline.reporting.get(
        "/api/v1/aggregates",
        params={"hospital_id": "T4", "group_by": "period,hospital_id,function"},
    )
    assert response.json()["rows"] == [
        {
            "period": "2023-03",
            "hospital_id": "T4",
            "function": "nurse",
            "cases_opened": 6,
            "opted_out": 0,
            "peers_assigned": 6,
            "escalated": 0,
            "peers_notified": 6,
            "reminded": 0,
            "accepted": 0,
            "declined": 0,
            "contacts_logged": 0,
            "supporter_minutes": 0,
            "referrals": 0,
            "safety_concerns": 0,
            "ended_completed": 0,
            "ended_referred": 0,
            "ended_declined_by_colleague": 0,
            "ended_unreachable": 0,
            "ended_lapsed": 0,
            "ended_closed_by_coordinator": 0,
            "ended_withdrawn": 0,
            **{f"referred_{kind}": 0 for kind in ReferralKind},
            "opened_from_incident": 6,
            "opened_from_request": 0,
            "opened_from_referral": 0,
            "hours_to_assignment_p50": 1,
            "hours_to_assignment_p90": 1,
            "days_to_first_contact_p50": None,
            "days_to_first_contact_p90": None,
            "days_in_support_p50": None,
            "days_in_support_p90": None,
            "contacts_per_case_p50": None,
            "contacts_per_case_p90": None,
            "first_contact_within_target": 0,
            "first_contact_within_target_percent": None,
            "suppressed": False,
        }
    ]
    unknown = await pipeline.reporting.get("/api/v1/aggregates", params={"group_by": "staff_id"})
    assert unknown.status_code == 422
    wrong_period = await pipeline.reporting.get(
        "/api/v1/aggregates", params={"period": "quarter", "from": "2023-03"}
    )
    assert wrong_period.status_code == 422
    assert "'2023-03' is not a quarter" in wrong_period.json()["detail"]
    by_year = await pipeline.reporting.get(
        "/api/v1/aggregates",
        params={"period": "year", "hospital_id": "T4", "group_by": "period", "from": "2023"},
    )
    assert [(r["period"], r["cases_opened"]) for r in by_year.json()["rows"]] == [("2023", 6)]


async def test_cells_counted_before_a_dimension_was_added_show_it_unrecorded(
    pipeline: Pipeline,
) -> None:
    """What an upgrade finds: cells an older reporting counted without departments."""
    database = pipeline.mongo[f"{pipeline.database_prefix}reporting"]
    old = {"month": "2021-05", "hospital_id": "OLD1", "function": "nurse", "harm": "mild"}
    await database["cells"].insert_one(
        {"_id": "2021-05|OLD1|nurse|mild", **old, "cases_opened": 12}
    )
    try:
        await pipeline.release(restarted=True)
        response = await pipeline.reporting.get(
            "/api/v1/aggregates",
            params={"hospital_id": "OLD1", "group_by": "period,department", "period": "year"},
        )
    finally:  # no topic holds its events: a rebuild's comparison must not find it
        for name in ("cells", "released_cells", "release_units", "releases"):
            await database[name].delete_many({"hospital_id": "OLD1"})
    assert response.status_code == 200
    (row,) = response.json()["rows"]
    assert (row["period"], row["department"], row["cases_opened"]) == ("2021", "unrecorded", 12)


async def test_the_same_incident_again_changes_nothing(pipeline: Pipeline) -> None:
    await pipeline.load_roster(roster("T2"))
    event = incident_json("INC-2", [participant("E22222", department="OR")], hospital_id="T2")
    hospital = await report_and_wait(pipeline, event, 1)
    await pipeline.idle()
    before = await pipeline.cells()

    await pipeline.report(event)  # redelivered as it was
    await pipeline.report({**event, "event_id": str(uuid.uuid4())})  # re-sent by the hospital
    # Every internal event of this incident delivered a second time, to every service.
    for topic in (pipeline.topics.cases, pipeline.topics.case_counts, pipeline.topics.contacts,
                  pipeline.topics.assignments, pipeline.topics.notifications):  # fmt: skip
        for record in pipeline.log.at(topic, hospital):
            await pipeline.send_raw(record.value or b"", record.key or b"", topic=topic)
    await pipeline.idle()

    assert len(pipeline.log.events(pipeline.topics.incidents_reported, "T2:INC-2")) == 3
    assignments = pipeline.log.events_at(pipeline.topics.assignments, hospital)
    assert len(assignments) == 2  # ours + resent
    cases = pipeline.log.events_at(pipeline.topics.cases, hospital)
    assert len({e["event_id"] for e in cases}) == 1
    (assignment_id,) = {e["assignment_id"] for e in assignments}
    sent = [
        m for m in pipeline.mail.messages if m["Message-ID"] == f"<{assignment_id}@peer-support>"
    ]
    assert len(sent) == 1
    notified = pipeline.log.events_at(pipeline.topics.notifications, hospital)
    assert len({e["event_id"] for e in notified}) == 1
    assert await pipeline.cells() == before


async def test_a_malformed_event_is_dead_lettered_and_the_next_one_processed(
    pipeline: Pipeline,
) -> None:
    await pipeline.load_roster(roster("T3"))
    broken = b'{"event_type": "incident.reported", "hospital_id": "T3"'
    partition = await pipeline.send_raw(broken, b"T3:BROKEN")
    incomplete = incident_json("INC-3-BAD", hospital_id="T3")
    del incomplete["category"]
    await pipeline.report(incomplete, partition)
    valid = incident_json("INC-3", [participant("E33333", department="OR")], hospital_id="T3")
    await pipeline.report(valid, partition)

    await pipeline.until(
        lambda: pipeline.log.at(pipeline.topics.cases, "T3"), what="the valid incident"
    )
    dead = pipeline.log.on(f"{pipeline.topics.incidents_reported}.dlq")
    letters = {record.key: record for record in dead if (record.key or b"").startswith(b"T3:")}
    assert letters.keys() == {b"T3:BROKEN", b"T3:INC-3-BAD"}
    assert letters[b"T3:BROKEN"].value == broken
    headers = {k: v.decode() for k, v in letters[b"T3:BROKEN"].headers}
    assert headers["dlq-reason"] == "not a JSON document"
    assert headers["dlq-service"] == "intake"
    assert headers["dlq-source"].startswith(f"{pipeline.topics.incidents_reported}/{partition}/")
    assert datetime.fromisoformat(headers["dlq-failed-at"]).tzinfo is not None
    reason = dict(letters[b"T3:INC-3-BAD"].headers)["dlq-reason"].decode()
    assert "category: Field required" in reason
    assert json.loads(letters[b"T3:INC-3-BAD"].value or b"") == incomplete


async def test_an_unreachable_store_delays_but_loses_nothing(pipeline: Pipeline) -> None:
    local = pipeline.servers.local
    if local is None:
        pytest.skip("pausing the document store needs the local servers")
    await pipeline.load_roster(roster("T6"))
    people = [participant("E66661", department="ICU"), participant("E66662", department="ED")]
    event = incident_json("INC-6", people, hospital_id="T6")
    mongodb = next(p for p in local.processes if p.name.startswith("mongodb"))

    os.killpg(mongodb.pid, signal.SIGSTOP)  # the store hangs, as a stuck server does
    try:
        await pipeline.report(event)
        # Longer than the client's server selection timeout: handlers fail and retry.
        await asyncio.sleep(8)
        assert pipeline.log.at(pipeline.topics.cases, "T6") == []
    finally:
        os.killpg(mongodb.pid, signal.SIGCONT)

    await pipeline.until(
        lambda: len(pipeline.log.at(pipeline.topics.notifications, "T6")) == 2,
        within=120,
        what="both supporters notified after the store came back",
    )
    await pipeline.idle()
    assert len(pipeline.log.events_at(pipeline.topics.cases, "T6")) == 2
    assert len(pipeline.log.events_at(pipeline.topics.notifications, "T6")) == 2
    dead = [r for t in pipeline.topics.all() for r in pipeline.log.at(f"{t}.dlq", "T6")]
    assert dead == []
    cell = await pipeline.counted("T6")
    assert (cell["cases_opened"], cell["peers_notified"]) == (2, 2)
