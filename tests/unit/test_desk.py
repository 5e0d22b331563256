"""The coordinator desk's own rules, on records made in memory: what reaches the worklist
and when it leaves, in which order, and what the pages and mails show of a case."""

import re
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError

from services.matching.desk import (
    CaseNotes,
    Debrief,
    Need,
    Notice,
    Targets,
    TimelineEntry,
    case_view,
    for_the_desk,
    reached,
    roster_lines,
    seniority_band,
    timeline_entry,
    worklist,
)
from services.matching.desk_cases import STATUS_WORDS, CaseQuery, case_lines, not_searched
from services.matching.desk_pages import duration, render, sign_in_page
from services.matching.desk_words import TIMELINE_WORDS
from services.matching.policy import Policy, explain
from services.matching.store import CaseRecord, Status, case_document, case_record
from services.notify.coordinator_mail import (
    alert_mail,
    concern_alert,
    digest_mail,
    due_digest,
    escalation_alert,
)
from services.notify.messages import ContactEntry, contact_logged
from shared import events
from shared.events import (
    CaseContactRecorded,
    CaseEscalated,
    ConcernRaisedBy,
    EscalationReason,
    SafetyConcernRaised,
)
from tests.factories import (
    NOW,
    assignment_and_contacts,
    case_to_match,
    incident_json,
    opened_cases,
    supporter,
)

TARGETS = Targets()


def record(harm: str = "severe", calamity: bool = True, **state: object) -> CaseRecord:
    opened = opened_cases(incident_json(harm=harm, calamity=calamity))[0]
    doc = case_document(case_to_match(opened), Status.WAITING, 0, uuid.uuid4(), NOW)
    return case_record({**doc, **state})


def offered_to(supporter_id: str, assignment_id: str, answer_within: timedelta) -> CaseRecord:
    return record(
        status=Status.OFFERED,
        offered_at=NOW,
        respond_by=NOW + answer_within,
        assignment_id=assignment_id,
        supporter_id=supporter_id,
    )


def needs(
    rec: CaseRecord, notes: CaseNotes | None = None, at: timedelta = timedelta(0)
) -> list[Need]:
    return [i.need for i in worklist([(rec, notes or CaseNotes())], [], NOW + at, TARGETS)]


def test_a_case_nobody_fits_is_listed_with_the_rules_that_turned_people_away() -> None:
    rejections = {"same_department": 2, "at_capacity": 1}
    (item,) = worklist(
        [(record(), CaseNotes(rejections=rejections))], [], NOW + timedelta(hours=5), TARGETS
    )
    assert item.need is Need.NO_PEER_AVAILABLE
    assert item.rejections == rejections
    assert item.urgent
    assert (item.waited_minutes, item.target_minutes, item.overdue) == (300, 240, True)


def test_an_offer_is_listed_only_once_half_its_deadline_has_passed() -> None:
    offered = offered_to("P1", "A1", answer_within=timedelta(hours=2))
    assert needs(offered, at=timedelta(minutes=59)) == []
    assert needs(offered, at=timedelta(minutes=61)) == [Need.OFFER_UNANSWERED]


def test_a_failed_message_counts_only_for_the_offer_still_open() -> None:
    offered = offered_to("P1", "A2", answer_within=timedelta(hours=24))
    failed = Notice("A2", "offer", "email", "mailbox unknown", NOW)
    assert needs(offered, CaseNotes(notice=failed)) == [Need.NOTIFICATION_FAILED]
    earlier_offer = replace(failed, assignment_id="A1")
    assert needs(offered, CaseNotes(notice=earlier_offer)) == []


def test_no_first_contact_within_the_target_is_listed_until_one_is_logged() -> None:
    accepted = record(
        status=Status.ACCEPTED, accepted_at=NOW, assignment_id="A1", supporter_id="P1"
    )
    opened_at = accepted.case.opened_at
    assert opened_at is not None
    late = opened_at + TARGETS.first_contact + timedelta(minutes=1) - NOW
    assert needs(accepted, at=late) == [Need.NO_FIRST_CONTACT]
    assert needs(accepted, CaseNotes(first_contact_at=NOW), at=late) == []


def test_cases_in_the_supporters_hands_or_ended_need_nobody() -> None:
    for status in (Status.ACCEPTED, Status.ENDED, Status.CLOSED, Status.OPTED_OUT):
        assert needs(record(status=status, accepted_at=NOW, supporter_id="P1")) == []


def test_the_severest_come_first_then_the_longest_waiting() -> None:
    mild_old = record(harm="mild", calamity=False, since=NOW - timedelta(days=3))
    urgent_new = record(since=NOW - timedelta(minutes=5))
    urgent_old = record(since=NOW - timedelta(hours=1))
    items = worklist(
        [(r, CaseNotes()) for r in (mild_old, urgent_new, urgent_old)], [], NOW, TARGETS
    )
    assert [i.case_id for i in items] == [urgent_old.case_id, urgent_new.case_id, mild_old.case_id]


