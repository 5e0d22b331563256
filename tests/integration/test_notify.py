"""notify on real servers with a real SMTP server and a real SMS webhook receiver: reminders,
follow-ups, logged contacts, channels and their fallback. Assignments and contacts are
published as matching and intake publish them, the contact sealed to the key notify makes
for its case."""

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from deploy.localservers import free_port
from services.intake.cases import sealed_contact
from services.matching.policy import Policy, assignment_for, rank
from services.notify.app import create_app
from services.notify.settings import NotifySettings
from shared.events import (
    AssignmentCancelled,
    CancelReason,
    CaseContactRecorded,
    ChannelName,
    PeerAssigned,
    SupportCaseCounted,
    SupportCaseOpened,
    SupporterContact,
)
from tests.factories import (
    LINK_SECRET,
    case_to_match,
    contact_key,
    incident_json,
    participant,
    reachable,
    reconciled,
    supporter,
)
from tests.integration.rig import MailSink, Rig, Servers, isolated, running, until, until_true

pytestmark = pytest.mark.integration

COLLEAGUE = "E7654321"
"""The staff id of every colleague in these tests."""
REMINDER_AFTER = 2.0
"""Seconds: the rig's offers have twice this to be answered, unless asked otherwise."""
UNHURRIED = timedelta(hours=1)
"""An offer's time to answer for tests of the offer alone: no reminder comes during them."""


