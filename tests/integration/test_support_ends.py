"""Support that ends, on real servers: the supporter ends it through the link in a follow-up,
or it lapses by itself; either way the supporter's capacity comes back and the next wave of
colleagues is matched as fully as the first."""

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.intake.app import create_app as intake_app
from services.intake.settings import IntakeSettings
from services.matching.app import create_app as matching_app
from services.matching.settings import MatchingSettings
from services.notify.app import create_app as notify_app
from services.notify.settings import NotifySettings
from services.reporting.app import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from tests.factories import LINK_SECRET, PSEUDONYM_KEY, incident_json, participant, withdrawal_json
from tests.integration.pipeline import load_roster
from tests.integration.rig import MailSink, Rig, Servers, isolated, running, until, until_true
from tests.integration.test_matching import peer
from tests.integration.test_notify import link_in

pytestmark = pytest.mark.integration

FOLLOW_UP_AFTER = timedelta(seconds=1)
ENDS_AFTER = timedelta(seconds=20)
"""Support lapses this long after the last follow-up: long enough for a test to act first
on a loaded machine."""


@dataclass
class Programme(Rig):
    """intake, matching and notify with time compressed; supporters act through their mail."""

    mail: MailSink = field(kw_only=True)
    browser: httpx.AsyncClient = field(kw_only=True)

    def of(self, event_type: str, hospital: str) -> list[dict[str, Any]]:
        topics = (self.topics.assignments, self.topics.notifications, self.topics.responses)
        return [
            e
            for topic in topics
            for e in self.log.events(topic)
            if e["event_type"] == event_type and e["hospital_id"] == hospital
        ]

    async def wave(self, hospital: str, size: int) -> str:
        incident = f"INC-{uuid.uuid4().hex[:6]}"
        people = [participant(f"E{uuid.uuid4().int % 10**6:06d}") for _ in range(size)]
        event = incident_json(incident, people, hospital_id=hospital, harm="mild", calamity=False)
        await self.send(self.topics.incidents_reported, event, f"{hospital}:{incident}")
        return incident

    async def assigned(self, hospital: str, offers: int) -> None:
        await until(
            lambda: len(self.of("support.peer_assigned", hospital)) >= offers,
            what=f"{offers} offers made at {hospital}",
        )

    async def counted(self, hospital: str, measure: str, expected: int) -> None:
        """Wait until reporting has counted `expected` of the measure for the hospital."""
        cells = self.mongo[self.database("reporting")]["cells"]
        deadline = time.monotonic() + 60
        while True:
            total = sum([c.get(measure, 0) async for c in cells.find({"hospital_id": hospital})])
            if total == expected:
                return
            assert time.monotonic() < deadline, f"reporting counted {total} {measure}"
            await asyncio.sleep(0.2)

    def mails(self, subject: str) -> list[Any]:
        return [m for m in self.mail.messages if str(m["Subject"]).startswith(subject)]

    async def accept_all(self, hospital: str) -> None:
        """Every supporter accepts every offer made so far, once its mail is there."""
        offer_subject = "Verzoek om collegiale ondersteuning"
        await until(
            lambda: (
                len(self.mails(offer_subject)) >= len(self.of("support.peer_assigned", hospital))
            ),
            what="every offer mailed",
        )
        for mail in self.mails(offer_subject):
            response = await self.browser.post(link_in(mail, "respond"), data={"answer": "accept"})
            assert response.status_code in (200, 409)
        await until(
            lambda: (
                len(self.of("assignment.accepted", hospital))
                == len(self.of("support.peer_assigned", hospital))
            ),
            what="every offer accepted",
        )

    async def end_all(self, hospital: str, outcome: str = "completed") -> None:
        """Each supporter ends support from the first follow-up of each case."""
        await until(
            lambda: (
                len(self.mails("Hoe gaat het met je collega?"))
                >= len(self.of("assignment.accepted", hospital))
            ),
            what="a follow-up for every accepted case",
        )
        for mail in self.mails("Hoe gaat het met je collega?"):
            url = link_in(mail, "end-support")
            form = {"choice": "end", "outcome": outcome, "referral": ""}
            assert (await self.browser.post(url, data=form)).status_code in (200, 409)
        await until(
            lambda: (
                len(self.of("support.ended", hospital))
                == len(self.of("assignment.accepted", hospital))
            ),
            what="support ended for every accepted case",
        )
        await self.capacity_back(hospital)

    async def capacity_back(self, hospital: str) -> None:
        """Matching has taken in every end: no supporter of the hospital still holds a case."""
        supporters = self.mongo[self.database("matching")]["supporters"]
        query = {"hospital_id": hospital, "open_case_ids": {"$ne": []}}
        await until_true(
            lambda: supporters.count_documents(query),
            lambda holding: holding == 0,
            what="matching gave every supporter their capacity back",
        )


