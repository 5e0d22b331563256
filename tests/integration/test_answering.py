"""A supporter answers an offer from the link in their mail; matching acts on the answer."""

import re
from email.message import Message
from typing import Any

import pytest

from tests.factories import incident_json, participant, withdrawal_json
from tests.integration.pipeline import Pipeline
from tests.integration.test_pipeline import roster

pytestmark = pytest.mark.integration

LINK = re.compile(r"http://notify(/respond\?t=\S+)")


def link_in(mail: Message) -> str:
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    found = LINK.search(body.decode())
    assert found, body.decode()
    return found.group(1)


async def offered(pipeline: Pipeline, hospital: str, count: int = 1) -> list[dict[str, object]]:
    topic = pipeline.topics.notifications
    sent = f"{count} sent"
    await pipeline.until(lambda: len(pipeline.log.at(topic, hospital)) >= count, what=sent)
    return pipeline.log.events_at(pipeline.topics.assignments, hospital)


def mail_for(pipeline: Pipeline, offer: dict[str, Any]) -> Message:
    (mail,) = pipeline.mail.to(pipeline.supporter_of(offer).email)
    return mail


async def case_status(pipeline: Pipeline, case_id: object) -> str:
    cases = pipeline.mongo[f"{pipeline.database_prefix}matching"]["cases"]
    doc = await cases.find_one({"_id": case_id})
    assert doc is not None
    return str(doc["status"])


async def test_accepting_through_the_link_once(pipeline: Pipeline) -> None:
    await pipeline.load_roster(roster("A1"))
    await pipeline.report(incident_json("INC-A1", [participant("E91001")], hospital_id="A1"))
    (offer,) = await offered(pipeline, "A1")
    link = link_in(mail_for(pipeline, offer))

    opened = await pipeline.supporter.get(link)
    assert opened.status_code == 200
    assert 'value="accept"' in opened.text
    assert "Ja, ik neem contact op" in opened.text  # the supporter's language
    await pipeline.idle()
    assert pipeline.log.at(pipeline.topics.responses, "A1") == []  # opening answers nothing

    accepted = await pipeline.supporter.post(link, data={"answer": "accept"})
    assert accepted.status_code == 200
    assert "Je hebt het verzoek aangenomen" in accepted.text
    await pipeline.idle()
    (answer,) = pipeline.log.events_at(pipeline.topics.responses, "A1")
    assert answer["event_type"] == "assignment.accepted"
    assert answer["assignment_id"] == offer["assignment_id"]
    assert await case_status(pipeline, offer["case_id"]) == "accepted"
    cell = await pipeline.counted("A1")
    assert (cell["peers_notified"], cell["accepted"], cell["declined"]) == (1, 1, 0)

    again = await pipeline.supporter.post(link, data={"answer": "decline"})
    assert again.status_code == 409
    assert "Op dit verzoek is al geantwoord" in again.text
    await pipeline.idle()
    assert len(pipeline.log.at(pipeline.topics.responses, "A1")) == 1
    assert await case_status(pipeline, offer["case_id"]) == "accepted"


async def test_an_answer_after_the_deadline_is_refused_and_says_why(pipeline: Pipeline) -> None:
    await pipeline.load_roster(roster("A5"))
    await pipeline.report(incident_json("INC-A5", [participant("E91005")], hospital_id="A5"))
    (offer,) = await offered(pipeline, "A5")
    link = link_in(mail_for(pipeline, offer))
    offers = pipeline.mongo[f"{pipeline.database_prefix}notify"]["offers"]
    # The day passes: notify's copy of the deadline is what its pages go by.
    passed = {"$set": {"assignment.respond_by": "2020-01-01T00:00:00+00:00"}}
    await offers.update_one({"_id": offer["assignment_id"]}, passed)

    opened = await pipeline.supporter.get(link)
    assert opened.status_code == 409
    assert "De tijd om te antwoorden is voorbij" in opened.text
    accepted = await pipeline.supporter.post(link, data={"answer": "accept"})
    assert accepted.status_code == 409
    assert "De tijd om te antwoorden is voorbij" in accepted.text
    await pipeline.idle()
    assert pipeline.log.at(pipeline.topics.responses, "A5") == []
    assert await case_status(pipeline, offer["case_id"]) == "offered"


async def test_declining_through_the_link_brings_the_next_peer(pipeline: Pipeline) -> None:
    await pipeline.load_roster(roster("A2"))
    await pipeline.report(incident_json("INC-A2", [participant("E91002")], hospital_id="A2"))
    (first,) = await offered(pipeline, "A2")
    declined = await pipeline.supporter.post(
        link_in(mail_for(pipeline, first)), data={"answer": "decline"}
    )
    assert declined.status_code == 200
    offers = await offered(pipeline, "A2", 2)
    second = offers[-1]
    assert second["event_type"] == "support.peer_assigned"
    assert second["supporter_id"] != first["supporter_id"]
    assert mail_for(pipeline, second)["Subject"].startswith("Verzoek om collegiale ondersteuning")


async def test_forged_and_withdrawn_links_change_nothing(pipeline: Pipeline) -> None:
    await pipeline.load_roster(roster("A3"))
    event = incident_json("INC-A3", [participant("E91003")], hospital_id="A3")
    await pipeline.report(event)
    (offer,) = await offered(pipeline, "A3")
    link = link_in(mail_for(pipeline, offer))

    forged = await pipeline.supporter.post(link[:-3] + "xyz", data={"answer": "accept"})
    assert forged.status_code == 400
    assert "The link is not valid" in forged.text

    await pipeline.report(withdrawal_json("INC-A3", "A3"))
    await pipeline.idle()
    too_late = await pipeline.supporter.post(link, data={"answer": "accept"})
    assert too_late.status_code == 409
    assert "ingetrokken" in too_late.text
    await pipeline.idle()
    assert pipeline.log.at(pipeline.topics.responses, "A3") == []
