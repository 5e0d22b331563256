"""Incidents change after they are reported, and staff speak for themselves: the whole
pipeline keeps up, in whatever order the events arrive."""

import json
import uuid

import pytest

from tests.factories import (
    hospital_event,
    incident_json,
    outreach_choice_json,
    participant,
    withdrawal_json,
)
from tests.integration.pipeline import Pipeline
from tests.integration.test_pipeline import roster

pytestmark = pytest.mark.integration


async def test_an_update_before_its_report_is_applied_and_the_report_ignored(
    pipeline: Pipeline,
) -> None:
    await pipeline.load_roster(roster("U1"))
    people = [participant("E70001"), participant("E70002", "ED"), participant("E70003", "OR")]
    update = incident_json(
        "INC-U1", people, hospital_id="U1", event_type="incident.updated", revision=2,
        harm="death", calamity=True,
    )  # fmt: skip
    report = incident_json("INC-U1", people[:1], hospital_id="U1", harm="mild", calamity=False)
    await pipeline.report(update)
    await pipeline.report(report)
    await pipeline.until(
        lambda: len(pipeline.log.at(pipeline.topics.notifications, "U1")) == 3,
        what="three supporters notified",
    )
    await pipeline.idle()
    cases = pipeline.log.events_at(pipeline.topics.cases, "U1")
    assert [c["event_type"] for c in cases] == ["support.case_opened"] * 3
    assert {c["profile"]["harm"] for c in cases} == {"death"}
    offers = pipeline.log.events_at(pipeline.topics.assignments, "U1")
    assert len(offers) == 3


async def test_a_withdrawn_incident_closes_its_cases_and_cancels_their_offers(
    pipeline: Pipeline,
) -> None:
    await pipeline.load_roster(roster("U2"))
    event = incident_json("INC-U2", [participant("E70010")], hospital_id="U2")
    await pipeline.report(event)
    await pipeline.until(lambda: pipeline.log.at(pipeline.topics.notifications, "U2"))
    await pipeline.report(withdrawal_json("INC-U2", "U2"))
    await pipeline.report({**event, "event_id": str(uuid.uuid4())})  # a late resend
    await pipeline.idle()
    cases = pipeline.log.events_at(pipeline.topics.cases, "U2")
    assert [c["event_type"] for c in cases] == ["support.case_opened", "support.case_closed"]
    assert cases[1]["reason"] == "incident_withdrawn"
    news = [e["event_type"] for e in pipeline.log.events_at(pipeline.topics.assignments, "U2")]
    assert news == ["support.peer_assigned", "support.assignment_cancelled"]


async def test_a_request_opens_a_case_and_an_opt_out_is_respected(pipeline: Pipeline) -> None:
    await pipeline.load_roster(roster("U3"))
    staff = pipeline.topics.staff
    preference = outreach_choice_json("E70021", "declined", hospital_id="U3")
    await pipeline.send(staff, preference, "U3:E70021")
    await pipeline.idle()
    request = hospital_event(
        "support.requested", "U3", request_id="REQ-1", requested_by="colleague",
        professional=participant("E70020"), message="she has not slept since the night shift",
    )  # fmt: skip
    await pipeline.send(staff, request, "U3:REQ-1")
    incident = incident_json("INC-U3", [participant("E70021", "ED")], hospital_id="U3")
    await pipeline.report(incident)
    await pipeline.until(
        lambda: pipeline.log.at(pipeline.topics.notifications, "U3"),
        what="the requested support offered",
    )
    await pipeline.idle()

    by_origin = {
        c["profile"]["origin"]: c for c in pipeline.log.events_at(pipeline.topics.cases, "U3")
    }
    requested, opted_out = by_origin["referral"], by_origin["incident"]  # a colleague asked
    assert opted_out["opted_out"] is True
    for topic in (pipeline.topics.assignments, pipeline.topics.contacts):
        reached = {e["case_id"] for e in pipeline.log.events_at(topic, "U3")}
        assert reached == {requested["case_id"]}, "nobody reaches out to who opted out"
    downstream = [r for r in pipeline.log.records if r.topic != staff]
    assert [r.topic for r in downstream if b"night shift" in (r.value or b"")] == []
    cell = await pipeline.counted("U3", harm="severe")
    assert (cell["cases_opened"], cell["opted_out"], cell["peers_assigned"]) == (1, 1, 0)


async def test_an_oversized_event_is_dead_lettered_with_its_size(pipeline: Pipeline) -> None:
    huge = incident_json("INC-U4", hospital_id="U4")
    huge["padding"] = "x" * (300 * 1024)
    partition = await pipeline.report(huge)
    await pipeline.report(incident_json("INC-U4b", hospital_id="U4"), partition)
    await pipeline.until(lambda: pipeline.log.at(pipeline.topics.cases, "U4"))
    (letter,) = pipeline.log.on(f"{pipeline.topics.incidents_reported}.dlq", "U4:INC-U4")
    reason = dict(letter.headers)["dlq-reason"].decode()
    assert reason.startswith("event of 30")
    assert reason.endswith("bytes exceeds the limit of 262144 bytes")
    assert json.loads(letter.value or b"")["incident_id"] == "INC-U4"