@contextlib.asynccontextmanager
async def programme(servers: Servers, **extra: dict[str, Any]) -> AsyncIterator[Programme]:
    """`extra`: more settings per service, e.g. `notify={"purge_after": ...}`."""
    isolation = await isolated(servers, "ends")
    mail = MailSink()
    common = {**isolation.settings(), "retry_backoff_max_seconds": 1.0}
    notify_settings: dict[str, Any] = {
        "smtp_port": mail.controller.port,
        "link_secret": LINK_SECRET,
        "public_url": "http://notify",
        "follow_up_after": [FOLLOW_UP_AFTER],
        "support_ends_after": ENDS_AFTER,
        "scan_seconds": 0.3,
    }
    notify = notify_app(NotifySettings(**common, **(notify_settings | extra.get("notify", {}))))
    apps = [
        intake_app(
            IntakeSettings(
                **common, pseudonym_key=PSEUDONYM_KEY.decode(), **extra.get("intake", {})
            )
        ),
        matching_app(
            MatchingSettings(
                **common, scan_seconds=0.5, response_seconds=3600, **extra.get("matching", {})
            )
        ),
        notify,
        reporting_app(ReportingSettings(**common, batch_max_records=50, snapshot_seconds=0)),
    ]
    topics = isolation.topics
    mail.controller.start()
    try:
        async with (
            running(
                isolation, apps, [topics.assignments, topics.notifications, topics.responses]
            ) as base,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=notify), base_url="http://notify"
            ) as browser,
        ):
            yield Programme(
                base.isolation, base.producer, base.mongo, base.log, mail=mail, browser=browser
            )
    finally:
        mail.controller.stop()


@pytest.fixture
async def ends(servers: Servers) -> AsyncIterator[Programme]:
    async with programme(servers) as ready:
        yield ready


async def roster_of(ends: Programme, hospital: str, supporters: int) -> None:
    entries = [
        peer(hospital, f"P{n}", max_open_cases=1, department="Oncology") for n in range(supporters)
    ]
    matching, notify = ends.mongo[ends.database("matching")], ends.mongo[ends.database("notify")]
    await load_roster(ends.producer, ends.topics, matching, entries, notify=notify)


async def ending_link(ends: Programme, hospital: str) -> str:
    """One colleague supported by the hospital's one supporter: the first follow-up's link."""
    await roster_of(ends, hospital, supporters=1)
    await ends.wave(hospital, size=1)
    await until(lambda: ends.of("support.peer_assigned", hospital), what="the offer")
    await ends.accept_all(hospital)
    await until(lambda: ends.mails("Hoe gaat het met je collega?"), what="a follow-up")
    return link_in(ends.mails("Hoe gaat het met je collega?")[0], "end-support")


async def test_waves_are_matched_as_fully_as_the_first_once_support_ends(
    ends: Programme,
) -> None:
    hospital = "W3"
    await roster_of(ends, hospital, supporters=2)
    assigned_per_wave = []
    for wave in range(3):
        await ends.wave(hospital, size=2)
        await ends.assigned(hospital, 2 * (wave + 1))
        assigned_per_wave.append(len(ends.of("support.peer_assigned", hospital)) - 2 * wave)
        await ends.accept_all(hospital)
        await ends.end_all(hospital)
    assert assigned_per_wave == [2, 2, 2]
    assert ends.of("support.case_escalated", hospital) == []
    outcomes = {e["outcome"] for e in ends.of("support.ended", hospital)}
    assert outcomes == {"completed"}
    await ends.counted(hospital, "ended_completed", 6)


async def test_support_nobody_continues_lapses_and_frees_the_supporter(ends: Programme) -> None:
    hospital = "L1"
    await roster_of(ends, hospital, supporters=1)
    await ends.wave(hospital, size=1)
    await until(lambda: ends.of("support.peer_assigned", hospital), what="the first offer")
    await ends.accept_all(hospital)
    await ends.wave(hospital, size=1)
    await until(lambda: ends.of("support.case_escalated", hospital), what="nobody free")

    # Nobody logs a contact or ends support: after the follow-up and the closing prompt,
    # support lapses and the waiting colleague is offered the same supporter.
    await until(
        lambda: len(ends.of("support.peer_assigned", hospital)) == 2,
        within=90,
        what="the waiting colleague offered once support lapsed",
    )
    (ended,) = ends.of("support.ended", hospital)
    assert ended["outcome"] == "lapsed"
    await ends.counted(hospital, "ended_lapsed", 1)
    assert ends.mails("Is de ondersteuning van je collega afgerond?"), "the closing prompt"