def test_a_large_incident_is_listed_until_its_debriefing_is_planned() -> None:
    suggested = Debrief("INC-9", "ZH-A", 8, NOW - timedelta(hours=2))
    (item,) = worklist([], [suggested], NOW, TARGETS)
    assert (item.need, item.incident_id, item.case_id) == (
        Need.GROUP_DEBRIEF_NOT_PLANNED,
        "INC-9",
        None,
    )
    assert worklist([], [replace(suggested, planned_on=date(2026, 11, 25))], NOW, TARGETS) == []
    assert worklist([], [replace(suggested, decided_not_to=True)], NOW, TARGETS) == []


def test_the_desk_words_age_and_experience_in_bands_only() -> None:
    case = case_to_match(opened_cases()[0])
    why = {i.rule: for_the_desk(i) for i in explain(case, supporter("P1"), Policy(), NOW)}
    assert why["age"].detail == "4 years apart in age"
    assert why["seniority"].detail == "10 years of experience, colleague 2 to 5 years"
    assert "1994" not in str(why)
    assert [seniority_band(y) for y in (None, 1, 2, 9, 15, 30)] == [
        "unknown",
        "under 2 years",
        "2 to 5 years",
        "5 to 10 years",
        "10 to 20 years",
        "20 years or more",
    ]


def test_a_contact_on_the_timeline_is_its_date_minutes_mode_and_tier_only() -> None:
    assignment, _, _ = assignment_and_contacts()
    entry = ContactEntry(
        contact_date=date(2026, 11, 21), minutes=45, mode="phone", tier=1, referred=False
    )
    logged = contact_logged(assignment, entry, "nonce", NOW, first_of_case=True)
    made = timeline_entry(logged)
    assert made is not None
    assert made.detail == {"date": date(2026, 11, 21), "minutes": 45, "mode": "phone", "tier": 1}


def test_an_offer_on_the_timeline_names_its_supporter_as_the_roster_does() -> None:
    assignment, supporter, _ = assignment_and_contacts()
    offered = timeline_entry(assignment)
    assert offered is not None
    names = {supporter.supporter_id: supporter.display_name}
    view = case_view(record(), [offered], names, "Europe/Amsterdam")
    (shown,) = view.timeline
    assert (shown.detail["supporter_id"], shown.detail["supporter"]) == ("P1", "Supporter P1")
    assert shown.what.startswith("Offered to Supporter P1 (offer 1, score ")
    assert shown.what.endswith(" CET.")


def test_every_page_renders_and_escapes_what_it_shows() -> None:
    rec = record()
    hostile = rec.case.colleague.model_copy(update={"department": "<script>x</script>"})
    rec = replace(rec, case=replace(rec.case, colleague=hostile))
    view = case_view(
        rec,
        [TimelineEntry(at=NOW, kind="support.case_opened", detail={"opted_out": False})],
        {},
        "Europe/Amsterdam",
    )
    html = render("case", "case", scope="network", case=view, candidates=[], zone="UTC")
    assert "&lt;script&gt;" in html
    assert "<script>x" not in html
    items = worklist([(rec, CaseNotes(rejections={"at_capacity": 1}))], [], NOW, TARGETS)
    listed = render("worklist", "worklist", scope="x", items=items, needs=list(Need), asked={})
    assert "nobody fits (urgent)" in listed
    lines = roster_lines([supporter("P1")], {"P1": 2}, NOW, timedelta(days=90), timedelta(days=730))
    assert "Supporter P1" in render("roster", "roster", scope="x", lines=lines)
    assert lines[0].refresher_due == date(2027, 3, 1)
    assert render("audit", "audit", scope="x", lines=[])
    assert "coordinator token" in sign_in_page()
    at_hospital = sign_in_page(hospital_sign_in=True)
    assert 'href="/session/hospital"' in at_hospital
    assert "coordinator token instead" in at_hospital
    assert [duration(m) for m in (12, 320, 3 * 1440 + 65)] == ["12 min", "5 h 20 min", "3 d 1 h"]


