"""intake's handlers on in-memory stores: what an incident, its repeat and an opt-out cause."""

import re
import uuid
from datetime import timedelta

import pytest
import structlog

from services.intake.cases import IntakePolicy, sealed_contact
from services.intake.intake import Intake
from shared.errors import RejectedEvent
from shared.events import (
    CaseContactRecorded,
    CaseContactSealed,
    IncidentReported,
    IncidentUpdated,
    OutreachPreferenceSet,
    SupportCaseClosed,
    SupportCaseOpened,
)
from shared.sealing import Unsealable, new_case_key, unseal
from shared.settings import Topics
from tests.factories import (
    KEYS,
    NOW,
    contact_key,
    delivered,
    incident_json,
    outreach_choice_json,
    participant,
    reconciled,
    staff_member,
)
from tests.fakes import (
    FakeIncidentRecords,
    FakePreferences,
    FakeStaffDirectory,
    FakeUnitOfWork,
    FakeWaitingContacts,
)

TOPICS = Topics()
SETTLE_AFTER = timedelta(days=180)


@pytest.fixture
def unit_of_work() -> FakeUnitOfWork:
    return FakeUnitOfWork(NOW)


def intake_with(
    unit_of_work: FakeUnitOfWork,
    policy: IntakePolicy | None = None,
    directory: FakeStaffDirectory | None = None,
) -> Intake:
    """intake on fakes of its stores: the policy and the staff directory as the test says."""
    return Intake(
        unit_of_work,
        FakeIncidentRecords(),
        FakePreferences(),
        FakeWaitingContacts(),
        policy or IntakePolicy(),
        KEYS,
        TOPICS,
        structlog.get_logger("test"),
        SETTLE_AFTER,
        directory or FakeStaffDirectory(),
    )


@pytest.fixture
def intake(unit_of_work: FakeUnitOfWork) -> Intake:
    return intake_with(unit_of_work)


async def test_an_incident_opens_a_case_per_professional_whose_contact_waits_for_its_key(
    intake: Intake, unit_of_work: FakeUnitOfWork
) -> None:
    await intake.on_incident(IncidentReported.model_validate(incident_json()))
    topics = [topic for topic, _ in unit_of_work.published]
    assert topics.count(TOPICS.cases) == 2
    assert TOPICS.contacts not in topics, "no contact goes out before its case's key"
    assert {e.event_type for _, e in unit_of_work.published if _ == TOPICS.cases} == {
        "support.case_opened"
    }
    waiting = intake.waiting
    assert isinstance(waiting, FakeWaitingContacts)
    assert len(waiting.waiting) == 2


async def test_whom_the_directory_knows_is_reached_at_its_address_not_the_incidents(
    unit_of_work: FakeUnitOfWork,
) -> None:
    """An incident system (or a mistake in it) cannot send a supporter to another address:
    the incident's contact details are used only for someone the directory does not know."""
    known = staff_member("E12345", email="e12345@mail.zh-a.example", phone="+31687654321")
    left = staff_member("E23456", active=False)
    intake = intake_with(unit_of_work, directory=FakeStaffDirectory(known, left))
    await intake.on_incident(IncidentReported.model_validate(incident_json()))
    waiting = intake.waiting
    assert isinstance(waiting, FakeWaitingContacts)
    reached = sorted((c.email, c.phone) for c, _ in waiting.waiting.values())
    assert reached == [
        ("e12345@mail.zh-a.example", "+31687654321"),
        ("e23456@zh-a.example", "+31612345678"),
    ], "a leaver (inactive) is reached as the incident says, like someone not listed"


async def test_a_contact_goes_out_sealed_to_its_cases_key_once(
    intake: Intake, unit_of_work: FakeUnitOfWork
) -> None:
    await intake.on_incident(IncidentReported.model_validate(incident_json()))
    opened = unit_of_work.events(SupportCaseOpened)[0]
    waiting = intake.waiting
    assert isinstance(waiting, FakeWaitingContacts)
    expected, _ = waiting.waiting[opened.case_id]
    private, public = new_case_key()
    key = contact_key(opened, public)
    await intake.on_contact_keys([delivered(key), delivered(key)])  # redelivered in its batch
    await intake.on_contact_keys([delivered(key)])  # and later
    (sealed,) = unit_of_work.events(CaseContactSealed)
    assert "@" not in sealed.model_dump_json()
    contact = CaseContactRecorded.model_validate_json(
        unseal(private, opened.case_id, sealed.sealed)
    )
    assert contact == expected
    assert contact.email is not None
    assert contact.email.endswith("@zh-a.example")
    others = {case.case_id for case in unit_of_work.events(SupportCaseOpened)} - {opened.case_id}
    assert waiting.waiting.keys() == others, "the other professional's contact still waits"
    with pytest.raises(Unsealable):
        unseal(new_case_key()[0], opened.case_id, sealed.sealed)


def test_a_key_that_is_no_public_key_is_refused() -> None:
    opened = reconciled().cases[0]
    assert isinstance(opened, SupportCaseOpened)
    contact = reconciled().contacts[0]
    with pytest.raises(RejectedEvent, match="no X25519 public key"):
        sealed_contact(contact, contact_key(opened, "!" * 44), NOW)