async def test_an_ending_link_used_twice_or_forged_changes_nothing(ends: Programme) -> None:
    hospital = "U2"
    url = await ending_link(ends, hospital)
    form = {"choice": "end", "outcome": "referred", "referral": "occupational_physician"}
    assert (await ends.browser.post(url, data=form)).status_code == 200
    assert (await ends.browser.post(url, data=form)).status_code == 409
    reopened = await ends.browser.get(url)
    assert reopened.status_code == 409
    assert "Deze ondersteuning loopt niet (meer)." in reopened.text, "said on opening"
    # The same follow-up's contact link, never used, records nothing once support ended.
    contact = link_in(ends.mails("Hoe gaat het met je collega?")[0], "log-contact")
    assert (await ends.browser.get(contact)).status_code == 409
    entry = {"contact_date": f"{datetime.now(UTC):%Y-%m-%d}", "minutes": "30", "mode": "phone"}
    late = await ends.browser.post(contact, data=entry)
    assert late.status_code == 409
    assert "Deze ondersteuning loopt niet (meer)." in late.text
    forged = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    assert (await ends.browser.post(forged, data=form)).status_code == 400
    await until(lambda: ends.of("support.ended", hospital), what="the end")
    (ended,) = ends.of("support.ended", hospital)
    assert (ended["outcome"], ended["referral"], ended["contacts"]) == (
        "referred",
        "occupational_physician",
        0,
    )
    await ends.counted(hospital, "ended_referred", 1)
    await ends.counted(hospital, "referred_occupational_physician", 1)
    await ends.counted(hospital, "contacts_per_case_le_0", 1)


async def test_still_supporting_postpones_the_end(ends: Programme) -> None:
    hospital = "S3"
    url = await ending_link(ends, hospital)
    page = await ends.browser.post(url, data={"choice": "continue"})
    assert page.status_code == 200
    messages = ends.mongo[ends.database("notify")]["messages"]
    assignment_id = ends.of("support.peer_assigned", hospital)[0]["assignment_id"]
    lapse = await messages.find_one({"step": "lapse", "assignment_id": assignment_id})
    assert lapse is not None
    # Due 20 s after the last follow-up until now; a week and 20 s after "still supporting".
    assert lapse["due_at"] > datetime.now(UTC) + timedelta(days=6)
    follow_ups = messages.find({"assignment_id": assignment_id, "step": {"$regex": "^follow_up"}})
    assert len([m async for m in follow_ups]) == 2, "one more follow-up was scheduled"
    assert ends.of("support.ended", hospital) == []


async def colleague_waiting(ends: Programme, hospital: str) -> None:
    """A second colleague while the hospital's one supporter is busy: escalated, waiting."""
    await ends.wave(hospital, size=1)
    await until(lambda: ends.of("support.case_escalated", hospital), what="nobody free")


async def offered_to_the_waiting_colleague(ends: Programme, hospital: str, outcome: str) -> None:
    await until(
        lambda: len(ends.of("support.peer_assigned", hospital)) == 2,
        what="the waiting colleague offered once support ended",
    )
    (ended,) = ends.of("support.ended", hospital)
    assert ended["outcome"] == outcome
    await ends.counted(hospital, f"ended_{outcome}", 1)


@pytest.mark.parametrize(
    ("outcome", "referral"),
    [("completed", ""), ("referred", "psychologist"), ("declined_by_colleague", ""),
     ("unreachable", "")],
)  # fmt: skip
async def test_each_end_a_supporter_chooses_frees_them_and_is_counted(
    ends: Programme, outcome: str, referral: str
) -> None:
    hospital = f"O-{outcome[:5]}"
    url = await ending_link(ends, hospital)
    await colleague_waiting(ends, hospital)
    form = {"choice": "end", "outcome": outcome, "referral": referral}
    assert (await ends.browser.post(url, data=form)).status_code == 200
    await offered_to_the_waiting_colleague(ends, hospital, outcome)


@pytest.fixture
async def unhurried(servers: Servers) -> AsyncIterator[Programme]:
    """Support that never lapses while a test runs."""
    async with programme(servers, notify={"support_ends_after": timedelta(hours=1)}) as ready:
        yield ready


async def test_support_under_way_ends_as_withdrawn_with_its_incident(
    unhurried: Programme,
) -> None:
    ends = unhurried
    hospital = "WD"
    await roster_of(ends, hospital, supporters=1)
    incident = await ends.wave(hospital, size=1)
    await until(lambda: ends.of("support.peer_assigned", hospital), what="the offer")
    await ends.accept_all(hospital)
    await colleague_waiting(ends, hospital)
    withdrawal = withdrawal_json(
        incident, hospital, revision=2, occurred_at=datetime.now(UTC).isoformat()
    )
    await ends.send(ends.topics.incidents_reported, withdrawal, f"{hospital}:{incident}")
    await offered_to_the_waiting_colleague(ends, hospital, "withdrawn")
