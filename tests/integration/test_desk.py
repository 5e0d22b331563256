"""The coordinator's desk on real servers: a case nobody on the roster fits reaches the
worklist, the coordinator assigns it by hand (never against a rule that protects the
colleague), the supporter's offer mail goes out, and the audit log says who did it."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, ViewportSize

from services.matching.roster import RosterEntry
from services.matching.settings import MatchingSettings
from services.notify.links import Links, Purpose
from shared.tokens import ApiTokens
from tests.factories import LINK_SECRET, incident_json, participant, roster_entry
from tests.integration.pipeline import Pipeline
from tests.integration.rig import until_true
from tests.integration.test_dashboard import browser, photographed, signed_in
from tests.integration.test_notify import body_of, link_in

pytestmark = pytest.mark.integration

COLLEAGUE = "E91010"
DESK_GREEN = (0x23, 0x52, 0x3F)


def roster(hospital: str) -> list[RosterEntry]:
    """Two supporters, neither of whom matching may offer the ICU colleague's case: one works
    in the colleague's department, the other investigates the incident."""

    return [
        roster_entry(hospital, "ICU", f"E9{hospital}1", "ICU", max_open_cases=3),
        roster_entry(hospital, "INV", f"E9{hospital}2", "Oncology", max_open_cases=3),
    ]


async def coordinator_command(pipeline: Pipeline, *arguments: str) -> list[str]:
    """matching's command, as `make coordinator`, `make coordinators` and
    `make revoke-coordinator` run it."""
    return await pipeline.operator("matching", *arguments)


async def coordinator_token(pipeline: Pipeline, scope: str) -> str:
    lines = await coordinator_command(
        pipeline, "token", "--scope", scope, "--label", f"Coordinator {scope}"
    )
    return lines[-1]