async def test_the_same_incident_again_announces_nothing(
    intake: Intake, unit_of_work: FakeUnitOfWork
) -> None:
    event = incident_json()
    await intake.on_incident(IncidentReported.model_validate(event))
    before = len(unit_of_work.published)
    await intake.on_incident(
        IncidentReported.model_validate(event | {"event_id": str(uuid.uuid4())})
    )
    assert len(unit_of_work.published) == before


async def test_a_professional_who_opted_out_is_counted_but_not_approached(
    intake: Intake, unit_of_work: FakeUnitOfWork
) -> None:
    await intake.on_staff_message(
        OutreachPreferenceSet.model_validate(
            outreach_choice_json("E12345", "declined", occurred_at=NOW)
        )
    )
    await intake.on_incident(IncidentReported.model_validate(incident_json()))
    opened = unit_of_work.events(SupportCaseOpened)
    assert sorted(e.opted_out for e in opened) == [False, True]
    waiting = intake.waiting
    assert isinstance(waiting, FakeWaitingContacts)
    assert len(waiting.waiting) == 1, "only the other professional's contact waits"


async def test_a_participant_removed_by_an_update_has_the_case_closed(
    intake: Intake, unit_of_work: FakeUnitOfWork
) -> None:
    await intake.on_incident(IncidentReported.model_validate(incident_json()))
    update = incident_json(participants=[participant("E12345")], revision=1)
    update["event_type"] = "incident.updated"
    await intake.on_incident(IncidentUpdated.model_validate(update))
    (closed,) = unit_of_work.events(SupportCaseClosed)
    assert closed.reason == "participant_removed"


@pytest.mark.parametrize(
    ("source", "hospital", "key", "refusal"),
    [
        ("epd-zh-b", "ZH-A", None, "source system 'epd-zh-b' may not report for hospital 'ZH-A'"),
        ("hacked", "ZH-A", None, "source system 'hacked' may not report for hospital 'ZH-A'"),
        ("epd-zh-a", "ZH-A", b"ZH-B:INC-1", "disagrees with the event ('ZH-A:INC-2026-000123')"),
    ],
)
async def test_an_event_its_source_may_not_send_is_refused_and_changes_nothing(
    unit_of_work: FakeUnitOfWork, source: str, hospital: str, key: bytes | None, refusal: str
) -> None:
    sources = {"epd-zh-a": frozenset({"ZH-A"}), "epd-zh-b": frozenset({"ZH-B"})}
    guarded = intake_with(unit_of_work, IntakePolicy(sources=sources))
    event = IncidentReported.model_validate(
        incident_json() | {"source_system": source, "hospital_id": hospital}
    )
    with pytest.raises(RejectedEvent, match=re.escape(refusal)):
        await guarded.on_incident(event, key=key)
    assert unit_of_work.published == []
    await guarded.on_incident(
        event.model_copy(update={"source_system": "epd-zh-a"}), key=b"ZH-A:INC-2026-000123"
    )
    assert unit_of_work.published, "its own source, under its own key, is taken in"


@pytest.mark.parametrize(
    ("occurred_at", "refusal"),
    [
        ("2099-06-01T10:00:00+02:00", "lies in the future"),
        ("1999-12-31T10:00:00+01:00", "is before 2000-01-01"),
    ],
)
async def test_an_incident_dated_where_it_cannot_be_is_refused(
    intake: Intake, unit_of_work: FakeUnitOfWork, occurred_at: str, refusal: str
) -> None:
    """One incident dated 2099 would otherwise make every dashboard show 2099."""
    event = IncidentReported.model_validate(incident_json(occurred_at=occurred_at))
    with pytest.raises(RejectedEvent, match=refusal):
        await intake.on_incident(event)
    assert unit_of_work.published == []


async def test_an_incident_a_few_hours_ahead_of_our_clock_is_taken_in(
    intake: Intake, unit_of_work: FakeUnitOfWork
) -> None:
    ahead = (NOW + timedelta(hours=12)).isoformat()
    await intake.on_incident(IncidentReported.model_validate(incident_json(occurred_at=ahead)))
    assert unit_of_work.published


async def test_a_settled_incident_forgets_who_was_involved_and_refuses_a_late_change(
    intake: Intake, unit_of_work: FakeUnitOfWork
) -> None:
    reported = IncidentReported.model_validate(incident_json())
    await intake.on_incident(reported)
    records = intake.records
    assert isinstance(records, FakeIncidentRecords)
    (key,) = records.records
    records.changed_at[key] -= SETTLE_AFTER + timedelta(seconds=1)
    waiting = intake.waiting
    assert isinstance(waiting, FakeWaitingContacts)
    for case_id, (contact, since) in waiting.waiting.items():
        waiting.waiting[case_id] = (contact, since - SETTLE_AFTER - timedelta(seconds=1))
    await intake.settle_due()
    settled = records.records[key]
    assert (settled.settled, settled.cases, settled.exclusions) == (True, {}, None)
    assert waiting.waiting == {}, "a contact whose key never came is forgotten with it"

    published = len(unit_of_work.published)
    update = IncidentUpdated.model_validate(
        incident_json() | {"event_type": "incident.updated", "revision": 2, "harm": "death"}
    )
    with pytest.raises(RejectedEvent, match="settled"):
        await intake.on_incident(update)
    assert len(unit_of_work.published) == published