@dataclass
class SmsProvider:
    """A webhook receiver that keeps what it delivers, once per idempotency key."""

    answers: dict[str, int] = field(default_factory=dict)
    """A status to answer for a phone number (the first time only when negative)."""
    delivered: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def receive(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append({**body, "key": request.headers.get("Idempotency-Key")})
        status = self.answers.get(body["to"], 200)
        if status < 0:
            self.answers[body["to"]] = 200
            status = -status
        if status == 200:
            self.delivered.setdefault(request.headers["Idempotency-Key"], body)
        return JSONResponse({"status": status}, status_code=status)


@dataclass
class NotifyRig(Rig):
    mail: MailSink = field(kw_only=True)
    sms: SmsProvider = field(kw_only=True)
    browser: httpx.AsyncClient = field(kw_only=True)
    supporters: dict[str, SupporterContact] = field(default_factory=dict, kw_only=True)

    async def offer(
        self,
        incident: str,
        *,
        channel: ChannelName = "email",
        phone: str | None = None,
        respond_within: timedelta = timedelta(seconds=2 * REMINDER_AFTER),
    ) -> PeerAssigned:
        """An assignment (and the colleague's contact) as matching and intake publish them."""
        assigned, supporter, contact, counted = offer_and_contact(
            incident, channel, phone, respond_within
        )
        self.supporters[supporter.supporter_id] = supporter
        return await offered(self, assigned, supporter, contact, counted)

    def mails(self, offer: PeerAssigned) -> list[Message]:
        return self.mail.to(self.supporters[offer.supporter_id].email)

    def events(self, offer: PeerAssigned, event_type: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.log.events(self.topics.notifications, offer.correlation_id)
            + self.log.events(self.topics.responses, offer.correlation_id)
            if e["event_type"] == event_type
        ]

    async def until(self, condition: Any, what: str, within: float = 30.0) -> None:
        await until(condition, within, what)


async def offered(
    rig: Rig,
    assigned: PeerAssigned,
    supporter: SupporterContact,
    contact: CaseContactRecorded,
    counted: SupportCaseCounted,
) -> PeerAssigned:
    """The supporter on the roster, their offer and the colleague's contact, as the roster
    loader, matching and intake publish them."""
    await rig.publish(rig.topics.roster_contacts, reachable(supporter, assigned.hospital_id))
    supporters = rig.mongo[rig.database("notify")]["supporters"]
    await until_true(
        lambda: supporters.find_one({"_id": supporter.supporter_id}),
        lambda found: found is not None,
        what="notify heard of the supporter",
    )
    await rig.publish(rig.topics.assignments, assigned)
    await hand_over(rig, counted, contact)
    return assigned


async def hand_over(rig: Rig, counted: SupportCaseCounted, contact: CaseContactRecorded) -> None:
    """The colleague's contact as intake hands it over: sealed to the key notify makes for
    the case once it hears the case opened."""
    await rig.publish(rig.topics.case_counts, counted)
    keys = rig.mongo[rig.database("notify")]["contact_keys"]
    kept: dict[str, Any] = {}

    async def key() -> bool:
        kept.update(await keys.find_one({"_id": str(counted.case_id)}) or {})
        return bool(kept)

    await until_true(key, bool, what="notify made the case's key")
    issued = contact_key(counted, kept["public_key"])
    await rig.publish(rig.topics.contacts, sealed_contact(contact, issued, datetime.now(UTC)))


def offer_and_contact(
    incident: str,
    channel: ChannelName = "email",
    phone: str | None = None,
    respond_within: timedelta = timedelta(seconds=2 * REMINDER_AFTER),
) -> tuple[PeerAssigned, SupporterContact, CaseContactRecorded, SupportCaseCounted]:
    """An offer to answer within `respond_within`, its supporter (one per incident), the
    colleague's contact and the case's opening as reporting and notify hear it."""
    intake = reconciled(incident_json(incident, [participant(COLLEAGUE)], hospital_id="N1"))
    case = case_to_match(intake.cases[0])  # type: ignore[arg-type]
    now = datetime.now(UTC)
    candidate = rank(case, [supporter("P1", hospital_id="N1")], Policy(), now).candidates[0]
    assigned = assignment_for(case, candidate, 1, Policy(), now, case.case_id)
    supporter_contact = SupporterContact(
        supporter_id=f"P-{incident}",
        display_name="Anna",
        email=f"{incident.lower()}@n1.example",
        phone=phone,
        language="en",
        channel=channel,
    )
    assigned = assigned.model_copy(
        update={"supporter_id": supporter_contact.supporter_id, "respond_by": now + respond_within}
    )
    opened = intake.cases[0]
    assert isinstance(opened, SupportCaseOpened)
    return assigned, supporter_contact, intake.contacts[0], opened.counted()


def body_of(mail: Message) -> str:
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    return body.decode()


def link_in(mail: Message, path: str) -> str:
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    found = re.search(rf"http://notify(/{path}\?t=\S+)", body.decode())
    assert found, body.decode()
    return found.group(1)


@contextlib.asynccontextmanager
async def notify_rig(servers: Servers) -> AsyncIterator[NotifyRig]:
    isolation = await isolated(servers, "notify")
    mail, sms = MailSink(), SmsProvider()
    provider = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/sms", sms.receive, methods=["POST"])]),
            host="127.0.0.1",
            port=(sms_port := free_port()),
            log_config=None,
        )
    )
    settings = NotifySettings(
        **isolation.settings(),
        smtp_port=mail.controller.port,
        sms_webhook_url=f"http://127.0.0.1:{sms_port}/sms",
        link_secret=LINK_SECRET,
        public_url="http://notify",
        follow_up_after=[timedelta(seconds=1), timedelta(seconds=2)],
        scan_seconds=0.3,
        retry_max_seconds=0.5,
    )
    app = create_app(settings)
    topics = isolation.topics
    mail.controller.start()
    serving = asyncio.create_task(provider.serve())
    try:
        async with (
            running(isolation, [app], [topics.notifications, topics.responses]) as base,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://notify"
            ) as browser,
        ):
            await until(lambda: provider.started, what="the SMS provider serves")
            yield NotifyRig(
                base.isolation,
                base.producer,
                base.mongo,
                base.log,
                mail=mail,
                sms=sms,
                browser=browser,
            )
    finally:
        mail.controller.stop()
        provider.should_exit = True
        await serving


@pytest.fixture(scope="module")
async def rig(servers: Servers) -> AsyncIterator[NotifyRig]:
    async with notify_rig(servers) as ready:
        yield ready


async def test_an_unanswered_offer_is_reminded_half_way_once(rig: NotifyRig) -> None:
    offer = await rig.offer("INC-R1")
    # On a slow start the contact comes after the reminder was due: both then go at once.
    await rig.until(lambda: len(rig.mails(offer)) >= 1, "the offer")
    await rig.until(lambda: len(rig.mails(offer)) == 2, "the reminder")
    assert rig.mails(offer)[0]["Subject"].startswith("Request for peer support")
    reminder = rig.mails(offer)[1]
    assert reminder["Subject"] == "Reminder: request for peer support (2026-11-20)"
    assert link_in(reminder, "respond").startswith("/respond?t=")
    await asyncio.sleep(1.5)
    assert len(rig.mails(offer)) == 2
    steps = [e["step"] for e in rig.events(offer, "support.peer_notified")]
    assert steps == ["offer", "reminder"]


