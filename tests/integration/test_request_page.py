"""Asking for support without an incident, in a real browser: for oneself or for a
colleague, confirmed through a link mailed to a work address and its button; and the choice
not to be approached. Nothing happens without the confirmation, a referrer is never named,
and the page's limits cannot be turned against the people they protect."""

import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from tests.factories import incident_json, participant, roster_entry
from tests.integration.pipeline import Pipeline
from tests.integration.rig import until_true
from tests.integration.test_dashboard import browser
from tests.integration.test_notify import body_of

pytestmark = pytest.mark.integration


def roster(hospital: str) -> list[Any]:
    return [
        roster_entry(hospital, "ICU", f"E6{hospital}1", "ICU", languages=["nl"]),
        roster_entry(hospital, "ONC", f"E6{hospital}2", "Oncology", languages=["nl", "en"]),
        roster_entry(hospital, "RAD", f"E6{hospital}3", "Radiology", languages=["nl"]),
    ]


async def ask(page: Page, url: str, fields: dict[str, str], form: str = "ask") -> str:
    """Fill in one of the page's forms as a professional does; the answer page's text."""
    await page.goto(f"{url}/request?lang=en")
    for name, value in fields.items():
        field = page.locator(f"#{form} [name={name}]")
        kind = await field.first.get_attribute("type")
        if kind == "radio":
            await page.locator(f"#{form} [name={name}][value={value}]").check()
        elif await field.first.evaluate("e => e.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    await page.locator(f"#{form} button[type=submit]").click()
    await page.wait_for_load_state()
    return await page.locator("main").inner_text()


async def confirmation_link(pipeline: Pipeline, address: str) -> str:
    await pipeline.until(lambda: pipeline.mail.to(address), what=f"a confirmation to {address}")
    body = body_of(pipeline.mail.to(address)[-1])
    found = re.search(r"http://intake(/request/confirm\S+)", body)
    assert found, body
    return found.group(1)


async def confirm(page: Page, url: str) -> str:
    """Open a confirmation link and press its button, as the asker does; the answer's text."""
    await page.goto(url)
    assert "Confirm your request" in await page.locator("main").inner_text()
    await page.get_by_role("button", name="Confirm").click()
    await page.wait_for_load_state()
    return await page.locator("main").inner_text()


def cases_of(pipeline: Pipeline, hospital: str, event_type: str) -> list[dict[str, Any]]:
    topics = (pipeline.topics.cases, pipeline.topics.assignments)
    return [
        e
        for topic in topics
        for e in pipeline.log.events(topic)
        if e["event_type"] == event_type and e["hospital_id"] == hospital
    ]


def asker(hospital: str, staff_id: str, **fields: str) -> dict[str, str]:
    """The form's fields of a professional asking: no address, the directory holds it."""
    return {"hospital_id": hospital, "staff_id": staff_id, **fields}


def address_of(staff_id: str) -> str:
    """Where the test directory says the staff member is reached (`conftest.DIRECTORY`)."""
    return f"{staff_id.lower()}@q{staff_id[2]}.example"


async def test_asking_for_oneself_opens_a_case_once_confirmed_and_the_wish_is_honoured(
    pipeline: Pipeline, request_page_url: str
) -> None:
    await pipeline.load_roster(roster("Q1"))
    fields = asker("Q1", "E71001", for_whom="self", prefer_department="own")
    async with browser() as chromium:
        page = await chromium.new_page()
        answer = await ask(page, request_page_url, fields)
        assert "Check your e-mail" in answer
        assert cases_of(pipeline, "Q1", "support.case_opened") == [], "nothing before the link"
        link = await confirmation_link(pipeline, "e71001@q1.example")
        assert "Your request was received" in await confirm(page, request_page_url + link)
    await pipeline.until(
        lambda: cases_of(pipeline, "Q1", "support.peer_assigned"), what="the offer"
    )
    (opened,) = cases_of(pipeline, "Q1", "support.case_opened")
    assert opened["profile"]["origin"] == "request"
    assert opened["preferences"]["department"] == "own"
    (offer,) = cases_of(pipeline, "Q1", "support.peer_assigned")
    # The hospital's rule keeps supporters out of the colleague's own department; the wish
    # for one from their own department sets it aside.
    assert offer["supporter_id"] == "Q1-ICU"


async def test_asking_for_a_colleague_never_names_who_asked(
    pipeline: Pipeline, request_page_url: str
) -> None:
    await pipeline.load_roster(roster("Q2"))
    fields = asker(
        "Q2", "E72001", for_whom="colleague", colleague_staff_id="E72002", prefer_language="en"
    )
    async with browser() as chromium:
        page = await chromium.new_page()
        assert "Check your e-mail" in await ask(page, request_page_url, fields)
        link = await confirmation_link(pipeline, address_of("E72001"))
        await confirm(page, request_page_url + link)
    await pipeline.until(
        lambda: cases_of(pipeline, "Q2", "support.peer_assigned"), what="the offer"
    )
    (opened,) = cases_of(pipeline, "Q2", "support.case_opened")
    assert opened["profile"]["origin"] == "referral"
    (offer,) = cases_of(pipeline, "Q2", "support.peer_assigned")
    assert offer["supporter_id"] == "Q2-ONC", "the only one who speaks English"
    await pipeline.until(lambda: pipeline.mail.to("onc@q2.example"), what="the offer mail")
    body = body_of(pipeline.mail.to("onc@q2.example")[0])
    # The supporter reads Dutch: "someone was concerned about a colleague (physician, ED)".
    assert "Iemand maakte zich op" in body
    assert "zorgen om een collega (arts,\r\nED)" in body
    everything = body + str([r.value for r in pipeline.log.records])
    assert "E72001" not in everything, "the referrer's staff id goes nowhere"
    assert address_of("E72001") not in everything, "nor their address"
    await until_true(
        lambda: pipeline.counted("Q2"),
        lambda counted: counted["opened_from_referral"] == 1,
        "counted as a colleague's referral",
    )


async def test_a_colleague_who_opted_out_is_counted_but_not_approached(
    pipeline: Pipeline, request_page_url: str
) -> None:
    await pipeline.load_roster(roster("Q3"))
    choice = asker("Q3", "E73001")
    async with browser() as chromium:
        page = await chromium.new_page()
        answer = await ask(page, request_page_url, {**choice, "outreach": "declined"}, "choices")
        assert "Check your e-mail" in answer
        link = await confirmation_link(pipeline, address_of("E73001"))
        assert "Your choice was saved" in await confirm(page, request_page_url + link)
    (notice,) = [m for m in pipeline.mail.to(address_of("E73001")) if "saved" in m["Subject"]]
    assert "please do not approach me" in body_of(notice), "told at their own address"
    await pipeline.idle()  # the choice, published on the staff topic, is taken in first
    people = [participant("E73001"), participant("E73002", department="ED")]
    await pipeline.report(incident_json("INC-Q3", people, hospital_id="Q3", harm="mild"))
    await pipeline.until(
        lambda: len(cases_of(pipeline, "Q3", "support.case_opened")) == 2, what="two cases"
    )
    await pipeline.until(
        lambda: cases_of(pipeline, "Q3", "support.peer_assigned"), what="the other's offer"
    )
    await pipeline.idle()
    opened = {c["case_id"]: c["opted_out"] for c in cases_of(pipeline, "Q3", "support.case_opened")}
    assert sorted(opened.values()) == [False, True]
    offered = {o["case_id"] for o in cases_of(pipeline, "Q3", "support.peer_assigned")}
    assert offered == {case for case, out in opened.items() if not out}


async def test_opening_a_link_confirms_nothing_and_a_used_or_forged_one_says_so(
    pipeline: Pipeline, request_page_url: str
) -> None:
    """A mail scanner opens every link in a mail: only the button confirms."""
    fields = asker("Q1", "E71009")
    async with browser() as chromium:
        page = await chromium.new_page()
        await ask(page, request_page_url, {**fields, "outreach": "welcome"}, "choices")
        link = await confirmation_link(pipeline, address_of("E71009"))
        scanned = await page.goto(request_page_url + link)
        assert "Confirm your request" in await page.locator("main").inner_text()
        assert "Your choice was saved" in await confirm(page, request_page_url + link)
        again = await page.goto(request_page_url + link)
        assert again is not None
        assert "This link does not work" in await page.locator("main").inner_text()
        forged = await page.goto(f"{request_page_url}/request/confirm?lang=en&t=ps_forged")
    assert scanned is not None
    assert scanned.status == 200
    assert again.status == 400
    assert forged is not None
    assert forged.status == 400
    choices = [
        e for e in pipeline.log.events(pipeline.topics.staff) if e.get("staff_id") == "E71009"
    ]
    assert len(choices) <= 1, "opened twice, confirmed once"


def at(pipeline: Pipeline, address: str) -> httpx.AsyncClient:
    """The request page as seen from one client address."""
    transport = httpx.ASGITransport(app=pipeline.intake_app, client=(address, 443))
    return httpx.AsyncClient(transport=transport, base_url="http://intake")


async def test_nobody_confirms_in_a_colleagues_name_nor_locks_them_out(
    pipeline: Pipeline,
) -> None:
    """An insider used to opt a colleague out with their own mailbox, and lock them out of
    changing it: the link now goes only to the colleague's own address."""
    async with at(pipeline, "10.7.0.1") as insider:
        for n in range(6):
            forged = asker("Q4", "E74001", outreach="declined")
            answer = await insider.post("/request/choices?lang=en", data=forged)
            assert answer.status_code == (200 if n < 5 else 429), n
    assert pipeline.mail.to(address_of("E74002")) == [], "the insider's mailbox gets nothing"
    await pipeline.until(lambda: len(pipeline.mail.to(address_of("E74001"))) == 5, what="links")
    async with at(pipeline, "10.7.0.9") as own_desk:
        own = asker("Q4", "E74001", outreach="welcome")
        answer = await own_desk.post("/request/choices?lang=en", data=own)
    assert answer.status_code == 200, "the colleague's own choice is still taken"
    assert "a link is in the mailbox" in answer.text


async def test_one_person_receives_at_most_twenty_links_an_hour_however_many_ask(
    pipeline: Pipeline,
) -> None:
    answers = []
    for n in range(22):
        async with at(pipeline, f"10.8.0.{n + 1}") as client:
            choice = asker("Q4", "E74101", outreach="declined")
            answers.append(await client.post("/request/choices?lang=en", data=choice))
    assert [a.status_code for a in answers] == [200] * 20 + [429] * 2
    assert "You asked a few times already" in answers[-1].text
    await pipeline.until(lambda: len(pipeline.mail.to(address_of("E74101"))) == 20, what="20")


async def test_behind_the_sign_in_proxy_each_person_has_their_own_allowance(
    pipeline: Pipeline,
) -> None:
    """Everyone behind the proxy comes from one address: it is not what is counted."""
    choice = {"hospital_id": "Q5", "outreach": "welcome"}
    statuses = []
    for _ in range(6):
        answer = await pipeline.proxy.post(
            "/request/choices?lang=en", data=choice, headers={"X-Staff-Id": "E75001"}
        )
        statuses.append(answer.status_code)
    other = await pipeline.proxy.post(
        "/request/choices?lang=en", data=choice, headers={"X-Staff-Id": "E75002"}
    )
    assert statuses == [200] * 5 + [429]
    assert other.status_code == 200
    assert "Your choice was saved" in other.text
    await pipeline.until(
        lambda: pipeline.mail.to(address_of("E75002")), what="E75002 told of their choice"
    )
    (notice,) = pipeline.mail.to(address_of("E75002"))
    assert "do approach me after an incident" in body_of(notice)


async def test_a_staff_id_the_directory_does_not_know_learns_nothing_and_sends_nothing(
    pipeline: Pipeline, request_page_url: str
) -> None:
    fields = asker("Q1", "E71099", outreach="declined")
    async with browser() as chromium:
        page = await chromium.new_page()
        answer = await ask(page, request_page_url, fields, "choices")
    assert "If the hospital knows this staff id, a link is in the mailbox" in answer
    assert not pipeline.mail.to(address_of("E71099"))


async def test_behind_the_hospitals_sign_in_proxy_nobody_needs_to_confirm(
    pipeline: Pipeline,
) -> None:
    form = {"hospital_id": "Q1"}
    answer = await pipeline.proxy.post(
        "/request/ask?lang=en", data=form, headers={"X-Staff-Id": "E71020"}
    )
    assert answer.status_code == 200
    assert "Your request was received" in answer.text
    await pipeline.until(
        lambda: any(
            c["colleague"]["department"] == "Obstetrics"
            for c in cases_of(pipeline, "Q1", "support.case_opened")
        ),
        what="the case opened at once",
    )
    # The same header from anywhere else is not believed, nor a claim to come through the
    # proxy (from loopback too): the page asks for an address.
    for address, forwarded in (("10.9.9.9", {}), ("127.0.0.1", {"X-Forwarded-For": "10.0.0.1"})):
        transport = httpx.ASGITransport(app=pipeline.intake_app, client=(address, 443))
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as elsewhere:
            answer = await elsewhere.post(
                "/request/ask?lang=en", data=form, headers={"X-Staff-Id": "E71021", **forwarded}
            )
        assert answer.status_code == 422, address


async def test_nothing_typed_on_the_page_reaches_a_case_but_codes_and_choices(
    pipeline: Pipeline,
) -> None:
    """The department and function come from the directory; a field the page does not have
    is ignored, whatever it holds."""
    planted = {"department": "<script>x</script> Call +31 20 555 0000", "function": "other"}
    form = {"hospital_id": "Q5", **planted}
    answer = await pipeline.proxy.post(
        "/request/ask?lang=en", data=form, headers={"X-Staff-Id": "E75010"}
    )
    assert answer.status_code == 200
    await pipeline.until(
        lambda: cases_of(pipeline, "Q5", "support.case_opened"), what="the case opened"
    )
    (opened,) = cases_of(pipeline, "Q5", "support.case_opened")
    assert (opened["colleague"]["function"], opened["colleague"]["department"]) == ("nurse", "ICU")
    assert not [r for r in pipeline.log.records if b"555 0000" in (r.value or b"")]