def test_an_urgent_alert_says_what_is_needed_and_how_to_reach_the_colleague() -> None:
    rec = record()
    escalated = CaseEscalated(
        event_id=uuid.uuid4(),
        occurred_at=NOW,
        producer="matching",
        correlation_id="ZH-A:INC-1",
        hospital_id="ZH-A",
        case_id=rec.case.case_id,
        profile=rec.case.profile,
        attempt=0,
        reason=EscalationReason.NO_PEER_AVAILABLE,
        rejections={"same_department": 1},
    )
    alert = escalation_alert(escalated)
    assert alert.urgent
    assert alert.no_peer
    contact = CaseContactRecorded(
        event_id=uuid.uuid4(),
        occurred_at=NOW,
        producer="intake",
        correlation_id="ZH-A:INC-1",
        hospital_id="ZH-A",
        case_id=rec.case.case_id,
        email="colleague@zh-a.example",
    )
    mail = alert_mail(alert, contact, "https://desk", "coordinator@zh-a.example")
    assert f"https://desk/cases/{rec.case_id}" in mail.body
    assert "To reach the colleague yourself: colleague@zh-a.example." in mail.body
    assert "Turned away on the roster: 1: in the colleague's department." in mail.body
    assert "incident: medication, severe harm, a calamity, on " in mail.body
    digest = digest_mail(
        "ZH-A", [alert, alert], {}, "https://desk", "c@zh-a.example", "Europe/Amsterdam"
    )
    assert "(ZH-A, 2)" in digest.subject
    assert "no contact details were given" in digest.body
    assert f"1. {NOW.astimezone(ZoneInfo('Europe/Amsterdam')):%Y-%m-%d %H:%M} CET" in digest.body


@pytest.mark.parametrize(
    ("last", "due"),
    [(None, True), (NOW - timedelta(hours=23), False), (NOW - timedelta(days=1), True)],
)
def test_a_hospital_gets_at_most_one_digest_a_day(last: datetime | None, due: bool) -> None:
    assert due_digest(last, NOW, timedelta(days=1)) is due


def test_the_case_list_says_each_case_in_words_and_keeps_a_refused_search() -> None:
    accepted = record(status=Status.ACCEPTED, supporter_id="P1")
    found = case_lines(1, CaseQuery(supporter_id="P1"), [accepted], {"P1": "Anna"})
    (line,) = found.items
    assert (line.status_words, line.supporter_name) == ("in support", "Anna")
    html = render(
        "cases", "cases", scope="x", asked={"supporter_id": "P1"}, statuses=STATUS_WORDS,
        supporters=[], found=found, pages={},
    )  # fmt: skip
    assert "in support" in html
    assert f'href="/cases/{line.case_id}"' in html
    with pytest.raises(ValidationError) as refused:
        CaseQuery.model_validate({"month": "11-2026", "limit": "500"})
    why = not_searched(refused.value)
    assert why == "Not searched: give the month written as 2026-11; a number from 1 to 200."
    page = render("cases", "cases", scope="x", asked={"month": "11-2026"}, statuses=STATUS_WORDS,
                  supporters=[], problem=why)  # fmt: skip
    assert 'value="11-2026"' in page
    assert why in page


def test_a_month_of_cases_runs_into_the_next_year() -> None:
    assert CaseQuery(month="2026-12").opened_between() == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )


TIMELINE = [
    ("support.case_opened", {"origin": "request", "opted_out": False, "wish_language": "en"}),
    ("support.case_updated", {"harm": "severe", "calamity": True}),
    (
        "support.peer_assigned",
        {
            "attempt": 1,
            "supporter_id": "P1",
            "score": 0.9666666666666667,
            "explanation": [{"rule": "function", "points": 0.333333333, "detail": "a nurse too"}],
            "respond_by": NOW + timedelta(days=1),
        },
    ),
    ("support.response_deadline_moved", {"respond_by": NOW + timedelta(days=2)}),
    ("support.peer_notified", {"step": "offer", "channel": "email"}),
    ("support.notification_failed", {"step": "follow_up_day_3", "channel": "sms", "reason": "x"}),
    ("assignment.declined", {}),
    ("support.assignment_cancelled", {"supporter_id": "P1", "reason": "no_response"}),
    (
        "support.case_escalated",
        {"reason": "no_peer_available", "rejections": {"at_capacity": 9, "same_department": 3}},
    ),
    ("assignment.accepted", {}),
    (
        "support.contact_logged",
        {"date": date(2026, 11, 21), "minutes": 45, "mode": "phone", "tier": 1},
    ),
    ("support.ended", {"outcome": "referred", "referral": "occupational_physician"}),
    ("support.case_closed", {"reason": "incident_withdrawn"}),
]