async def test_messages_carry_nothing_about_the_patient_or_the_colleague_beyond_reach(
    rig: NotifyRig,
) -> None:
    """The colleague's way to be reached is in them; their staff id, pseudonym, age and
    experience, and the incident's own id, are not."""
    offer, *_ = offer_and_contact("INC-P1", "sms", phone="+31655555555")
    intake = reconciled(incident_json("INC-P1", [participant(COLLEAGUE)], hospital_id="N1"))
    (opened,) = [e for e in intake.cases if isinstance(e, SupportCaseOpened)]
    colleague = opened.colleague
    await rig.offer("INC-P1", channel="sms", phone="+31655555555", respond_within=UNHURRIED)
    await rig.offer("INC-P2", respond_within=UNHURRIED)
    await rig.until(lambda: len(rig.mail.to("inc-p2@n1.example")) == 1, "the mail")
    await rig.until(lambda: any(r["to"] == "+31655555555" for r in rig.sms.requests), "text")
    texts = [r["text"] for r in rig.sms.requests if r["to"] == "+31655555555"]
    (mail,) = rig.mail.to("inc-p2@n1.example")
    for message in [*texts, str(mail), body_of(mail)]:
        for secret in (COLLEAGUE, colleague.pseudonym, "1994", "INC-P", str(offer.case_id)):
            assert secret not in message
    assert f"{COLLEAGUE.lower()}@zh-a.example" in body_of(mail)  # how to reach the colleague
    assert "INC-P1" not in json.dumps(rig.sms.requests)


async def test_an_answered_or_cancelled_offer_is_not_reminded(rig: NotifyRig) -> None:
    # Answered before its deadline (notify takes no answer after it), yet after the other's
    # reminder would be due: on a slow machine the offers' mail comes late.
    answered = await rig.offer("INC-R2", respond_within=timedelta(seconds=4 * REMINDER_AFTER))
    cancelled = await rig.offer("INC-R3")
    await rig.until(lambda: rig.mails(answered) and rig.mails(cancelled), "both offers")
    link = link_in(rig.mails(answered)[0], "respond")
    assert (await rig.browser.post(link, data={"answer": "decline"})).status_code == 200
    await rig.publish(
        rig.topics.assignments,
        AssignmentCancelled(
            event_id=uuid.uuid4(),
            occurred_at=datetime.now(UTC),
            producer="matching",
            correlation_id=cancelled.correlation_id,
            hospital_id=cancelled.hospital_id,
            assignment_id=cancelled.assignment_id,
            case_id=cancelled.case_id,
            profile=cancelled.profile,
            supporter_id=cancelled.supporter_id,
            reason=CancelReason.CASE_CLOSED,
        ),
    )
    await asyncio.sleep(REMINDER_AFTER + 1.5)
    assert len(rig.mails(answered)) == 1
    assert len(rig.mails(cancelled)) == 1
    (declined,) = rig.events(answered, "assignment.declined")
    assert declined["assignment_id"] == str(answered.assignment_id)


async def refused_entries(rig: NotifyRig, link: str, entry: dict[str, str], today: date) -> None:
    """A contact out of bounds or dated outside the support is refused, with what was typed."""
    wrong = await rig.browser.post(link, data={**entry, "minutes": "0"})
    assert wrong.status_code == 422
    assert "minutes" in wrong.text
    ahead = await rig.browser.post(
        link, data={**entry, "contact_date": f"{today + timedelta(days=40)}"}
    )
    assert ahead.status_code == 422
    assert "The date is in the future." in ahead.text
    assert 'value="45"' in ahead.text, "what was typed is kept"
    yesterday = f"{today - timedelta(days=1)}"
    before = await rig.browser.post(link, data={**entry, "contact_date": yesterday})
    assert before.status_code == 422
    assert f"before the day you accepted the request ({today})" in before.text