async def escalated_case(pipeline: Pipeline, hospital: str, **incident: Any) -> str:
    """A case at `hospital` (urgent unless `incident` says otherwise) that nobody on its
    roster fits; returns its case id."""
    await pipeline.load_roster(roster(hospital))
    event = incident_json(
        f"INC-DESK-{hospital}",
        [participant(f"{COLLEAGUE}{hospital}", department="ICU")],
        hospital_id=hospital,
        investigators=[f"E9{hospital}2"],
        **incident,
    )
    await pipeline.report(event)
    topic = pipeline.topics.assignments
    await pipeline.until(
        lambda: any(
            e["event_type"] == "support.case_escalated" and e["hospital_id"] == hospital
            for e in pipeline.log.events(topic)
        ),
        what=f"the case at {hospital} escalated",
    )
    (escalation,) = [
        e
        for e in pipeline.log.events(topic)
        if e["event_type"] == "support.case_escalated" and e["hospital_id"] == hospital
    ]
    return str(escalation["case_id"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def worklist(pipeline: Pipeline, token: str) -> list[dict[str, Any]]:
    answer = await pipeline.desk.get("/api/v1/worklist", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["size"] == len(body["items"])
    return list(body["items"])


async def test_a_coordinator_assigns_by_hand_what_nobody_fitted_and_the_offer_goes_out(
    pipeline: Pipeline,
) -> None:
    case_id = await escalated_case(pipeline, "C1")
    token = await coordinator_token(pipeline, "C1")
    (item,) = [i for i in await worklist(pipeline, token) if i["case_id"] == case_id]
    assert item["need"] == "no_peer_available"
    assert item["urgent"] is True
    assert item["rejections"] == {"investigates_incident": 1, "same_department": 1}
    assert item["waited_minutes"] < item["target_minutes"] == 4 * 60
    other_needs = await pipeline.desk.get(
        "/api/v1/worklist", params={"need": "offer_unanswered"}, headers=bearer(token)
    )
    assert case_id not in other_needs.text, "filtered by what is needed"

    candidates = await pipeline.desk.get(
        f"/api/v1/cases/{case_id}/candidates", headers=bearer(token)
    )
    turned_away = {c["supporter_id"]: c for c in candidates.json()}
    assert turned_away["C1-ICU"]["turned_away_by"] == "same_department"
    assert turned_away["C1-ICU"]["may_override"] is True
    assert turned_away["C1-INV"]["turned_away_by"] == "investigates_incident"
    assert turned_away["C1-INV"]["may_override"] is False

    path = f"/api/v1/cases/{case_id}/assignment"
    protective = {"supporter_id": "C1-INV", "reason": "knows the team well"}
    refused = await pipeline.desk.post(path, json=protective, headers=bearer(token))
    assert refused.status_code == 422
    assert "never overridden" in refused.json()["detail"]
    unexplained = await pipeline.desk.post(
        path, json={"supporter_id": "C1-ICU"}, headers=bearer(token)
    )
    assert unexplained.status_code == 422
    assert "give a reason" in unexplained.json()["detail"]
    chosen = {"supporter_id": "C1-ICU", "reason": "works nights elsewhere in ICU"}
    assigned = await pipeline.desk.post(path, json=chosen, headers=bearer(token))
    assert assigned.status_code == 202, assigned.text

    await pipeline.until(lambda: pipeline.mail.to("icu@c1.example"), what="the offer mail")
    assert not [i for i in await worklist(pipeline, token) if i["case_id"] == case_id]
    audit = (await pipeline.desk.get("/api/v1/audit", headers=bearer(token))).json()
    assert audit[0]["action"] == "assign"
    assert audit[0]["case_id"] == case_id
    assert audit[0]["supporter_id"] == "C1-ICU"
    assert audit[0]["who"].startswith("Coordinator C1 (")
    assert audit[0]["reason"] == "works nights elsewhere in ICU (overriding same_department)"
    stored = await pipeline.mongo[pipeline.database("matching")]["audit"].find_one(
        {"case_id": case_id}
    )
    assert stored is not None
    assert stored["expires_at"] - stored["at"] == MatchingSettings().audit_kept, "then it goes"


async def test_a_case_shows_its_timeline_without_naming_the_colleague(pipeline: Pipeline) -> None:
    case_id = await escalated_case(pipeline, "C4")
    token = await coordinator_token(pipeline, "C4")
    chosen = {"supporter_id": "C4-ICU", "reason": "the only one on nights"}
    path = f"/api/v1/cases/{case_id}/assignment"
    assert (await pipeline.desk.post(path, json=chosen, headers=bearer(token))).status_code == 202

    async def kinds() -> list[str]:
        answer = await pipeline.desk.get(f"/api/v1/cases/{case_id}", headers=bearer(token))
        return [entry["kind"] for entry in answer.json()["timeline"]]

    await until_true(
        lambda: kinds(), lambda k: "support.peer_notified" in k, "the offer on the timeline"
    )
    case = (await pipeline.desk.get(f"/api/v1/cases/{case_id}", headers=bearer(token))).json()
    kinds_seen = [entry["kind"] for entry in case["timeline"]]
    assert kinds_seen[:3] == [
        "support.case_opened",
        "support.case_escalated",
        "support.peer_assigned",
    ]
    assert case["colleague"] == {
        "function": "nurse",
        "department": "ICU",
        "team": None,
        "seniority": "2 to 5 years",
    }
    assert case["incident"]["harm"] == "severe"
    assert case["incident"]["calamity"] is True
    text = str(case).lower()
    assert f"{COLLEAGUE}C4".lower() not in text, "the colleague's staff id never shows"
    assert "zh-a.example" not in text, "nor their e-mail"
    assert "1994" not in text, "nor their birth year"


async def test_a_hospitals_coordinator_never_sees_another_hospitals_cases(
    pipeline: Pipeline,
) -> None:
    case_id = await escalated_case(pipeline, "C2")
    other = await coordinator_token(pipeline, "C5")
    unknown = "0" * len(case_id)
    for path in (f"/api/v1/cases/{case_id}", f"/api/v1/cases/{case_id}/candidates"):
        answer = await pipeline.desk.get(path, headers=bearer(other))
        nothing = await pipeline.desk.get(path.replace(case_id, unknown), headers=bearer(other))
        assert (answer.status_code, nothing.status_code) == (404, 404), path
        assert answer.json()["detail"] == nothing.json()["detail"].replace(unknown, case_id), (
            "another hospital's case answers as one that does not exist"
        )
    answer = await pipeline.desk.get("/api/v1/worklist?hospital_id=C2", headers=bearer(other))
    assert answer.status_code == 403
    assert not [i for i in await worklist(pipeline, other) if i["hospital_id"] == "C2"]
    take = {"supporter_id": "C2-ICU", "reason": "mine now"}
    answer = await pipeline.desk.post(
        f"/api/v1/cases/{case_id}/assignment", json=take, headers=bearer(other)
    )
    assert answer.status_code == 404
    network = await coordinator_token(pipeline, "network")
    assert [i for i in await worklist(pipeline, network) if i["case_id"] == case_id]


async def test_revoked_and_expired_coordinator_tokens_are_refused(pipeline: Pipeline) -> None:
    token = await coordinator_token(pipeline, "C6")
    assert (await pipeline.desk.get("/api/v1/worklist", headers=bearer(token))).status_code == 200
    listed = await coordinator_command(pipeline, "tokens")
    (token_id,) = [line.split()[0] for line in listed if "Coordinator C6" in line]
    await coordinator_command(pipeline, "revoke", token_id)
    answer = await pipeline.desk.get("/api/v1/worklist", headers=bearer(token))
    assert answer.status_code == 401

    lapsed = ApiTokens(pipeline.mongo[pipeline.database("matching")], timedelta(seconds=-1))
    expired = await lapsed.issue("C6", "expired", datetime.now(UTC))
    answer = await pipeline.desk.get("/api/v1/worklist", headers=bearer(expired))
    assert answer.status_code == 401
    analysts = ApiTokens(pipeline.mongo[pipeline.database("reporting")])
    analyst = await analysts.issue("C6", "an analyst", datetime.now(UTC))
    answer = await pipeline.desk.get("/api/v1/worklist", headers=bearer(analyst))
    assert answer.status_code == 401, "an analyst's token does not open the desk"


async def test_the_worklist_empties_as_its_items_are_dealt_with(pipeline: Pipeline) -> None:
    case_id = await escalated_case(pipeline, "C7")
    token = await coordinator_token(pipeline, "C7")

    async def needs() -> list[str]:
        return [i["need"] for i in await worklist(pipeline, token) if i["case_id"] == case_id]

    assert await needs() == ["no_peer_available"]
    chosen = {"supporter_id": "C7-ICU", "reason": "asked for by the ward"}
    case = f"/api/v1/cases/{case_id}"
    assert (
        await pipeline.desk.post(f"{case}/assignment", json=chosen, headers=bearer(token))
    ).status_code == 202
    assert await needs() == []
    withdrawal = {"reason": "the supporter is ill"}
    answer = await pipeline.desk.post(f"{case}/withdrawal", json=withdrawal, headers=bearer(token))
    assert answer.status_code == 202
    assert await needs() == ["attempts_exhausted"]
    again = await pipeline.desk.post(f"{case}/withdrawal", json=withdrawal, headers=bearer(token))
    assert again.status_code == 409, "there is no open offer left to withdraw"
    ending = {"outcome": "closed_by_coordinator", "reason": "supported by the coordinator"}
    answer = await pipeline.desk.post(f"{case}/end", json=ending, headers=bearer(token))
    assert answer.status_code == 202
    assert await needs() == []
    await pipeline.until(
        lambda: any(
            e["event_type"] == "support.ended" and e["case_id"] == case_id
            for e in pipeline.log.events(pipeline.topics.assignments)
        ),
        what="the end of support published",
    )
    actions = [
        line["action"]
        for line in (await pipeline.desk.get("/api/v1/audit", headers=bearer(token))).json()
    ]
    assert actions == ["end: closed_by_coordinator", "withdraw", "assign"]


async def test_in_the_browser_a_coordinator_assigns_from_the_candidates(
    pipeline: Pipeline, desk_url: str, tmp_path: Path
) -> None:
    case_id = await escalated_case(pipeline, "C3")
    token = await coordinator_token(pipeline, "C3")
    async with browser() as chromium:
        page = await signed_in(chromium, desk_url, token)
        worklist_dom = await page.content()
        await page.click(f"a[href='/cases/{case_id}']")
        row = page.locator("tr[data-supporter='C3-ICU']")
        await row.locator("input[name=reason]").fill("knows ICU nights")
        await row.locator("button[type=submit]").click()
        await page.wait_for_url(f"**/cases/{case_id}?done=assign")
        status = await page.locator("#status").get_attribute("data-status")
        said = await page.locator("main").inner_text()
        await page.goto(f"{desk_url}/audit")
        audit_dom = await page.content()
        colours, cookies = await photographed(page, tmp_path / "desk.png")
    assert "Worklist:" in worklist_dom
    assert "nobody fits (urgent)" in worklist_dom
    assert status == "offered"
    assert "Assigned: the offer is on its way to the supporter" in said
    assert "offered, awaiting an answer" in said
    await pipeline.until(lambda: pipeline.mail.to("icu@c3.example"), what="the offer mail")
    assert "knows ICU nights (overriding same_department)" in audit_dom
    assert "Coordinator C3" in audit_dom
    assert token not in str(cookies), "the cookie holds a session, never the token"
    assert colours.get(DESK_GREEN, 0) > 20_000, "the desk's header is drawn"


async def test_a_large_incidents_debriefing_is_planned_then_held(pipeline: Pipeline) -> None:
    await pipeline.load_roster(roster("CB"))
    people = [participant(f"E8CB{n}", department="ED") for n in range(7)]
    await pipeline.report(incident_json("INC-LARGE-CB", people, hospital_id="CB", harm="mild"))
    token = await coordinator_token(pipeline, "CB")

    async def debriefs() -> list[dict[str, Any]]:
        items = await worklist(pipeline, token)
        return [i for i in items if i["need"] == "group_debrief_not_planned"]

    await until_true(debriefs, lambda found: found, "the debriefing on the worklist")
    (item,) = await debriefs()
    assert item["incident_id"] == "INC-LARGE-CB"
    assert item["detail"] == "7 professionals involved"
    path = "/api/v1/debriefs/CB/INC-LARGE-CB"
    planned = {"planned_on": "2026-12-10"}
    assert (await pipeline.desk.post(path, json=planned, headers=bearer(token))).status_code == 202
    assert await debriefs() == []
    stranger = {"held_on": "2026-12-10", "participants": 6, "facilitator_id": "UMC-X-1"}
    answer = await pipeline.desk.post(path, json=stranger, headers=bearer(token))
    assert answer.status_code == 422
    held = {"held_on": "2026-12-10", "participants": 6, "facilitator_id": "CB-ICU"}
    assert (await pipeline.desk.post(path, json=held, headers=bearer(token))).status_code == 202
    await pipeline.until(
        lambda: any(
            e["event_type"] == "support.group_debrief_recorded" and e.get("held_on")
            for e in pipeline.log.events(pipeline.topics.assignments)
        ),
        what="the debriefing held, published",
    )
    audit = (await pipeline.desk.get("/api/v1/audit", headers=bearer(token))).json()
    assert [line["action"] for line in audit] == [
        "group debriefing held",
        "group debriefing planned",
    ]


async def test_in_the_browser_a_coordinator_decides_against_a_group_debriefing(
    pipeline: Pipeline, desk_url: str, size: str
) -> None:
    hospital = walked(size, "CI")
    await pipeline.load_roster(roster(hospital))
    people = [participant(f"E8CI{n}", department="ED") for n in range(6)]
    await pipeline.report(incident_json("INC-LARGE-CI", people, hospital_id=hospital, harm="mild"))
    token = await coordinator_token(pipeline, hospital)
    await until_true(
        lambda: worklist(pipeline, token),
        lambda items: any(i["need"] == "group_debrief_not_planned" for i in items),
        "the debriefing on the worklist",
    )
    path = f"/api/v1/debriefs/{hospital}/INC-LARGE-CI"
    unexplained = await pipeline.desk.post(
        path, json={"decided_not_to": True}, headers=bearer(token)
    )
    assert unexplained.status_code == 422
    async with browser() as chromium:
        page = await at(chromium, desk_url, token, size)
        await page.click(f"a[href='/incidents/{hospital}/INC-LARGE-CI']")
        await page.fill("#debrief input[name=participants]", "6")
        await page.click("#debrief button[type=submit]")
        await page.wait_for_load_state()
        slip = await page.locator("main").inner_text()
        kept = await page.input_value("#debrief input[name=participants]")
        await page.fill("#no-debrief input[name=reason]", "each supported one by one")
        await page.click("#no-debrief button[type=submit]")
        await page.wait_for_url(f"**/incidents/{hospital}/INC-LARGE-CI")
        state = await page.locator("#debrief-state").inner_text()
    assert "give the day it is planned for, or the day it was held" in slip
    assert kept == "6", "what was typed stays"
    assert state.startswith("Decided not to hold a group debriefing")
    assert not [
        i for i in await worklist(pipeline, token) if i["need"] == "group_debrief_not_planned"
    ]
    audit = (await pipeline.desk.get("/api/v1/audit", headers=bearer(token))).json()
    assert (audit[0]["action"], audit[0]["reason"]) == (
        "group debriefing not held: decided not to",
        "each supported one by one",
    )


async def test_a_supporter_deactivated_at_the_desk_is_deactivated_in_matching(
    pipeline: Pipeline,
) -> None:
    await pipeline.load_roster(roster("CC"))
    token = await coordinator_token(pipeline, "CC")
    standing = {"active": False, "reason": "on leave until spring"}
    path = "/api/v1/roster/CC-ICU/standing"
    assert (await pipeline.desk.post(path, json=standing, headers=bearer(token))).status_code == 202

    async def lines() -> dict[str, dict[str, Any]]:
        answer = await pipeline.desk.get("/api/v1/roster", headers=bearer(token))
        return {line["supporter_id"]: line for line in answer.json()}

    await until_true(lines, lambda now: not now["CC-ICU"]["active"], "CC-ICU inactive")
    assert (await lines())["CC-INV"]["active"] is True
    other = await coordinator_token(pipeline, "C1")
    answer = await pipeline.desk.post(path, json=standing, headers=bearer(other))
    unknown = await pipeline.desk.post(
        "/api/v1/roster/CC-NOBODY/standing", json=standing, headers=bearer(other)
    )
    assert (answer.status_code, unknown.status_code) == (404, 404), "rosters cannot be counted"


async def test_an_urgent_escalation_reaches_the_hospitals_coordinator_at_once(
    pipeline: Pipeline,
) -> None:
    case_id = await escalated_case(pipeline, "C9")
    await pipeline.until(lambda: pipeline.mail.to("coordinator@c9.example"), what="the alert")
    (mail,) = pipeline.mail.to("coordinator@c9.example")
    body = body_of(mail)
    assert str(mail["Subject"]) == "Peer support: a case needs you now (C9)"
    assert "Nobody on the roster fits this case" in body
    assert f"http://desk/cases/{case_id}" in body
    assert "a colleague (nurse) in ICU; incident: medication, severe harm, a calamity" in body
    assert "Turned away on the roster: 1: " in body
    assert "1: investigates the incident" in body
    assert "1: in the colleague's department" in body
    assert f"To reach the colleague yourself: {COLLEAGUE.lower()}c9@zh-a.example" in body


async def test_other_escalations_wait_for_the_hospitals_digest(pipeline: Pipeline) -> None:
    case_id = await escalated_case(pipeline, "CA", harm="mild", calamity=False)
    await pipeline.until(lambda: pipeline.mail.to("coordinator@ca.example"), what="the digest")
    (mail,) = pipeline.mail.to("coordinator@ca.example")
    body = body_of(mail)
    assert str(mail["Subject"]) == "Peer support: the coordinator's digest (CA, 1)"
    assert f"http://desk/cases/{case_id}" in body
    assert "mild harm" in body
    assert re.search(r"1\. \d{4}-\d\d-\d\d \d\d:\d\d CES?T", body), "the hospital's time, named"


async def assigned_case(pipeline: Pipeline, hospital: str) -> tuple[str, str]:
    """A case at `hospital` a coordinator assigned by hand to its ICU supporter: off the
    worklist. Returns the case id and the coordinator's token."""
    case_id = await escalated_case(pipeline, hospital)
    token = await coordinator_token(pipeline, hospital)
    chosen = {"supporter_id": f"{hospital}-ICU", "reason": "knows the ward"}
    assigned = await pipeline.desk.post(
        f"/api/v1/cases/{case_id}/assignment", json=chosen, headers=bearer(token)
    )
    assert assigned.status_code == 202, assigned.text
    return case_id, token


async def test_a_case_off_the_worklist_is_found_by_its_supporter(
    pipeline: Pipeline, desk_url: str
) -> None:
    """Once assigned, a case leaves the worklist; the coordinator still finds it, by the
    supporter who has it, in the API and in the pages, and only within their scope."""
    case_id, token = await assigned_case(pipeline, "CD")

    async def found(**filters: str) -> dict[str, Any]:
        answer = await pipeline.desk.get("/api/v1/cases", params=filters, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    await until_true(
        lambda: found(supporter_id="CD-ICU"), lambda body: body["total"] == 1, "the case found"
    )
    (line,) = (await found(supporter_id="CD-ICU", status="offered"))["items"]
    assert (line["case_id"], line["status_words"]) == (case_id, "offered, awaiting an answer")
    assert line["function"] == "nurse"
    assert line["supporter_name"] == "Supporter ICU"
    assert (await found(supporter_id="CD-INV"))["total"] == 0
    other = await pipeline.desk.get(
        "/api/v1/cases", params={"hospital_id": "C1"}, headers=bearer(token)
    )
    assert other.status_code == 403
    elsewhere = await coordinator_token(pipeline, "C8")
    theirs = await pipeline.desk.get("/api/v1/cases", headers=bearer(elsewhere))
    assert case_id not in theirs.text

    async with browser() as chromium:
        page = await signed_in(chromium, desk_url, token)
        await page.click("a[href='/cases']")
        await page.select_option("select[name=supporter_id]", "CD-ICU")
        await page.click("#filters button[type=submit]")
        await page.wait_for_url("**/cases?*supporter_id=CD-ICU*")
        listed = await page.locator("#cases").inner_text()
        await page.fill("input[name=month]", "11-2026")
        await page.click("#filters button[type=submit]")
        await page.wait_for_load_state()
        refused = await page.locator("main").inner_text()
        kept = await page.input_value("input[name=month]")
    assert case_id[:8] in listed
    assert "offered, awaiting an answer" in listed
    assert "Not searched: give the month written as 2026-11." in refused
    assert kept == "11-2026", "what was typed stays"


async def test_a_supporters_page_says_how_to_reach_them_and_which_cases_they_hold(
    pipeline: Pipeline, desk_url: str
) -> None:
    case_id, token = await assigned_case(pipeline, "CE")
    await until_true(
        lambda: pipeline.desk.get("/api/v1/supporters/CE-ICU", headers=bearer(token)),
        lambda answer: case_id in answer.text,
        "the supporter holds the case",
    )
    own = (await pipeline.desk.get("/api/v1/supporters/CE-ICU", headers=bearer(token))).json()
    assert own["email"] == "icu@ce.example"
    assert own["line"]["open_cases"] == 1
    elsewhere = await coordinator_token(pipeline, "C8")
    for unknown in ("CE-ICU", "NO-SUCH"):
        hidden = await pipeline.desk.get(f"/api/v1/supporters/{unknown}", headers=bearer(elsewhere))
        assert hidden.status_code == 404, "another hospital's supporter is not known"
    async with browser() as chromium:
        page = await signed_in(chromium, desk_url, token)
        await page.goto(f"{desk_url}/roster")
        await page.click("a[href='/supporters/CE-ICU']")
        their_page = await page.locator("main").inner_text()
    assert "Reach them: icu@ce.example" in their_page
    assert "Their cases: 1" in their_page
    assert case_id[:8] in their_page


async def test_every_desk_page_is_accessible_on_a_phone_and_a_desk(
    pipeline: Pipeline, desk_url: str
) -> None:
    """axe-core finds no serious or critical violation, and no page is wider than the phone."""
    case_id, token = await assigned_case(pipeline, "CF")
    paths = ["/", "/cases", f"/cases/{case_id}", "/supporters/CF-ICU", "/roster", "/audit"]
    found = []
    async with browser() as chromium:
        for width, height in ((390, 844), (1366, 900)):
            page = await signed_in(chromium, desk_url, token)
            await page.set_viewport_size({"width": width, "height": height})
            for path in paths:
                await page.goto(desk_url + path)
                result = await Axe().run(page)
                wide = await page.evaluate("document.documentElement.scrollWidth")
                cut = await page.evaluate(BEYOND_THE_SCREEN)
                found += [
                    f"{path} at {width}: {v['id']} ({v['impact']})"
                    for v in result.response["violations"]
                    if v["impact"] in ("serious", "critical")
                ]
                found += [f"{path} at {width}: {wide} px wide"] if wide > width else []
                found += [f"{path} at {width}: {tag} reaches past the screen" for tag in cut]
    assert found == []


BEYOND_THE_SCREEN = """[...document.querySelectorAll('main *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
    .map(e => e.tagName + (e.id ? '#' + e.id : '') + (e.name ? '[' + e.name + ']' : ''))"""
"""Elements inside the page that a box scrolling sideways would hide: a table too wide for the
phone, an input longer than its section."""


SIZES: dict[str, ViewportSize] = {
    "desk": {"width": 1366, "height": 900},
    "phone": {"width": 390, "height": 844},
}
"""The coordinator's day is walked at both: at a desk, and on a phone between rounds."""


@pytest.fixture(params=list(SIZES))
def size(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def walked(size: str, hospital: str) -> str:
    """The hospital a walk at `size` uses: each walk its own cases, roster and mail."""
    return hospital if size == "desk" else f"{hospital}P"


async def at(chromium: Browser, desk_url: str, token: str, size: str) -> Page:
    """The desk, signed in, at the walk's size."""
    page = await signed_in(chromium, desk_url, token)
    await page.set_viewport_size(SIZES[size])
    return page


async def accepted_by(pipeline: Pipeline, address: str, token: str, case_id: str) -> None:
    """The supporter at `address` accepts the newest offer in their mail; matching knows."""
    offer_subject = "Verzoek om collegiale ondersteuning"
    await pipeline.until(
        lambda: [m for m in pipeline.mail.to(address) if offer_subject in str(m["Subject"])],
        what=f"the offer mail to {address}",
    )
    (mail, *_) = [m for m in pipeline.mail.to(address) if offer_subject in str(m["Subject"])][::-1]
    answer = await pipeline.supporter.post(link_in(mail, "respond"), data={"answer": "accept"})
    assert answer.status_code == 200, answer.text
    await until_true(
        lambda: pipeline.desk.get(f"/api/v1/cases/{case_id}", headers=bearer(token)),
        lambda case: case.json()["status"] == "accepted",
        f"{address} has the case",
    )


async def thanked(pipeline: Pipeline, address: str) -> str:
    """The mail that thanks a supporter whose support was handed over (in Dutch, their
    language), once it is there."""

    def thanks() -> list[Any]:
        return [m for m in pipeline.mail.to(address) if "overgedragen" in m["Subject"]]

    await pipeline.until(thanks, what=f"{address} thanked")
    (mail,) = thanks()
    return body_of(mail)


async def ended_after_a_slip(page: Any, case_id: str) -> tuple[str, tuple[str, str]]:
    """Referred, without saying to whom: refused, with the outcome and reason kept; then
    ended with the referral. Returns what the refusal said and what stayed in the form."""
    await page.select_option("select[name=outcome]", "referred")
    await page.fill("input[aria-label='reason for ending']", "psychologist next week")
    await page.get_by_role("button", name="End the case").click()
    await page.wait_for_load_state()
    slip = await page.locator("main").inner_text()
    kept = (
        await page.input_value("select[name=outcome]"),
        await page.input_value("input[aria-label='reason for ending']"),
    )
    await page.select_option("select[name=referral]", "psychologist")
    await page.get_by_role("button", name="End the case").click()
    await page.wait_for_url(f"**/cases/{case_id}?done=end")
    return slip, kept


async def accepted_beside_a_free_colleague(pipeline: Pipeline, hospital: str) -> tuple[str, str]:
    """A case its ICU supporter accepted, and a supporter in Surgery who could take it over.
    Returns the case id and the coordinator's token."""
    case_id, token = await assigned_case(pipeline, hospital)
    await accepted_by(pipeline, f"icu@{hospital.lower()}.example", token, case_id)
    ward = roster_entry(hospital, "WARD", f"E9{hospital}3", "Surgery", max_open_cases=3)
    await pipeline.load_roster([*roster(hospital), ward])
    return case_id, token


async def test_in_the_browser_support_is_handed_over_ended_and_reopened(
    pipeline: Pipeline, desk_url: str, size: str
) -> None:
    """A coordinator's afternoon with one case: its supporter goes on leave, so support is
    handed to a colleague (the first is thanked by mail); it ends, a slip in the form is
    said and nothing typed is lost; then the colleague asks again and it is reopened."""
    hospital = walked(size, "CG")
    case_id, token = await accepted_beside_a_free_colleague(pipeline, hospital)

    async with browser() as chromium:
        page = await at(chromium, desk_url, token, size)
        await page.goto(f"{desk_url}/cases/{case_id}")
        row = page.locator(f"tr[data-supporter='{hospital}-WARD']")
        await row.locator("input[name=reason]").fill("the ICU supporter goes on leave")
        await row.get_by_role("button", name="Hand over").click()
        await page.wait_for_url(f"**/cases/{case_id}?done=hand_over")
        handed = await page.locator("main").inner_text()
        await accepted_by(pipeline, f"ward@{hospital.lower()}.example", token, case_id)

        await page.goto(f"{desk_url}/cases/{case_id}")
        slip, kept = await ended_after_a_slip(page, case_id)

        await page.fill("input[aria-label='reason for reopening']", "the colleague called again")
        await page.get_by_role("button", name="Reopen the case").click()
        await page.wait_for_url(f"**/cases/{case_id}?done=reopen")
        reopened = await page.locator("main").inner_text()
        status = await page.locator("#status").get_attribute("data-status")
        await page.goto(f"{desk_url}/?need=reopened")
        listed = await page.locator("main").inner_text()

    assert "Handed over: the new supporter is offered the case" in handed
    assert "supporter Supporter WARD" in handed
    assert "Je hoeft niets meer te doen" in await thanked(
        pipeline, f"icu@{hospital.lower()}.example"
    )
    assert "give a referral kind exactly when the outcome is referred" in slip
    assert kept == ("referred", "psychologist next week"), "what was typed stays"
    assert status == "escalated"
    assert "The case was reopened: it is on your worklist to offer again." in reopened
    told = await until_true(
        lambda: pipeline.desk.get(f"/api/v1/cases/{case_id}", headers=bearer(token)),
        lambda case: "support.reopened" in case.text,
        "the reopening on the case's timeline",
    )
    timeline = [entry["what"] for entry in told.json()["timeline"]]
    assert (
        "Support by Supporter ICU was handed over at a coordinator's request; they were "
        "thanked." in timeline
    )
    assert (
        "Reopened by a coordinator (support had ended: referred to professional help); "
        "theirs to offer again." in timeline
    )
    assert case_id[:8] in listed
    assert "support was reopened" in listed
    audit = (await pipeline.desk.get("/api/v1/audit", headers=bearer(token))).json()
    actions = [line["action"] for line in audit if line["case_id"] == case_id]
    assert actions[:2] == ["reopen", "end: referred"]
    assert sorted(actions[2:]) == ["assign", "assign", "hand over"], "one moment, one order"


def concern_link(pipeline: Pipeline, case_id: str) -> str:
    """The link the supporter's follow-up mails and contact pages carry, for this case."""
    (offer,) = [
        e
        for e in pipeline.log.events(pipeline.topics.assignments)
        if e["event_type"] == "support.peer_assigned" and e["case_id"] == case_id
    ]
    url = Links(LINK_SECRET, "http://notify", 3600).url(Purpose.CONCERN, offer["assignment_id"])
    return url.removeprefix("http://notify")


async def test_a_supporters_safety_concern_reaches_the_back_up_and_heads_the_worklist(
    pipeline: Pipeline, desk_url: str, size: str
) -> None:
    """Raised with a button (twice, by a double tap: one alert), mailed at once to the
    hospital's coordinator and its on-call psychologist with whom to call, first on the
    worklist with an hour's target, settled on the desk with what was done, counted."""
    hospital = walked(size, "CH")
    case_id, token = await assigned_case(pipeline, hospital)
    await accepted_by(pipeline, f"icu@{hospital.lower()}.example", token, case_id)
    link = concern_link(pipeline, case_id)
    asked = await pipeline.supporter.get(link)
    assert asked.status_code == 200
    assert "Zorg nu melden" in asked.text, "a button, so a mail scanner raises nothing"
    nonce = re.search(r'name="nonce" value="([^"]+)"', asked.text)
    assert nonce
    for _ in range(2):
        raised = await pipeline.supporter.post(link, data={"nonce": nonce.group(1)})
        assert raised.status_code == 200
    assert "bellen je binnen het uur" in raised.text

    subject = f"Peer support: a concern for a colleague's safety ({hospital})"

    told = ("coordinator", "psychologist")

    def alerted() -> set[str]:
        return {m["To"] for m in pipeline.mail.messages if m["Subject"] == subject}

    await pipeline.until(
        lambda: alerted() == {f"{who}@{hospital.lower()}.example" for who in told},
        what="the coordinator and the back-up alerted",
    )
    (alert,) = pipeline.mail.to(f"psychologist@{hospital.lower()}.example")
    said = body_of(alert)
    assert "raised by the supporter: act within the hour" in said
    assert f"Call the supporter, Supporter ICU: icu@{hospital.lower()}.example." in said
    assert f"http://desk/cases/{case_id}" in said

    items = await until_true(
        lambda: worklist(pipeline, token),
        lambda items: bool(items) and items[0]["need"] == "safety_concern",
        "the concern first on the worklist",
    )
    assert (items[0]["case_id"], items[0]["target_minutes"]) == (case_id, 60)
    async with browser() as chromium:
        page = await at(chromium, desk_url, token, size)
        await page.goto(f"{desk_url}/cases/{case_id}")
        await page.fill("#concern input[name=reason]", "psychologist called them, safe at home")
        await page.get_by_role("button", name="Settle the concern").click()
        await page.wait_for_url(f"**/cases/{case_id}?done=settle_concern")
    assert not [i for i in await worklist(pipeline, token) if i["need"] == "safety_concern"]
    await until_true(
        lambda: pipeline.counted(hospital),
        lambda counted: counted["safety_concerns"] == 1,
        "reporting counted one concern",
    )


NOTE = "Called the ICU head: the colleague is on nights until Friday."


async def test_in_the_browser_a_worklist_item_is_taken_on_and_annotated(
    pipeline: Pipeline, desk_url: str, size: str
) -> None:
    hospital = walked(size, "CJ")
    case_id = await escalated_case(pipeline, hospital)
    token = await coordinator_token(pipeline, hospital)
    async with browser() as chromium:
        page = await at(chromium, desk_url, token, size)
        await page.click(f"a[href='/cases/{case_id}']")
        await page.get_by_role("button", name="Take it on").click()
        await page.wait_for_url(f"**/cases/{case_id}?done=claim")
        await page.fill(
            "#note-text", "Called the ICU head: the colleague is on nights until Friday."
        )
        await page.get_by_role("button", name="Add the note").click()
        await page.wait_for_url(f"**/cases/{case_id}?done=note")
        notes = await page.locator("#notes").inner_text()
        owner = await page.locator("#owner").inner_text()
        await page.goto(f"{desk_url}/")
        row = await page.locator(f"tr:has(a[href='/cases/{case_id}'])").inner_text()
    assert NOTE in notes
    assert f"Coordinator {hospital}" in owner
    assert f"taken on by Coordinator {hospital}" in row
    (item,) = [i for i in await worklist(pipeline, token) if i["case_id"] == case_id]
    assert item["owner"].startswith(f"Coordinator {hospital}")
    audit = (await pipeline.desk.get("/api/v1/audit", headers=bearer(token))).json()
    assert [(line["action"], line["reason"]) for line in audit[:2]] == [
        ("note added", ""),
        ("claim", ""),
    ], "the note itself stays with the case, never in the five-year audit log"


CODE_OR_REPR = re.compile(
    r"(?:support|assignment)\.[a-z_]+|\b[a-z]+_[a-z_]+\b|\d\.\d{3,}|[{}\[\]]|'[a-z_]+':"
)
"""An event's name, a code with underscores, an unrounded float, a Python dict or list."""


async def test_a_dutch_browser_reads_the_desk_in_dutch_and_may_switch_to_english(
    pipeline: Pipeline, desk_url: str
) -> None:
    """Worklist, case (its timeline and candidates' reasons included) and roster in Dutch for
    a browser that asks for it, with no code or raw value; the switch on the page turns the
    desk to English and the choice stays."""
    case_id = await escalated_case(pipeline, "CL")
    token = await coordinator_token(pipeline, "CL")
    async with browser() as chromium:
        context = await chromium.new_context(locale="nl-NL", viewport=SIZES["phone"])
        page = await context.new_page()
        await page.goto(desk_url)
        await page.fill("input[name=token]", token)
        await page.click("button[type=submit]")
        await page.wait_for_load_state()
        worklist_nl = await page.locator("body").inner_text()
        await page.goto(f"{desk_url}/cases/{case_id}")
        language = await page.get_attribute("html", "lang")
        case_nl = await page.locator("main").inner_text()
        axe = await Axe().run(page)
        await page.click("a[href='/language/en']")
        await page.wait_for_url(f"**/cases/{case_id}")
        case_en = await page.locator("main").inner_text()
        await page.goto(f"{desk_url}/roster")
        roster_en = await page.locator("main").inner_text()
        await context.close()
    assert language == "nl"
    assert "Werklijst: 1 punt vraagt om een mens" in worklist_nl
    assert "niemand past (dringend)" in worklist_nl
    assert "Casus geopend na een incident." in case_nl
    assert "Doorgegeven aan de coördinator: niemand op het rooster past" in case_nl
    assert "afgevallen: op de afdeling van de collega" in case_nl
    assert "zelfde functie" in case_nl, "the candidates' reasons in Dutch too"
    assert not CODE_OR_REPR.findall(case_nl), "no codes or raw values"
    assert not [v["id"] for v in axe.response["violations"] if v["impact"] in SEVERE]
    assert "Case opened after an incident." in case_en
    assert "Passed to the coordinator: nobody on the roster fits" in case_en
    assert "The roster: 2 supporters" in roster_en, "the choice stays on the next page"


SEVERE = ("serious", "critical")


async def test_a_debriefing_lists_the_incidents_cases_and_its_pages_are_accessible(
    pipeline: Pipeline, desk_url: str
) -> None:
    """The incident's six cases on its debriefing page, each a link to the case; axe-core
    finds nothing serious there nor on an ended case's page."""
    await pipeline.load_roster(roster("CM"))
    people = [participant(f"E8CM{n}", department="ED") for n in range(6)]
    await pipeline.report(incident_json("INC-LARGE-CM", people, hospital_id="CM", harm="mild"))
    token = await coordinator_token(pipeline, "CM")
    await until_true(
        lambda: worklist(pipeline, token),
        lambda items: any(i["need"] == "group_debrief_not_planned" for i in items),
        "the debriefing on the worklist",
    )
    found: list[str] = []
    async with browser() as chromium:
        page = await at(chromium, desk_url, token, "phone")
        await page.goto(f"{desk_url}/incidents/CM/INC-LARGE-CM")
        listed = await page.locator("#incident-cases tbody tr").count()
        heading = await page.locator("main section h2").nth(1).inner_text()
        found += [
            f"incident: {v['id']}"
            for v in (await Axe().run(page)).response["violations"]
            if v["impact"] in SEVERE
        ]
        await page.click("#incident-cases a >> nth=0")
        await page.select_option("select[name=outcome]", "unreachable")
        ending = "form[action^='/cases/'][action$='/end']"
        await page.fill(f"{ending} input[name=reason]", "no answer to three calls")
        await page.click(f"{ending} button[type=submit]")
        await page.wait_for_selector("#status[data-status=ended]")
        found += [
            f"ended case: {v['id']}"
            for v in (await Axe().run(page)).response["violations"]
            if v["impact"] in SEVERE
        ]
        ended = await page.locator("main").inner_text()
    assert listed == 6
    assert heading == "The incident's 6 cases"
    assert found == []
    assert "Reopen the case" in ended
    assert not CODE_OR_REPR.findall(ended)