def test_a_case_page_speaks_words_not_codes_reprs_or_long_floats() -> None:
    entries = [
        TimelineEntry(at=NOW + timedelta(minutes=i), kind=kind, detail=detail)
        for i, (kind, detail) in enumerate(TIMELINE)
    ]
    view = case_view(record(), entries, {"P1": "Anna de Vries"}, "Europe/Amsterdam")
    html = render("case", "case", scope="x", case=view, candidates=[], zone="Europe/Amsterdam")
    text = unescape(re.sub(r"<[^>]+>", " ", html.split("<main>")[1]))
    assert not re.search(r"(support|assignment)\.[a-z]", text), "no event type"
    assert not re.search(r"\{'|\[\{|None|True|False", text), "no Python repr"
    assert not re.search(r"\d\.\d{3,}", text), "no unrounded float"
    assert not re.search(r"\b[a-z]+_[a-z_]+\b", text), "no code with underscores"
    assert "2026-11-20 10:00 CET" in text, "times in the hospital's zone, named"
    assert "Case opened at the colleague's own request; they would like support in English." in text
    assert "Anna de Vries declined." in text
    assert "Anna de Vries accepted." in text
    assert "(turned away: 9: has as many cases as they take, 3: in the colleague's" in text
    assert "Support ended: referred to the occupational physician." in text
    assert "logged a contact on 2026-11-21: 45 minutes by phone, peer support." in text


def test_every_timeline_sentence_is_for_an_event_that_exists() -> None:
    """A sentence keyed by a misspelt event type is never said: the page shows the raw name."""
    kinds = {
        model.model_fields["event_type"].default
        for model in vars(events).values()
        if isinstance(model, type)
        and issubclass(model, BaseModel)
        and "event_type" in model.model_fields
    }
    assert set(TIMELINE_WORDS) <= kinds, set(TIMELINE_WORDS) - kinds


def test_an_unanswered_offer_names_the_supporter_and_how_to_reach_them() -> None:
    offered = offered_to("P1", "a-1", timedelta(hours=4))
    (item,) = worklist([(offered, CaseNotes())], [], NOW + timedelta(hours=3), TARGETS)
    assert (item.need, item.supporter_id) == (Need.OFFER_UNANSWERED, "P1")
    p1 = supporter("P1")
    on_call = replace(p1, contact=p1.contact.model_copy(update={"phone": "+31612345678"}))
    (reachable,) = reached([item], [on_call])
    assert reachable.reach is not None
    assert (reachable.reach.name, reachable.reach.phone) == ("Supporter P1", "+31612345678")
    html = render("worklist", "worklist", scope="x", items=[reachable], needs=list(Need), asked={})
    assert 'href="tel:+31612345678"' in html


def test_a_safety_concern_heads_the_worklist_with_an_hour_to_act() -> None:
    waiting_long = record(since=NOW - timedelta(hours=3))
    in_support = record(
        harm="mild", calamity=False, status=Status.ACCEPTED, accepted_at=NOW, supporter_id="P1"
    )
    concern = CaseNotes(concern_at=NOW - timedelta(minutes=30), concern_by="supporter")
    first, second = worklist([(waiting_long, CaseNotes()), (in_support, concern)], [], NOW, TARGETS)
    assert (first.need, first.case_id) == (Need.SAFETY_CONCERN, in_support.case_id)
    assert (first.urgent, first.target_minutes, first.overdue) == (True, 60, False)
    assert first.detail == "raised by the supporter"
    assert second.case_id == waiting_long.case_id
    (late,) = worklist([(in_support, concern)], [], NOW + timedelta(minutes=31), TARGETS)
    assert late.overdue


def about(rec: CaseRecord, producer: str) -> dict[str, Any]:
    """What an event about the record's case carries, from `producer`, now."""
    return {
        "event_id": uuid.uuid4(),
        "occurred_at": NOW,
        "producer": producer,
        "correlation_id": rec.case.correlation_id,
        "hospital_id": rec.case.hospital_id,
        "case_id": rec.case.case_id,
    }


def test_a_concern_alert_says_whom_to_call_and_how_to_reach_the_colleague() -> None:
    rec = record()
    raised = SafetyConcernRaised(
        **about(rec, "notify"),
        profile=rec.case.profile,
        raised_by=ConcernRaisedBy.SUPPORTER,
        supporter_id="P1",
    )
    helper = supporter("P1").contact.model_copy(update={"phone": "+31611111111"})
    alert = concern_alert(raised, helper)
    assert alert.urgent
    contact = CaseContactRecorded(**about(rec, "intake"), phone="+31622222222")
    mail = alert_mail(alert, contact, "https://desk", "psychologist@zh-a.example")
    assert (
        mail.subject == f"Peer support: a concern for a colleague's safety ({rec.case.hospital_id})"
    )
    assert "raised by the supporter: act within the hour" in mail.body
    assert f"Call the supporter, {helper.display_name}: +31611111111, " in mail.body
    assert "To reach the colleague yourself: +31622222222." in mail.body


def test_an_item_names_who_took_it_on() -> None:
    (item,) = worklist([(record(), CaseNotes(owner="Coordinator ZH-A"))], [], NOW, TARGETS)
    assert item.owner == "Coordinator ZH-A"