async def test_after_acceptance_follow_ups_prompt_and_record_contacts(rig: NotifyRig) -> None:
    offer = await rig.offer("INC-F1", respond_within=UNHURRIED)
    await rig.until(lambda: rig.mails(offer), "the offer")
    accepted = await rig.browser.post(
        link_in(rig.mails(offer)[0], "respond"), data={"answer": "accept"}
    )
    assert accepted.status_code == 200
    await rig.until(lambda: len(rig.mails(offer)) == 3, "two follow-ups")
    follow_ups = rig.mails(offer)[1:]
    assert [m["Subject"] for m in follow_ups] == [
        "How is your colleague doing? (day 1)",
        "How is your colleague doing? (day 2)",
    ]
    first, second = (link_in(m, "log-contact") for m in follow_ups)
    assert first != second

    form = await rig.browser.get(first)
    assert form.status_code == 200
    assert 'name="minutes"' in form.text
    today = datetime.now(ZoneInfo("Europe/Amsterdam")).date()
    entry = {
        "contact_date": f"{today}",
        "minutes": "45",
        "mode": "phone",
        "tier": "1",
        "referred": "true",
    }
    await refused_entries(rig, first, entry, today)
    logged = await rig.browser.post(first, data=entry)
    assert logged.status_code == 200
    assert "The contact is recorded" in logged.text
    again = await rig.browser.post(first, data=entry)
    assert again.status_code == 409
    reopened = await rig.browser.get(first)
    assert reopened.status_code == 409
    assert "This link was used already" in reopened.text, "said on opening, not on sending"
    other = await rig.browser.post(second, data={**entry, "referred": "", "mode": "in_person"})
    assert other.status_code == 200

    await rig.until(lambda: len(rig.events(offer, "support.contact_logged")) == 2, "2 logged")
    contacts = rig.events(offer, "support.contact_logged")
    assert [(c["minutes"], c["mode"], c["tier"], c["referred"]) for c in contacts] == [
        (45, "phone", 1, True),
        (45, "in_person", 1, False),
    ]
    # Only the case's first contact counts towards reporting's time to first contact.
    assert [c["first_of_case"] for c in contacts] == [True, False]
    assert {datetime.fromisoformat(c["case_opened_at"]) for c in contacts} == {offer.case_opened_at}
    assert all(c["assignment_id"] == str(offer.assignment_id) for c in contacts)
    assert COLLEAGUE not in json.dumps(contacts)
    reminders = [e for e in rig.events(offer, "support.peer_notified") if e["step"] == "reminder"]
    assert reminders == []
    forged = await rig.browser.post(first.replace("log-contact", "respond"), data=entry)
    assert forged.status_code == 405 or forged.status_code == 400


async def test_a_supporter_who_prefers_sms_gets_a_text(rig: NotifyRig) -> None:
    offer = await rig.offer("INC-S1", channel="sms", phone="+31611111111", respond_within=UNHURRIED)
    await rig.until(lambda: rig.events(offer, "support.peer_notified"), "the text")
    (request,) = [r for r in rig.sms.requests if r["to"] == "+31611111111"]
    assert request["key"] == str(offer.assignment_id)
    assert request["text"].startswith("Peer support: would you support a colleague")
    assert "http://notify/respond?t=" in request["text"]
    assert rig.mails(offer) == []
    (sent,) = rig.events(offer, "support.peer_notified")
    assert sent["channel"] == "sms"


async def test_a_refused_text_falls_back_to_email_and_a_passing_failure_is_retried(
    rig: NotifyRig,
) -> None:
    rig.sms.answers["+31622222222"] = 400
    rig.sms.answers["+31633333333"] = -503  # fails once, then works
    refused = await rig.offer(
        "INC-S2", channel="sms", phone="+31622222222", respond_within=UNHURRIED
    )
    retried = await rig.offer(
        "INC-S3", channel="sms", phone="+31633333333", respond_within=UNHURRIED
    )
    await rig.until(lambda: rig.events(refused, "support.peer_notified"), "the fallback mail")
    assert len(rig.mails(refused)) == 1
    (failure,) = rig.events(refused, "support.notification_failed")
    assert failure["channel"] == "sms"
    assert failure["reason"].startswith("sms provider answered 400")
    (sent,) = rig.events(refused, "support.peer_notified")
    assert sent["channel"] == "email"

    await rig.until(lambda: rig.events(retried, "support.peer_notified"), "the retried text")
    tries = [r for r in rig.sms.requests if r["to"] == "+31633333333"]
    assert len(tries) == 2
    assert len({t["key"] for t in tries}) == 1
    assert rig.events(retried, "support.notification_failed") == []
    assert rig.mails(retried) == []
